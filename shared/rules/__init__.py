"""Pure rules that more than one service applies: no I/O, `now` passed in."""
