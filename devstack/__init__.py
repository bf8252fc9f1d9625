"""Runs the whole system on one machine: a local broker, a Redis and the four services."""
