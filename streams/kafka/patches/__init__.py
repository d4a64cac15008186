"""Patches of Faust 0.15 and aiokafka 0.14, each a subclass, each for a fault our tests caught,
split by what they patch: the consumer (:mod:`.consumer`), table recovery (:mod:`.recovery`), the
app and worker (:mod:`.app`). Every upstream method a patch replaces is fingerprinted in its
module's ``REPLACES``: the first 16 hex digits of the sha256 of its ``inspect.getsource``.
``tests/unit/test_patch_fingerprints.py`` fails when the installed Faust or aiokafka changes one
(read the patch against it again, then the digest) or when an override is not recorded.

* **The seek after a rebalance lost records** (:class:`Consumer`, :class:`ConsumerThread`).
  Faust seeks every partition to its committed offset while its fetcher keeps delivering
  records, compares them with read offsets updated only at the end (dropping re-fetched records
  as already read), then clears its stream queues; a partition without a committed offset (a
  new group, a worker that died before its first commit) was not sought at all. Here the flow
  stops first and every stream partition is sought, to where the reset policy starts it when it
  has no commit. Related upstream: faust-streaming/faust#596 (gaps in acked offsets after
  recovery).
* **Offsets were committed before the outputs were durable** (:meth:`Consumer._commit_offsets`):
  the app's ``before_commit`` runs first.
* **Idle fetches held 1.5 s**: Faust hard-codes ``fetch_max_wait_ms`` (and has no setting for
  ``fetch_min_bytes``); the app's :attr:`AtLeastOnceApp.fetch_min_bytes` and
  :attr:`AtLeastOnceApp.fetch_max_wait_ms` are used instead.
* **Changelogs written in transactions never finished recovering** (:class:`Recovery`). Faust
  recovers until the end offset less one, which on a transactional changelog is a commit
  marker that is never delivered (upstream: faust-streaming/faust#47, a worker hanging in
  recovery with exactly_once, and #155, "off by one error fetching changelog"). The last
  record's offset is read from the partition instead (:func:`last_record_offsets`). It also
  logs recovery progress and tells :mod:`streams.kafka.readiness` when the tables are recovered.
* **A stop hung while Kafka was unreachable** (:meth:`ConsumerThread.on_thread_stop`):
  aiokafka's ``Fetcher.close()`` awaits its cancelled fetches without catching the cancellation
  a fetch sleeping before its retry re-raises (compare aio-libs/aiokafka#647, a consumer stop
  raising ``CancelledError``); mode then never learnt that the consumer thread stopped and
  waited its 60 s shutdown timeout per thread.

:class:`AtLeastOnceApp` is a Faust app on these (its transport and table manager).
:class:`QuietWorker` is Faust's worker without its terminal spinner (10% of the CPU), which stops
within a bounded time on SIGTERM and SIGINT whatever Kafka's state. :mod:`.fences` reads Kafka's
``PRODUCER_FENCED`` (90), unknown to aiokafka, as the ``INVALID_PRODUCER_EPOCH`` it knows, and
ends a fenced worker in one line.
"""
