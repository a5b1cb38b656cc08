"""Per-frame scores, every one higher = dirtier, never edited after they leave this package."""
