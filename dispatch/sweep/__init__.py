"""Sweep: the deadline sweep and the scheduler that runs it under a lease."""
