"""For a developer's machine: the local broker, the simulator and the local run."""
