"""Exclusive locks between cae_fast processes: one per run folder, one per frame-cache entry.

Two runs into one ``--out`` interleaved their training logs and once left one run's results beside
the other's checkpoint; two runs building one cache entry deleted each other's partial files
(issue 31, item 2). An ``flock`` on a small file holding the owner's pid serialises them; the
kernel drops it when its process dies, so a killed run never leaves a folder locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".cae_fast.lock"


class Busy(Exception):
    """The lock is held by another process (its pid, when it could be read)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path, self.pid = path, pid
        super().__init__(f"{path} is locked by pid {pid}")


def holder(path: str | os.PathLike[str]) -> int | None:
    """The pid written in the lock file at ``path``, or None."""
    try:
        return int(Path(path).read_text().strip() or "x")
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def exclusive(
    path: str | os.PathLike[str], wait: bool = False, on_wait: Callable[[int | None], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, holding this pid) for the ``with`` block.

    ``wait=False``: raise ``Busy`` at once when another process holds it; ``wait=True``: block
    until it is free, calling ``on_wait(pid)`` once first. The file is removed on release."""
    path = Path(path)
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                raise Busy(path, holder(path)) from None
            if on_wait is not None and not told:
                on_wait(holder(path))
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        # The holder before us removes the file as it releases: a lock on that unlinked file
        # protects nothing, so check that ours is still the file at ``path``.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before unlocking, so a waiter sees its file is gone and retries
        os.close(fd)
