"""The lowest layer: errors, digests and settings that every other layer may import."""
