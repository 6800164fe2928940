"""nodewatch provider: triggers."""
