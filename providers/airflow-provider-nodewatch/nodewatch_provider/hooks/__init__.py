"""nodewatch provider: hooks."""
