"""Issue 31, item 1: a run never writes into an input folder (its results would be read as frames)."""

from __future__ import annotations

import pytest
from conftest import FAST_FLAGS
from reliability_helpers import one_error, snapshot

from cae_fast.cli.main import main


@pytest.mark.parametrize(
    "where",
    ["out=data", "out inside data", "cache inside data", "out inside train-data"],
)
def test_out_or_cache_inside_an_input_folder_is_refused_and_the_folder_untouched(
    tmp_path, tiny_folder, where, capsys
):
    before = snapshot(tiny_folder)
    args = {
        "out=data": ["--data", str(tiny_folder), "--out", str(tiny_folder)],
        "out inside data": ["--data", str(tiny_folder), "--out", str(tiny_folder / "a" / "run"), "--report"],
        "cache inside data": ["--data", str(tiny_folder), "--out", str(tmp_path / "o"),
                              "--cache-dir", str(tiny_folder / "cache")],
        "out inside train-data": ["--data", str(tiny_folder), "--train-data", str(tiny_folder),
                                  "--out", str(tiny_folder / "b" / "r")],
    }[where]  # fmt: skip
    line = one_error(args, capsys)
    flag = "--cache-dir" if "cache" in where else "--out"
    assert f"{flag} is" in line and str(tiny_folder) in line
    assert snapshot(tiny_folder) == before  # byte-identical: nothing added, nothing changed
    assert not (tmp_path / "o").exists()


def test_out_beside_the_data_folder_and_a_default_cache_beside_it_are_fine(tmp_path, tiny_folder, capsys):
    before = snapshot(tiny_folder)
    assert main([*FAST_FLAGS, "--data", str(tiny_folder), "--out", str(tmp_path / "frames_run")]) == 0
    assert snapshot(tiny_folder) == before
    assert (tmp_path / ".cae_fast_cache").is_dir()  # the default cache: next to --out, not in the data
