"""Argument types of the command line: each parses one flag's text or raises the
``argparse.ArgumentTypeError`` that argparse turns into a one-line usage error."""

from __future__ import annotations

import argparse
import math
import re
from typing import NoReturn


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


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):  # a NaN cut or weight compares false everywhere: it silently decides
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def finite(text: str) -> float:
    return _number(text)


def nonnegative_float(text: str) -> float:
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def positive_float(text: str) -> float:
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return v


def learning_rate(text: str) -> float:
    """``(0, 1]``: beyond 1 Adam's steps are larger than the weights themselves and training diverges."""
    v = positive_float(text)
    if v > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1, got {text!r}")
    return v


def seed(text: str) -> int:
    """0 .. 2**63 - 1: what both numpy's and torch's generators accept."""
    v = nonnegative(text)
    if v >= 2**63:
        raise argparse.ArgumentTypeError(f"must be < 2**63, got {v}")
    return v


def device(text: str) -> str:
    """'auto', 'cpu', 'cuda' or 'cuda:N'; whether that CUDA device exists is checked when it is used."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


class Parser(argparse.ArgumentParser):
    """A bad flag is one line ``error: --flag: problem; see <prog> --help``, not argparse's usage."""

    def error(self, message: str) -> NoReturn:
        m = re.fullmatch(r"argument (\S+?)(?:/\S+)?: (.*)", message, re.S)
        if m:
            message = f"{m[1]}: {m[2]}"
        elif message.startswith("unrecognized arguments: "):
            message = f"{message.removeprefix('unrecognized arguments: ')}: unrecognized flag"
        line = " ".join(message.split())
        self.exit(2, f"error: {line}; see {self.prog} --help\n")
