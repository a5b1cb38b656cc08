"""What a frame-cache entry is keyed on besides names, sizes and mtimes: the content.

An ``.npy`` rewritten with other frames of the same shape and its mtime restored (``cp -p``,
``rsync -t``) used to be served from the old cache (issue 31, item 5). Arrays are hashed whole;
a folder (10^4-10^6 files) by the full bytes of a sample of files spread over the sequence,
beside ``Source.fingerprint``'s per-file inode change times, which no copy tool can set back.
The cost is measured in docs/reliability.md (``benchmarks/cache_key_cost.py``).
"""

from __future__ import annotations

import hashlib
import os

from cae_fast.data.sources import Source
from cae_fast.errors import InputError

SAMPLE_FILES = 64  # folder files hashed whole, evenly spread from the first to the last
_BLOCK = 1 << 22


def _hash_file(h, path: os.PathLike[str] | str) -> None:
    try:
        with open(path, "rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None


def sample(n: int, k: int = SAMPLE_FILES) -> list[int]:
    """``min(n, k)`` indices evenly spread over ``range(n)``, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def content_digest(source: Source) -> str:
    """A hash of what ``source`` holds: every byte of an array file; for a folder, every byte
    of ``sample`` of its files."""
    h = hashlib.sha256()
    if source.kind != "folder":
        _hash_file(h, source.path)
        return h.hexdigest()
    for i in sample(len(source.files)):
        _hash_file(h, source.path / source.files[i])
    return h.hexdigest()
