"""Shared by the reliability tests (issue 31): run the command line in-process and check that it
failed with exactly one ``error:`` line and exit code 2."""

from __future__ import annotations

from pathlib import Path

from conftest import FAST_FLAGS

from cae_fast.cli.main import main


def one_error(args: list[str], capsys, fast: bool = True) -> str:
    """Run ``main``; assert exit 2 and a stderr of one line starting ``error:``; return it."""
    rc = main([*FAST_FLAGS, *args] if fast else args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning: ")]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder): equal snapshots = untouched."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))
    }
