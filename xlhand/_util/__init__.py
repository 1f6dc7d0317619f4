"""Small helpers every layer may use: atomic writes, the training allocator setting, Adam, revisions."""
