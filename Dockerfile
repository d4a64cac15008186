# The hcs worker image (also runs `hcs simulate` and `hcs tail`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
# streams/schemas is a symlink to ../schemas in the repo; in the image, make it a real copy.
RUN rm -f streams/schemas && cp -r schemas streams/schemas \
    && pip install --no-cache-dir . \
    && useradd --system --uid 999 --home /var/lib/hcs hcs && mkdir -p /var/lib/hcs && chown hcs /var/lib/hcs
USER hcs
ENV HCS_DATA_DIR=/var/lib/hcs HCS_WEB_BIND=0.0.0.0 HCS_WEB_PORT=6066
EXPOSE 6066
ENTRYPOINT ["hcs"]
CMD ["worker", "-l", "info"]
