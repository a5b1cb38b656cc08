"""What keying the frame cache on content costs (issue 31, item 5), as ratios measured in one run.

``python -m benchmarks.cache_key_cost [--frames 100000] [--size 32] [--dir DIR]`` writes (once,
into ``DIR``, else a temporary folder) an .npy and a folder of PNGs of ``--frames`` frames and
times, in alternating rounds, best of ``--rounds``: the key as it was (names, sizes, mtimes), the
key now (``cache.cache_key``: plus change times and ``data.content``), and a baseline every run
pays anyway: reading the cached frames once (a reused run's scoring reads them all). The build
(decoding, what a stale key costs) is timed once. Figures are in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cae_fast.data.cache import cache_key, load_or_build
from cae_fast.data.sources import open_source


def old_key(path: Path, size: int) -> str:
    source = open_source(path)
    targets = [source.path / f for f in source.files] if source.kind == "folder" else [source.path]
    files = [[str(t), (st := t.stat()).st_size, st.st_mtime_ns] for t in targets]
    ident = {"source": str(source.path.resolve()), "files": files, "image_size": size}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def read_all(images: np.ndarray) -> int:
    return int(sum(int(images[i : i + 4096].sum(dtype=np.uint64)) for i in range(0, len(images), 4096)))


def measure(path: Path, size: int, cache: Path, rounds: int, workers: int) -> dict:
    t0 = time.perf_counter()
    entry = load_or_build(open_source(path), size, cache, workers=workers)
    build = time.perf_counter() - t0
    fns = {
        "old_key_s": lambda: old_key(path, size),
        "new_key_s": lambda: cache_key(open_source(path), size, False),
        "read_cached_frames_s": lambda: read_all(entry.images),
    }
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):  # alternating, so background load hits every contender alike
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    extra = best["new_key_s"] - best["old_key_s"]
    return {**best, "build_s": build, "extra_s": extra, "extra_vs_read": extra / best["read_cached_frames_s"],
            "extra_vs_build": extra / build}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dir", type=Path, help="keep the data here and reuse it (default: a temporary folder)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = a.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        npy, folder = root / f"frames{a.frames}.npy", root / f"frames{a.frames}"
        if not npy.exists():
            frames = np.random.default_rng(0).integers(0, 256, (a.frames, a.size, a.size, 3), dtype=np.uint8)
            np.save(npy, frames)
            folder.mkdir()
            for i in range(a.frames):
                Image.fromarray(frames[i]).save(folder / f"f{i}.png", compress_level=1)
        with tempfile.TemporaryDirectory() as cache:
            results = {
                "frames": a.frames,
                "size": a.size,
                "npy": measure(npy, a.size, Path(cache) / "c1", a.rounds, a.workers),
                "folder": measure(folder, a.size, Path(cache) / "c2", a.rounds, a.workers),
            }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
