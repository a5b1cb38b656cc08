"""Results out: ``filter_result.npz``, ``kept.txt`` / ``removed.txt`` and ``scores.csv`` in the run folder.

Every file is written under a temporary name in the same folder and renamed into place, so a
reader (or a killed run) never sees half a file. Nothing here writes next to the input data.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

RESULT_NAME = "filter_result.npz"
KEPT_NAME = "kept.txt"
REMOVED_NAME = "removed.txt"
SCORES_CSV_NAME = "scores.csv"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_result(out_dir: str | os.PathLike[str], arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """``arrays`` plus ``meta`` (as the JSON string ``config``) into ``out_dir/filter_result.npz``.

    Strings are stored as fixed-width unicode arrays, so ``np.load`` needs no ``allow_pickle``.
    """
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in payload.items():
        if value.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; it would need pickle to load")
    payload["config"] = np.asarray(json.dumps(meta, sort_keys=True, default=str))
    buf = io.BytesIO()
    np.savez(buf, **payload)
    path = Path(out_dir) / RESULT_NAME
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_lists(out_dir: str | os.PathLike[str], names: list[str], is_clean: np.ndarray) -> tuple[Path, Path]:
    """One source path (or ``array[i]``) per line: kept frames, then removed frames, in frame order."""
    out_dir = Path(out_dir)
    kept = "".join(f"{n}\n" for n, keep in zip(names, is_clean, strict=True) if keep)
    removed = "".join(f"{n}\n" for n, keep in zip(names, is_clean, strict=True) if not keep)
    atomic_write_bytes(out_dir / KEPT_NAME, kept.encode())
    atomic_write_bytes(out_dir / REMOVED_NAME, removed.encode())
    return out_dir / KEPT_NAME, out_dir / REMOVED_NAME


def write_scores_csv(out_dir: str | os.PathLike[str], ids: list, anomaly: np.ndarray) -> Path:
    """``id,score`` per frame, submission style: ``score`` higher = more anomalous."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")  # quotes an id (a path) that holds a comma
    writer.writerow(["id", "score"])
    writer.writerows((i, f"{float(s):.9g}") for i, s in zip(ids, anomaly, strict=True))
    path = Path(out_dir) / SCORES_CSV_NAME
    atomic_write_bytes(path, buf.getvalue().encode())
    return path
