"""cae_fast: find and remove corrupted frames from large unlabeled image sets.

``cae_fast.FrameFilter`` is the Python API (``cae_fast.api``), ``cae_fast.Config`` every setting.
``FrameFilter`` is imported on first use, so ``import cae_fast`` stays cheap (no torch).
"""

from typing import Any

from cae_fast.config import Config
from cae_fast.errors import InputError

__version__ = "0.1.0"
__all__ = ["Config", "FrameFilter", "InputError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "FrameFilter":
        from cae_fast.api import FrameFilter

        return FrameFilter
    raise AttributeError(f"module 'cae_fast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "FrameFilter"})
