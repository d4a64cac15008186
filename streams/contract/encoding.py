"""JSON encoding of the records the worker writes: outputs, partials and changelog records.

msgspec's encoder rather than ``orjson.dumps``: every record is held until its batch is
flushed, and orjson (3.12 and later) returns each result in a buffer of about 4 KiB whatever
its size. Held by the thousand, those buffers cost page faults and memory: a 340-byte decision
took 2.9 µs with orjson and 0.64 µs with msgspec when 10,000 were kept (0.1 µs each when freed at
once), and a changelog key 2.5 µs against 0.07 µs. The output is the same JSON, except that
msgspec writes a UTC offset as ``Z`` (RFC 3339 either way).
"""

from __future__ import annotations

import msgspec

encode = msgspec.json.Encoder().encode
