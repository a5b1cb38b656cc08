"""Where a run may write: never into an input folder.

A run folder (or frame cache) inside a ``--data`` folder is read back as frames by the next run
(a ``--report``'s PNGs once flipped a decision from 21 removed frames to 0: issue 31, item 1),
so such a layout is refused before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from cae_fast.config import Config
from cae_fast.data.builtin import is_builtin
from cae_fast.errors import InputError


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def input_folders(cfg: Config) -> list[tuple[str, Path]]:
    """``(flag, resolved folder)`` of every input that is a folder of images."""
    found = []
    for flag, value in (("--data", cfg.data), ("--train-data", cfg.train_data), ("--val-data", cfg.val_data)):
        if value and not is_builtin(value) and Path(value).is_dir():
            found.append((flag, Path(value).resolve()))
    return found


def check_outside_inputs(cfg: Config, cache_dir: str | os.PathLike[str]) -> None:
    """Refuse an ``--out`` or a frame cache (``cache_dir``, given or default) equal to or inside an
    input folder: it would add files to the user's data. Raises ``InputError``."""
    targets = (("--out", cfg.out), ("--cache-dir", cache_dir))
    for flag, folder in input_folders(cfg):
        for what, target in targets:
            if _inside(Path(target).resolve(), folder):
                where = "is" if Path(target).resolve() == folder else "is inside"
                hint = "choose --out outside it" if what == "--out" else "give --cache-dir outside it"
                raise InputError(
                    target,
                    f"{what} {where} the {flag} folder {folder}; a run never writes into its input "
                    f"(the next run would read the results as frames): {hint}",
                )
