"""The 1-D running median over the frame index (the paper's ``PCC_med``, k = ``MEDIAN_K``), equal
to ``scipy.ndimage.median_filter`` on a 1-D signal, without scipy."""

from __future__ import annotations

import warnings

import numpy as np

# scipy.ndimage mode -> numpy.pad mode giving the same extension of the signal past its ends.
_PAD_MODES = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
    "constant": "constant",
}
MEDIAN_MODES = tuple(_PAD_MODES)
_MEDIAN_ROWS = 1 << 16  # windows materialised at once: bounds memory to _MEDIAN_ROWS * k values


def effective_k(n: int, k: int) -> int:
    """The median filter length used for ``n`` frames: ``k``, or when ``n < k`` the largest odd
    number <= ``n`` (with a warning), so every window holds at most each frame once per side."""
    if k < 1 or k % 2 == 0:
        raise ValueError(f"median filter length must be a positive odd number, got {k}")
    if n >= k:
        return k
    shrunk = n if n % 2 else n - 1
    warnings.warn(
        f"only {n} frames, fewer than the median filter length {k}: using k = {shrunk} instead",
        UserWarning,
        stacklevel=2,
    )
    return shrunk


def median_filter_1d(x: np.ndarray, k: int, mode: str = "reflect", cval: float = 0.0) -> np.ndarray:
    """Running median of length ``k`` (odd) over a 1-D signal, centred on each sample.

    Equal to ``scipy.ndimage.median_filter(x, size=k, mode=mode, cval=cval)``. Edges follow
    scipy's modes: 'reflect' (d c b a | a b c d | d c b a, the default), 'mirror'
    (d c b | a b c d | c b a), 'nearest' (a a a | a b c d | d d d), 'wrap', 'constant' (cval).
    ``k`` must not exceed ``len(x)`` (see ``effective_k``). Returns the input's dtype.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"median_filter_1d expects a 1-D signal, got shape {x.shape}")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"median filter length must be a positive odd number, got {k}")
    if mode not in _PAD_MODES:
        raise ValueError(f"unknown median filter mode {mode!r}; known: {', '.join(MEDIAN_MODES)}")
    if k > len(x):
        raise ValueError(f"median filter length {k} exceeds the signal length {len(x)}")
    if k == 1:
        return x.copy()
    half = k // 2
    kwargs = {"constant_values": cval} if mode == "constant" else {}
    padded = np.pad(x, half, mode=_PAD_MODES[mode], **kwargs)
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    out = np.empty_like(x)
    for start in range(0, len(x), _MEDIAN_ROWS):
        # k is odd, so the median is one of the window's values: partition finds it exactly.
        block = np.partition(windows[start : start + _MEDIAN_ROWS], half, axis=1)
        out[start : start + _MEDIAN_ROWS] = block[:, half]
    return out
