"""Markdown for the external benchmark's results (``runner``): one table per question.

``python -m benchmarks.external.report RESULTS.json [OUT.md]`` writes it again from saved results
(``docs/benchmarks.md`` is made so from the test split's results in ``benchmarks/external/rules/``)."""

from __future__ import annotations

import math

from benchmarks.external.corrupt import KINDS, SEVERITIES

ROW_NAMES = {
    "default": "cae_fast default",
    "previous_default": "cae_fast, the default before",
    "shots": "cae_fast --shots",
    "paper": "paper-exact",
    "lapvar": "lapvar",
    "iforest": "IForest 16²",
    "ecod": "ECOD 16²",
}


def _num(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def one_line(row: str, r: dict) -> str:
    return (
        f"{row}: AUC {_num(r['roc_auc'])} AP {_num(r['ap'])} (filtered {_num(r['roc_auc_filtered'])}), "
        f"removed {_pct(r['dirty_removed'])} of dirty, kept {_pct(r['clean_kept'])} of clean, "
        f"{r['seconds_per_1k']:.1f} s/1k frames"
    )


def _name(row: str, results: dict) -> str:
    name = ROW_NAMES.get(row, row)
    return f"{name} ({results['paper_epochs']} epochs)" if row == "paper" else name


def markdown(results: dict) -> str:
    seqs = results["sequences"]
    lines = [
        f"# External benchmark, {results['split']} split (commit {results['commit']})",
        "",
        f"Every row ran with {results['threads']} thread(s). The paper-exact row trains "
        f"{results['paper_epochs']} passes, not the paper's 100. ROC-AUC and AP: on the raw per-frame "
        "score (higher = dirtier); 'filtered': on the tool's median-filtered score (score_med, which "
        "--keep-ordinary and --grow-runs never edit). A dash: undefined (no corrupted frame labelled).",
        "",
        "## Ranking and decision, per sequence",
        "",
        "| sequence | row | ROC-AUC | AP | ROC-AUC filtered | AP filtered | dirty removed | clean kept "
        "| minority kept | all removed | s / 1k frames |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in seqs.items():
        for row, r in entry["rows"].items():
            lines.append(
                f"| {name} ({entry['size']} px) | {_name(row, results)} "
                f"| {_num(r['roc_auc'])} | {_num(r['ap'])} "
                f"| {_num(r['roc_auc_filtered'])} | {_num(r['ap_filtered'])} | {_pct(r['dirty_removed'])} "
                f"| {_pct(r['clean_kept'])} | {_pct(r['minority_kept'])} | {_pct(r['removed'])} "
                f"| {r['seconds_per_1k']:.1f} |"
            )
    rows = list(dict.fromkeys(row for e in seqs.values() for row in e["rows"]))
    for name, entry in seqs.items():
        if not any(r["per_kind"] for r in entry["rows"].values()):
            continue
        lines += [
            "",
            f"## Per kind: {name} ({entry['size']} px), ROC-AUC of the kind against clean / removed",
            "",
        ]
        lines += ["| kind (severity) | " + " | ".join(_name(r, results) for r in rows) + " |"]
        lines += ["|---" * (len(rows) + 1) + "|"]
        for kind in KINDS:
            cells, sev = [], ""
            for row in rows:
                k = entry["rows"].get(row, {}).get("per_kind", {}).get(kind)
                cells.append("–" if k is None else f"{_num(k['roc_auc'])} / {_pct(k['removed'])}")
                if k is not None and entry["layout"] != "shuffled":
                    sev = ",".join(k["by_severity"])
            if any(c != "–" for c in cells):
                lines.append(f"| {kind}{f' ({sev})' if sev else ''} | " + " | ".join(cells) + " |")
    lines += ["", "## Removed, per kind and severity (all sequences of the split pooled)", ""]
    lines += ["| kind | severity | " + " | ".join(_name(r, results) for r in rows) + " |"]
    lines += ["|---|---" + "|---" * len(rows) + "|"]
    for kind in KINDS:
        for s in map(str, SEVERITIES):
            cells = []
            for row in rows:
                n = removed = 0
                for entry in seqs.values():
                    got = entry["rows"].get(row, {}).get("per_kind", {}).get(kind, {}).get("by_severity", {})
                    n += got.get(s, {}).get("n", 0)
                    removed += got.get(s, {}).get("removed_n", 0)
                cells.append(f"{100 * removed / n:.0f}% of {n}" if n else "–")
            lines.append(f"| {kind} | {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import json
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m benchmarks.external.report RESULTS.json [OUT.md]", file=sys.stderr)
        return 2
    text = markdown(json.loads(Path(args[0]).read_text()))
    if len(args) == 2:
        Path(args[1]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
