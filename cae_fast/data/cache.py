"""Decoded, resized frames cached once on disk as a raw uint8 array and memory-mapped back.

17,600 frames at 224x224 are 2.6 GB of uint8 on disk instead of 10.6 GB of float32 in RAM;
batches are converted to float as they are used. An entry is keyed by the source's file names,
sizes, mtimes and content (``data.content``) and by the image size, so a second run on
unchanged data reuses it and any change to the data makes a new one.

Building decodes a folder's images in worker processes, a chunk of frames per task, each
written straight into its slots of a memory-mapped ``<key>.u8.partial``; after every chunk a
done-record ``<key>.done.npy`` (one status byte per frame) is replaced atomically. A build that
is interrupted (Ctrl-C, a kill) leaves both behind, and the next build with the same key decodes
only the frames not yet recorded. Only a complete build is renamed to ``<key>.u8``, and the
metadata that marks an entry valid is written last, so a half-written cache is never used.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import mmap
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cae_fast.data import sources
from cae_fast.data.content import content_digest
from cae_fast.data.sources import Source, iter_frames
from cae_fast.errors import InputError
from cae_fast.locks import exclusive

CACHE_FORMAT = 2  # 2: keyed on content too (data.content)
_CHUNK = 32  # frames per decode task and per done-record update
_TODO, _OK, _BAD = 0, 1, 2  # per-frame status in the done-record


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
        "content": content_digest(source),  # a rewrite with the mtime restored is noticed
        "image_size": image_size,
        "skip_bad": skip_bad,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def load_or_build(
    source: Source,
    image_size: int,
    cache_dir: str | os.PathLike[str],
    skip_bad: bool = False,
    workers: int | None = None,
    progress: bool = False,
) -> CachedFrames:
    """The frames of ``source`` as a memmap, decoding them only when no valid entry exists.
    ``workers``: decoding processes for a folder (None: one per CPU; 0 or 1: in this process)."""
    cache_dir = Path(cache_dir)
    key = cache_key(source, image_size, skip_bad)
    data_path, meta_path = cache_dir / f"{key}.u8", cache_dir / f"{key}.json"
    reused = _reuse(data_path, meta_path, key, image_size)
    if reused is not None:
        return reused

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(cache_dir, f"cannot create cache folder: {exc.strerror or exc}") from None
    source_name = str(source.path.resolve())
    with contextlib.ExitStack() as held:
        try:  # one builder per entry: another run waits for it, then reuses what it built
            held.enter_context(exclusive(cache_dir / f"{key}.lock", wait=True, on_wait=_say_waiting))
        except OSError as exc:
            raise InputError(cache_dir, f"cannot write frame cache: {exc.strerror or exc}") from None
        reused = _reuse(data_path, meta_path, key, image_size)
        if reused is not None:
            return reused
        kept, skipped = _build(source, image_size, skip_bad, cache_dir, key, workers, progress)
        _write_json(
            meta_path,
            {"key": key, "source": source_name, "image_size": image_size, "kept": kept, "skipped": skipped},
        )
        _drop_stale(cache_dir, key, source_name, image_size)
    return CachedFrames(_map(data_path, len(kept), image_size), kept, skipped, False)


def _reuse(data_path: Path, meta_path: Path, key: str, size: int) -> CachedFrames | None:
    """The complete entry ``key``, when its metadata and data are there."""
    meta = _read_meta(meta_path)
    if meta is None or meta.get("key") != key or _size(data_path) != len(meta["kept"]) * size * size * 3:
        return None
    return CachedFrames(_map(data_path, len(meta["kept"]), size), meta["kept"], meta["skipped"], True)


def _say_waiting(pid: int | None) -> None:
    print(f"waiting for another run (pid {pid}) that is building this frame cache entry", file=sys.stderr)


def _paths(cache_dir: Path, key: str) -> tuple[Path, Path, Path]:
    """The partial data, its done-record and its description (source, size) for ``_drop_stale``."""
    return cache_dir / f"{key}.u8.partial", cache_dir / f"{key}.done.npy", cache_dir / f"{key}.partial.json"


def _build(
    source: Source,
    size: int,
    skip_bad: bool,
    cache_dir: Path,
    key: str,
    workers: int | None,
    progress: bool,
) -> tuple[list[int], list[int]]:
    n = source.n
    part, record, desc = _paths(cache_dir, key)
    data_path = cache_dir / f"{key}.u8"
    try:
        status = _resume_status(part, record, n, size)
        if status is None:  # nothing to resume: a fresh (sparse) partial file
            record.unlink(missing_ok=True)
            _write_json(
                desc, {"key": key, "source": str(source.path.resolve()), "image_size": size, "partial": True}
            )
            with open(part, "wb") as f:
                f.truncate(n * size * size * 3)
            status = np.zeros(n, np.uint8)
        todo = np.flatnonzero(status == _TODO).tolist()
        chunks = [todo[i : i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
        with tqdm(
            total=n, initial=n - len(todo), desc="decoding frames", unit="frame", disable=not progress
        ) as bar:
            results = (
                _decode_folder(source, size, skip_bad, part, chunks, workers)
                if source.kind == "folder"
                else _convert_array(source, size, part, chunks)
            )
            with contextlib.closing(results):
                for idx, st, err in results:
                    if err is not None and not skip_bad:
                        raise InputError(*err)
                    status[idx] = st
                    _save_status(record, status)
                    bar.update(len(idx))
        kept = np.flatnonzero(status == _OK).tolist()
        skipped = np.flatnonzero(status == _BAD).tolist()
        if not kept:
            raise InputError(source.path, f"none of the {source.n} images could be decoded")
        if skipped:
            _compact(part, data_path, n, size, kept)
        else:
            os.replace(part, data_path)
    except InputError:
        _remove(part, record, desc)  # the same input fails the same way again: nothing to resume
        raise
    except OSError as exc:
        raise InputError(cache_dir, f"cannot write frame cache: {exc.strerror or exc}") from None
    except BrokenProcessPool:  # a decoding process was killed (out of memory?); what it recorded is kept
        raise InputError(cache_dir, "a frame-decoding process died; run again to resume") from None
    _remove(part, record, desc)
    return kept, skipped


def _resume_status(part: Path, record: Path, n: int, size: int) -> np.ndarray | None:
    """The done-record of an interrupted build of this entry, when it and its data still fit."""
    if _size(part) != n * size * size * 3:
        return None
    try:
        status = np.load(record, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if status.shape != (n,) or status.dtype != np.uint8 or status.max(initial=0) > _BAD:
        return None
    return status


def _save_status(record: Path, status: np.ndarray) -> None:
    tmp = record.with_name(f"{record.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, status, allow_pickle=False)
    os.replace(tmp, record)


def _decode_chunk(
    part: str, n: int, size: int, root: str, items: list[tuple[int, str]], skip_bad: bool
) -> tuple[list[int], list[int], tuple[str, str] | None]:
    """Decode ``items`` (frame index, file) into their slots of ``part``; runs in a worker.
    Returns the indices, their status, and the first error (path, problem) when there was one."""
    mm = np.memmap(part, dtype=np.uint8, mode="r+", shape=(n, size, size, 3))
    idx, st, err = [], [], None
    try:
        for i, rel in items:
            idx.append(i)
            try:
                mm[i] = sources.decode_image(os.path.join(root, rel), size)
                st.append(_OK)
            except InputError as exc:
                st.append(_BAD)
                if err is None:
                    err = (exc.path, exc.problem)
                if not skip_bad:
                    break
    finally:
        del mm  # written through a shared mapping: in the page cache, a killed process loses nothing
    return idx, st, err


def _decode_folder(
    source: Source, size: int, skip_bad: bool, part: Path, chunks: list[list[int]], workers: int | None
) -> Iterator[tuple[list[int], list[int], tuple[str, str] | None]]:
    """Results of ``_decode_chunk`` for ``chunks``, in order (so the first bad file reported is
    the first in frame order, as when decoding serially)."""
    root = str(source.path)
    args = [(str(part), source.n, size, root, [(i, source.files[i]) for i in c], skip_bad) for c in chunks]
    w = (os.cpu_count() or 1) if workers is None else workers
    w = min(w, len(args))
    if w <= 1:
        for a in args:
            yield _decode_chunk(*a)
        return
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    pool = ProcessPoolExecutor(w, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),))
    try:
        pending: deque = deque()
        nxt = 0
        while nxt < len(args) and len(pending) < 2 * w:  # a bounded window, so Ctrl-C stops soon
            pending.append(pool.submit(_decode_chunk, *args[nxt]))
            nxt += 1
        while pending:
            result = pending.popleft().result()
            if nxt < len(args):
                pending.append(pool.submit(_decode_chunk, *args[nxt]))
                nxt += 1
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_init(parent: int) -> None:
    """Workers leave Ctrl-C to the parent, which stops handing out chunks and keeps what's
    recorded; and on Linux they end with it when it is killed outright (else they would idle on)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _convert_array(
    source: Source, size: int, part: Path, chunks: list[list[int]]
) -> Iterator[tuple[list[int], list[int], None]]:
    """An array source: converting is cheap, so frames already done are converted and dropped."""
    todo = {i for c in chunks for i in c}
    if not todo:
        return
    mm = np.memmap(part, dtype=np.uint8, mode="r+", shape=(source.n, size, size, 3))
    try:
        idx: list[int] = []
        for i, frame in iter_frames(source, size):
            if i not in todo:
                continue
            mm[i] = frame
            idx.append(i)
            if len(idx) == _CHUNK:
                yield idx, [_OK] * len(idx), None
                idx = []
        if idx:
            yield idx, [_OK] * len(idx), None
    finally:
        del mm


