"""Decoded, resized frames cached once on disk as a raw uint8 array and memory-mapped back.

17,600 frames at 224x224 are 2.6 GB of uint8 on disk instead of 10.6 GB of float32 in RAM;
batches are converted to float as they are used. An entry is keyed by the source's file names,
sizes and mtimes and by the image size, so a second run on unchanged data reuses it and any
change to the data makes a new one. Entries are written to a temporary name and renamed into
place, data first and the metadata that marks them complete last, so a killed run never leaves
an entry that looks valid.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cae_fast.data.sources import Source, iter_frames
from cae_fast.errors import InputError

CACHE_FORMAT = 1
_WRITE_FRAMES = 64  # frames buffered between writes: bounds RAM while filling the cache


@dataclass
class CachedFrames:
    images: np.ndarray  # (N, S, S, 3) uint8, a read-only memmap
    kept: list[int]  # source index of each cached frame (differs from range(N) after --skip-bad)
    skipped: list[int]  # source indices of unreadable frames skipped with --skip-bad
    reused: bool  # True when an existing entry was used and nothing was decoded


def cache_key(source: Source, image_size: int, skip_bad: bool) -> str:
    ident = {
        "format": CACHE_FORMAT,
        "source": str(source.path.resolve()),
        "kind": source.kind,
        "files": source.fingerprint(),
        "image_size": image_size,
        "skip_bad": skip_bad,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def load_or_build(
    source: Source, image_size: int, cache_dir: str | os.PathLike[str], skip_bad: bool = False
) -> CachedFrames:
    """The frames of ``source`` as a memmap, decoding them only when no valid entry exists."""
    cache_dir = Path(cache_dir)
    key = cache_key(source, image_size, skip_bad)
    data_path, meta_path = cache_dir / f"{key}.u8", cache_dir / f"{key}.json"
    frame_bytes = image_size * image_size * 3
    meta = _read_meta(meta_path)
    if meta is not None and meta.get("key") == key and _size(data_path) == len(meta["kept"]) * frame_bytes:
        return CachedFrames(
            _map(data_path, len(meta["kept"]), image_size), meta["kept"], meta["skipped"], True
        )

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(cache_dir, f"cannot create cache folder: {exc.strerror or exc}") from None
    kept, skipped = _fill(source, image_size, skip_bad, data_path)
    if not kept:
        data_path.unlink(missing_ok=True)
        raise InputError(source.path, f"none of the {source.n} images could be decoded")
    _write_json(
        meta_path,
        {
            "key": key,
            "source": str(source.path.resolve()),
            "image_size": image_size,
            "kept": kept,
            "skipped": skipped,
        },
    )
    _drop_stale(cache_dir, key, str(source.path.resolve()), image_size)
    return CachedFrames(_map(data_path, len(kept), image_size), kept, skipped, False)


def _fill(source: Source, image_size: int, skip_bad: bool, data_path: Path) -> tuple[list[int], list[int]]:
    tmp = data_path.with_name(f"{data_path.name}.tmp{os.getpid()}")
    kept: list[int] = []
    skipped: list[int] = []
    buffer: list[np.ndarray] = []
    try:
        with open(tmp, "wb") as f:
            for i, frame in iter_frames(source, image_size, skip_bad):
                if frame is None:
                    skipped.append(i)
                    continue
                kept.append(i)
                buffer.append(frame)
                if len(buffer) >= _WRITE_FRAMES:
                    f.write(np.stack(buffer).tobytes())
                    buffer.clear()
            if buffer:
                f.write(np.stack(buffer).tobytes())
        os.replace(tmp, data_path)
    except OSError as exc:
        raise InputError(data_path.parent, f"cannot write frame cache: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return kept, skipped


def _map(path: Path, n: int, size: int) -> np.ndarray:
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, size, size, 3))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _read_meta(path: Path) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def _drop_stale(cache_dir: Path, key: str, source: str, image_size: int) -> None:
    """Remove older entries of the same source and size: their data changed, they can't be reused."""
    for meta_path in cache_dir.glob("*.json"):
        meta = _read_meta(meta_path)
        if not meta or meta.get("key") == key:
            continue
        if meta.get("source") == source and meta.get("image_size") == image_size:
            meta_path.unlink(missing_ok=True)
            (cache_dir / f"{meta['key']}.u8").unlink(missing_ok=True)
