"""Kafka and Faust underneath the worker: patches, bulk intake, outputs, replicated views,
re-keying, changelogged state, cluster checks and health."""