def _compact(part: Path, data_path: Path, n: int, size: int, kept: list[int]) -> None:
    """Write the kept frames of ``part`` (skipped ones are holes) contiguously as ``data_path``."""
    src = np.memmap(part, dtype=np.uint8, mode="r", shape=(n, size, size, 3))
    tmp = data_path.with_name(f"{data_path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for start in range(0, len(kept), 64):
                f.write(np.ascontiguousarray(src[kept[start : start + 64]]).tobytes())
        os.replace(tmp, data_path)
    finally:
        del src
        tmp.unlink(missing_ok=True)


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


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
    """Remove older entries, complete or partial, of the same source and size: their data
    changed, they can't be reused."""
    for meta_path in cache_dir.glob("*.json"):
        meta = _read_meta(meta_path)
        if not meta or meta.get("key") == key:
            continue
        if meta.get("source") == source and meta.get("image_size") == image_size:
            old = meta["key"]
            if meta.get("partial"):
                _remove(*_paths(cache_dir, old))
            else:
                meta_path.unlink(missing_ok=True)
                (cache_dir / f"{old}.u8").unlink(missing_ok=True)


def release_rows(images: np.ndarray, start: int, stop: int) -> None:
    """Drop frames ``[start, stop)`` of a read-only memmap (the frame cache) from this process's
    resident set once scored: they stay in the page cache, but a long sequential pass no longer
    counts the whole file in the process's RSS. Anything else is left alone."""
    mm = getattr(images, "_mmap", None)
    if (
        not isinstance(images, np.memmap)
        or images.mode != "r"
        or not isinstance(images.base, mmap.mmap)
        or not images.flags.c_contiguous
        or not hasattr(mm, "madvise")
        or not hasattr(mmap, "MADV_DONTNEED")
    ):
        return
    first = images.offset % mmap.ALLOCATIONGRANULARITY  # where the array starts inside the mapping
    page = mmap.PAGESIZE
    lo = -(-(first + start * images.strides[0]) // page) * page  # whole pages inside the range only
    hi = (first + stop * images.strides[0]) // page * page
    if hi > lo:
        try:
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):
            pass
