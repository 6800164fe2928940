"""nodewatch provider: sensors."""
