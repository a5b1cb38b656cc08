"""`python -m cae_fast.compare` trains every network on the same tiny built-in digits, prints one table."""

from __future__ import annotations

from cae_fast.cli.compare import COLUMNS, main
from cae_fast.model.zoo import ARCHS

TINY = [
    "--train-data", "builtin:digits:80", "--data", "builtin:digits:40", "--image-size", "16",
    "--channels", "8,16", "--latent-dim", "8", "--epochs", "2", "--batch-size", "16", "--m-ref", "16",
    "--no-progress", "--score", "pcc", "--median-k", "1",
]  # fmt: skip


def test_compare_prints_one_row_per_arch(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(out) if line.split() and line.split()[0] == "arch")
    assert out[header].split()[:6] == list(COLUMNS[:6])
    rows = [line.split() for line in out[header + 1 : header + 1 + len(ARCHS)]]
    assert [r[0] for r in rows] == list(ARCHS)
    for r in rows:
        auc, ap, precision, recall, f1 = map(float, r[1:6])
        assert 0 <= auc <= 1 and 0 < f1 <= 1 and 0 <= precision <= 1 and 0 <= recall <= 1
        assert int(r[6].replace(",", "")) > 0 and float(r[7]) >= 0
    assert (tmp_path / "compare.txt").read_text().splitlines()[1:] == out[header : header + 1 + len(ARCHS)]
    for arch in ARCHS:
        assert (tmp_path / arch / "checkpoint.pt").is_file() and (tmp_path / arch / "scores.csv").is_file()


def test_compare_subset_and_bad_arch(tmp_path, capsys):
    assert main([*TINY, "--archs", "fcn", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["fcn"]
    capsys.readouterr()
    assert main([*TINY, "--archs", "cae,rnn", "--out", str(tmp_path)]) == 2
    assert "rnn" in capsys.readouterr().err
