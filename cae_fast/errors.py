"""The one error type for bad input: every problem a user can fix by changing a path, a file
or a flag is raised as ``InputError``; ``cae_fast.cli.main`` turns it into one line and exit code 2."""

from __future__ import annotations

import os


class InputError(Exception):
    """A problem with a user-supplied path, file or setting (not a bug in cae_fast)."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
