"""Operators' commands that work on the running system (python -m tools.<name>)."""
