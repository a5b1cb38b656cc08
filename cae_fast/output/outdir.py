"""Where a run writes: never into an input folder; one run at a time; nothing left behind or mixed.

A run folder (or frame cache) inside a ``--data`` folder is read back as frames by the next run
(a ``--report``'s PNGs once flipped a decision from 21 removed frames to 0: issue 31, item 1),
so such a layout is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

from cae_fast.config import Config
from cae_fast.data.builtin import is_builtin
from cae_fast.errors import InputError
from cae_fast.locks import LOCK_NAME, Busy, exclusive
from cae_fast.output.export import atomic_write_bytes


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


# ---- the run folder: one run at a time, no leftovers, every output tagged with its run --------

RUN_FILE = "run.json"  # this folder's current run: its id, status and the outputs it finished
RESULT_FILES = (
    "filter_result.npz",
    "kept.txt",
    "removed.txt",
    "scores.csv",
    "metrics.json",
    "report/report.html",
)
WATCHED = (*RESULT_FILES, "checkpoint.pt", "train_log.jsonl")  # what a run that has begun has written
# Temporaries of atomic writes (export: ".<name>.tmp<pid>", the checkpoint: "<name>.tmp<pid>") and
# write probes: names only cae_fast gives.
_ORPHAN = re.compile(r"^(\.[^/]+\.tmp\d+|checkpoint\.pt\.tmp\d+|\.write_test\d+)$")


def _busy(out: Path, pid: int | None) -> InputError:
    who = f"pid {pid}" if pid else "another process"
    return InputError(
        out, f"another cae-fast run ({who}) is using this folder; wait for it or choose another --out"
    )


def remove_orphans(out: Path) -> list[str]:
    """Delete temporaries that a killed run left (``checkpoint.pt.tmp<pid>`` ...): with the
    folder's lock held, no live run is writing them."""
    gone = []
    for p in [*out.iterdir(), *((out / "report").iterdir() if (out / "report").is_dir() else ())]:
        if p.is_file() and _ORPHAN.match(p.name):
            p.unlink(missing_ok=True)
            gone.append(p.name)
    return gone


def read_run(out: Path) -> dict:
    try:
        return json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_run(out: Path, run_id: str, status: str, outputs: tuple[str, ...] = ()) -> None:
    """``run.json``: ``status`` 'running' until the run has written every output, then 'complete'
    with the sha256 of each output, so a file from another run is told apart (``stale_outputs``)."""
    files = {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in outputs if (out / n).is_file()}
    info = {"run_id": run_id, "status": status, "pid": os.getpid(), "outputs": files}
    atomic_write_bytes(out / RUN_FILE, (json.dumps(info, indent=1) + "\n").encode())


def stale_outputs(out: str | os.PathLike[str]) -> list[str]:
    """Result files in ``out`` that the run named in ``run.json`` did not write (or that changed
    since): the leftovers of an earlier run beside a newer, unfinished one."""
    out = Path(out)
    run = read_run(out)
    present = [n for n in RESULT_FILES if (out / n).is_file()]
    if run.get("status") != "complete":
        return present
    done = run.get("outputs", {})
    return [n for n in present if hashlib.sha256((out / n).read_bytes()).hexdigest() != done.get(n)]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def checkpoint_run_id(path: str | os.PathLike[str]) -> str | None:
    """The run id stored in a checkpoint's config (None before run ids existed)."""
    from cae_fast.train.loop import load_checkpoint  # train imports the whole model stack

    return json.loads(load_checkpoint(path).get("config") or "{}").get("run_id")


@contextlib.contextmanager
def hold(cfg: Config, cache_dir: str | os.PathLike[str]) -> Iterator[Config]:
    """The run folder for the duration of a run: refused inside an input; created; locked
    (fail fast, naming the other run); cleared of a killed run's temporaries; tagged with a run id
    (kept from the checkpoint on ``--resume``). Yields ``cfg`` carrying the run id. A folder this
    run created is removed again when the run fails before writing anything into it."""
    check_outside_inputs(cfg, cache_dir)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file, not a folder; --out needs a folder")
    created = [d for d in (out, *out.parents) if not d.exists()]  # removed again after an early failure
    held = contextlib.ExitStack()
    try:
        out.mkdir(parents=True, exist_ok=True)
        held.enter_context(exclusive(out / LOCK_NAME))
    except Busy as exc:
        raise _busy(out, exc.pid) from None
    except OSError as exc:
        raise InputError(out, f"output folder is not writable ({exc.strerror or exc})") from None
    with held:
        remove_orphans(out)
        run_id = (checkpoint_run_id(cfg.resume) if cfg.resume else None) or uuid.uuid4().hex[:12]
        stale = [n for n in RESULT_FILES if (out / n).is_file()]  # once this run starts, they are
        if stale and read_run(out).get("run_id") != run_id:
            names = ", ".join(stale)
            warnings.warn(
                f"{out} holds an earlier run's {names}: stale until this run replaces them", stacklevel=3
            )
        before = {n: _stamp(out / n) for n in WATCHED}
        previous = (out / RUN_FILE).read_bytes() if (out / RUN_FILE).is_file() else None
        write_run(out, run_id, "running")
        try:
            yield dataclasses.replace(cfg, run_id=run_id)
        except BaseException:
            if all(_stamp(out / n) == before[n] for n in WATCHED):  # failed before writing: as it was
                if previous is None:
                    (out / RUN_FILE).unlink(missing_ok=True)
                else:
                    atomic_write_bytes(out / RUN_FILE, previous)
                held.close()  # the lock file goes too
                for d in created:
                    if any(d.iterdir()):
                        break
                    d.rmdir()
            raise
        written = tuple(n for n in RESULT_FILES if _stamp(out / n) not in (None, before[n]))
        write_run(out, run_id, "complete", written)
        for name in sorted(set(RESULT_FILES) - set(written)):
            if (out / name).is_file():
                warnings.warn(f"{out / name} is an earlier run's, not this one's (run.json)", stacklevel=3)
