"""The run loop: routing, workers, waits, timeouts, and a run as data."""
