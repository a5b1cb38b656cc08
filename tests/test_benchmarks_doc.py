"""docs/benchmarks.md is generated from the saved test-split results, never edited by hand."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/ is not an installed package: see test_detection_benchmark.py.
sys.path.append(str(ROOT))
from benchmarks.external import report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "external" / "rules" / "scale-balance-test3.json"


def test_benchmarks_md_is_the_report_of_the_saved_results(tmp_path):
    out = tmp_path / "benchmarks.md"
    assert report.main([str(RESULTS), str(out)]) == 0
    assert out.read_text() == (ROOT / "docs" / "benchmarks.md").read_text()


def test_the_readme_table_quotes_the_saved_results():
    """The README's real-imagery ROC-AUC column is the mean over the five corrupted sequences."""
    seqs = json.loads(RESULTS.read_text())["sequences"]
    corrupted = [s for s in seqs if s != "clean"]
    readme = (ROOT / "README.md").read_text()
    labels = {"default": "| **default** |", "paper": "| paper-exact", "lapvar": "| lapvar |",
              "iforest": "| PyOD IForest", "ecod": "| PyOD ECOD"}  # fmt: skip
    for row, label in labels.items():
        mean = sum(seqs[s]["rows"][row]["roc_auc"] for s in corrupted) / len(corrupted)
        line = next(x for x in readme.splitlines() if x.startswith(label))
        assert f"{mean:.3f}" in line, (row, mean, line)
