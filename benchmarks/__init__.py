"""``hcs bench``: hcs against the raw-client limit and a bare Faust agent, on the real broker."""
