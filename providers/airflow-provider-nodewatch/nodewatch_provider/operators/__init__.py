"""nodewatch provider: operators."""
