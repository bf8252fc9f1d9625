"""HTTP handlers: parse, load state, apply the shared rules, store, publish."""
