"""cae_fast: find and remove corrupted frames from large unlabeled image sets."""

__version__ = "0.1.0"
