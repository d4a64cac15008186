"""One module per capability of the worker, each with its typed state, its handlers and its timers.

No concept imports Faust: the worker hands them records, time and outputs."""
