# The hcs worker image (also runs `hcs alerts-bridge`, `hcs simulate` and `hcs tail`).
#
# Reproducible: the base image is pinned by digest and the Python dependencies by
# deploy/requirements.lock (exact versions and their hashes; `make lock` remakes it from
# pyproject.toml). Refresh both on purpose, together, then rebuild and run `make test`:
#   docker buildx imagetools inspect python:3.11-slim-bookworm   # the digest for the FROM line
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The locked dependencies first (their own layer: a code change does not reinstall them).
COPY deploy/requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
# streams/schemas is a symlink to ../schemas in the repo; in the image, make it a real copy.
# --no-deps: everything it needs came from the lock above.
RUN rm -f streams/schemas && cp -r schemas streams/schemas \
    && pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 999 --home /var/lib/hcs hcs && mkdir -p /var/lib/hcs && chown hcs /var/lib/hcs
# Runs as a non-root user; the root filesystem can be read-only (Kubernetes mounts it so): what
# hcs writes goes to HCS_DATA_DIR (a volume) and temporary files to /tmp.
USER hcs
ENV HCS_DATA_DIR=/var/lib/hcs HCS_WEB_BIND=0.0.0.0 HCS_WEB_PORT=6066
EXPOSE 6066
ENTRYPOINT ["hcs"]
CMD ["worker", "-l", "info"]
