"""Issue 31, item 3: a damaged or foreign checkpoint is refused with one line naming the file."""

from __future__ import annotations

import zipfile

import torch
from conftest import FAST_FLAGS
from reliability_helpers import one_error

from cae_fast.cli.main import main


def _trained(tmp_path, tiny_npz, capsys):
    assert main([*FAST_FLAGS, "--data", str(tiny_npz), "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    return tmp_path / "a" / "checkpoint.pt"


def _flip_a_weight_byte(ckpt):
    """Flip one byte in the middle of the largest tensor's storage, leaving the zip intact."""
    with zipfile.ZipFile(ckpt) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        assert info.compress_type == zipfile.ZIP_STORED
    raw = bytearray(ckpt.read_bytes())
    with open(ckpt, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    raw[at] ^= 0x10
    ckpt.write_bytes(bytes(raw))


def test_a_flipped_weight_byte_is_caught(tmp_path, tiny_npz, capsys):
    ckpt = _trained(tmp_path, tiny_npz, capsys)
    before = torch.load(ckpt, weights_only=True)["model"]
    _flip_a_weight_byte(ckpt)
    after = torch.load(ckpt, weights_only=True)["model"]  # torch itself loads it without a word
    assert any(not torch.equal(before[k], after[k]) for k in before)
    for flags in (["--score-only", str(ckpt)], ["--resume", str(ckpt), "--epochs", "2"]):
        line = one_error(["--data", str(tiny_npz), "--out", str(tmp_path / "b"), *flags], capsys)
        assert line.startswith(f"error: {ckpt}: checkpoint is damaged"), line


def _foreign(tmp_path, tiny_npz, capsys, edit) -> str:
    state = torch.load(_trained(tmp_path, tiny_npz, capsys), weights_only=True)
    del state["checksum"]  # hand-made: no checksum at all, as a dict someone saved themselves
    edit(state)
    path = tmp_path / "foreign.pt"
    torch.save(state, path)
    return one_error(
        ["--data", str(tiny_npz), "--out", str(tmp_path / "c"), "--score-only", str(path)], capsys
    )


def test_a_dict_without_hparams_is_one_line(tmp_path, tiny_npz, capsys):
    line = _foreign(tmp_path, tiny_npz, capsys, lambda s: s.pop("hparams"))
    assert "foreign.pt: not a complete cae_fast checkpoint: no 'hparams'" in line


def test_a_dict_with_a_wrong_latent_dim_is_one_line(tmp_path, tiny_npz, capsys):
    line = _foreign(tmp_path, tiny_npz, capsys, lambda s: s["hparams"].update(latent_dim=7))
    assert "foreign.pt: weights do not fit the network" in line and "size mismatch" in line


def test_a_pickled_object_is_refused_without_advising_to_unpickle_it(tmp_path, tiny_npz, capsys):
    path = tmp_path / "obj.pt"
    torch.save({"format": 1, "thing": zipfile.ZipInfo("x")}, path)  # not a tensor or a plain value
    line = one_error(
        ["--data", str(tiny_npz), "--out", str(tmp_path / "o"), "--score-only", str(path)], capsys
    )
    assert line.startswith(f"error: {path}: cannot read checkpoint") and "weights_only" not in line
