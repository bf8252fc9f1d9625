"""Use cases more than one entry point runs: accepting a call (HTTP and the requests topic)."""
