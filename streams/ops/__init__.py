"""Operators' commands: the on-call console, findings, policy administration, the replay, the alerts bridge."""
