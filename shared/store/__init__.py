"""Redis access: one store per kind of state, each beside the Lua scripts it runs."""
