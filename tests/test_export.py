import json

import numpy as np
import pytest

from cae_fast.output.export import RESULT_NAME, atomic_write_bytes, write_lists, write_result


def test_npz_loads_without_pickle(tmp_path):
    arrays = {
        "pcc": np.arange(3, dtype=np.float32),
        "delta": np.float64(0.5),
        "paths": np.array(["a", "b", "c"]),
    }
    path = write_result(tmp_path, arrays, {"config": {"median_k": 101}})
    assert path == tmp_path / RESULT_NAME
    with np.load(path, allow_pickle=False) as r:
        assert r["paths"].tolist() == ["a", "b", "c"] and r["delta"] == 0.5
        assert json.loads(str(r["config"])) == {"config": {"median_k": 101}}
    assert [p.name for p in tmp_path.iterdir()] == [RESULT_NAME]


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        write_result(tmp_path, {"x": np.array([None, 1], dtype=object)}, {})


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_lists(tmp_path):
    kept, removed = write_lists(tmp_path, ["x0", "x1", "x2"], np.array([True, False, True]))
    assert kept.read_text() == "x0\nx2\n" and removed.read_text() == "x1\n"
