"""What keying the frame cache on content costs (issue 31, item 5), as ratios measured in one run.

``python -m benchmarks.cache_key_cost [--frames 100000] [--size 32]`` writes an .npy and a folder
of PNGs of ``--frames`` frames into a temporary folder and times, best of ``--repeat``:
the old key (names, sizes, mtimes), the new key (plus ``data.content``), and the baselines a run
pays anyway: reading the cache entry's frames once (a reused run's first epoch reads them all) and,
for the folder, decoding it (what a stale key would cost). Figures are in docs/reliability.md.
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


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def old_key(source, size: int) -> str:
    ident = {"source": str(source.path.resolve()), "files": source.fingerprint(), "image_size": size}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def read_all(images: np.ndarray) -> int:
    return int(sum(int(images[i : i + 4096].sum(dtype=np.uint64)) for i in range(0, len(images), 4096)))


def measure(path: Path, size: int, cache: Path, repeat: int, workers: int) -> dict:
    source = open_source(path)
    t_build = best(lambda: load_or_build(source, size, cache / "build", workers=workers), 1)
    entry = load_or_build(source, size, cache / "build", workers=workers)
    row = {
        "old_key_s": best(lambda: old_key(open_source(path), size), repeat),
        "new_key_s": best(lambda: cache_key(open_source(path), size, False), repeat),
        "read_cached_frames_s": best(lambda: read_all(entry.images), repeat),
        "build_s": t_build,
    }
    row["extra_s"] = row["new_key_s"] - row["old_key_s"]
    row["extra_vs_read"] = row["extra_s"] / row["read_cached_frames_s"]
    row["extra_vs_build"] = row["extra_s"] / row["build_s"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = rng.integers(0, 256, (a.frames, a.size, a.size, 3), dtype=np.uint8)
        np.save(tmp / "frames.npy", frames)
        folder = tmp / "frames"
        folder.mkdir()
        for i in range(a.frames):
            Image.fromarray(frames[i]).save(folder / f"f{i}.png", compress_level=1)
        del frames
        results = {
            "frames": a.frames,
            "size": a.size,
            "npy": measure(tmp / "frames.npy", a.size, tmp / "c1", a.repeat, a.workers),
            "folder": measure(folder, a.size, tmp / "c2", a.repeat, a.workers),
        }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
