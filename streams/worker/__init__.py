"""The worker process: the Faust app, its drains and timers, its web pages; wiring only."""
