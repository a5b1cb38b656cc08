"""Third-party corruptions for the external benchmark: ``imagecorruptions`` (the ImageNet-C
reference code, version 1.1.2), applied in runs with a hard onset.

Two compatibility shims, both local to this module: the package imports ``pkg_resources`` only to
find its bundled frost images (setuptools no longer ships that module everywhere), and its ``fog``
calls ``np.float_``, which NumPy 2 removed; ``np.float_`` is set for the duration of one call only.

Severities are the library's own, defined on 224 x 224 ImageNet images, so frames are corrupted at
``CAPTURE`` pixels and only then reduced to the sequence's size (as a camera's frames would be).
"""

from __future__ import annotations

import importlib.resources
import sys
import types
import warnings

import numpy as np

CAPTURE = 224  # ImageNet-C's image size: the scale its severities were defined at
KINDS: tuple[str, ...] = (
    "spatter",  # severities 1-3: water drops on the lens; 4-5: mud
    "fog",
    "frost",
    "snow",
    "motion_blur",
    "defocus_blur",
    "gaussian_noise",
    "brightness",
    "contrast",
    "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (2, 3, 4)
# What sits on the lens or the windscreen keeps one pattern for the whole run (one random seed per
# run); weather, shake and noise are drawn afresh for every frame.
PERSISTENT = frozenset({"spatter", "frost", "fog"})


def _library():
    """``imagecorruptions``, imported with a stand-in ``pkg_resources.resource_filename`` when the
    real one is missing (the package uses nothing else of it)."""
    if "imagecorruptions" in sys.modules:
        return sys.modules["imagecorruptions"]
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(module: str, name: str) -> str:
            return str(importlib.resources.files(module.rpartition(".")[0] or module).joinpath(name))

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    with warnings.catch_warnings():  # its scipy.ndimage.interpolation import is deprecated, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        import imagecorruptions

    return imagecorruptions


def available() -> bool:
    try:
        _library()
    except ImportError:
        return False
    return True


def corrupt(image: np.ndarray, kind: str, severity: int, seed: int) -> np.ndarray:
    """``image`` (uint8 HxWx3, ``CAPTURE`` square) with ``kind`` at ``severity``; the library's random
    draws come from NumPy's global generator, seeded here with ``seed`` and restored afterwards."""
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {kind!r}; known: {', '.join(KINDS)}")
    lib = _library()
    state = np.random.get_state()
    had_float_ = "float_" in np.__dict__
    try:
        np.random.seed(seed % 2**32)
        if not had_float_:
            np.float_ = np.float64  # fog's plasma fractal (removed in NumPy 2)
        out = lib.corrupt(np.ascontiguousarray(image), severity=severity, corruption_name=kind)
    finally:
        if not had_float_ and "float_" in np.__dict__:
            del np.float_
        np.random.set_state(state)
    return np.asarray(out, np.uint8)


def frame_seed(run_seed: int, kind: str, offset: int) -> int:
    """The seed for frame ``offset`` of a run: the run's own for persistent kinds (one dirt pattern
    for the whole run), a fresh one per frame otherwise."""
    return run_seed if kind in PERSISTENT else run_seed * 7919 + offset + 1
