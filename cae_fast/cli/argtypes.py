"""Argument types of the command line: each parses one flag's text or raises the
``argparse.ArgumentTypeError`` that argparse turns into a one-line usage error."""

from __future__ import annotations

import argparse


def odd(text: str) -> int:
    k = int(text)
    if k < 1 or k % 2 == 0:
        raise argparse.ArgumentTypeError(f"must be a positive odd number, got {k}")
    return k


def odd_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(odd(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated odd numbers, got {text!r}") from None


def odd_or_zero(text: str) -> int:
    return 0 if int(text) == 0 else odd(text)


def fraction(text: str) -> float:
    q = float(text)
    if not 0.0 < q < 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {q}")
    return q


def _at_least(text: str, low: int) -> int:
    v = int(text)
    if v < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {v}")
    return v


def nonnegative(text: str) -> int:
    return _at_least(text, 0)


def epochs_list(text: str) -> tuple[int, ...]:
    """``--trim-at``: comma-separated epoch counts, each >= 0, sorted and deduplicated."""
    try:
        epochs = tuple(sorted({nonnegative(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs like 2,3, got {text!r}") from None
    return epochs


def channels(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated widths like 32,64,128,256, got {text!r}"
        ) from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths


def positive(text: str) -> int:
    return _at_least(text, 1)
