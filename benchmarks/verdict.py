"""How the detection benchmark judges a configuration on one sequence: the issue's acceptance
(``meets_acceptance``), the comparison with the no-model baseline kind by kind
(``against_baseline``) and the summary table's rows. Pure functions of ``cae_fast.evaluate``'s
metrics dict, so saved results can be judged again offline."""

from __future__ import annotations

from cae_fast.data.synth import KINDS

# The acceptance, per sequence: every kind ranked (ROC-AUC) and removed, clean frames kept.
ACCEPT_AUC = 0.97
ACCEPT_REMOVED = 0.95
ACCEPT_KEPT = 0.95


def meets_acceptance(m: dict) -> bool:
    """Whether one configuration's metrics (``evaluate``'s dict) meet the acceptance on its sequence:
    every kind present at ROC-AUC >= ACCEPT_AUC with >= ACCEPT_REMOVED of its frames removed, and
    >= ACCEPT_KEPT of the clean frames kept. A NaN anywhere fails."""
    kinds_ok = all(
        next(iter(r["roc_auc"].values())) >= ACCEPT_AUC and r["removed"] >= ACCEPT_REMOVED
        for r in m["per_kind"]
    )
    return bool(m["per_kind"]) and kinds_ok and m["clean_kept"] >= ACCEPT_KEPT


def against_baseline(m: dict, base: dict) -> str:
    """How one configuration compares with the no-model baseline on one sequence, kind by kind (the
    issue asks to beat it on every kind): ahead when neither its ROC-AUC nor its removed share is
    lower and one is higher, tied when both are equal (at 3 decimals and whole per cent, as the
    tables print them), behind when neither is higher, mixed otherwise; the overall ROC-AUC last."""
    base_of = {r["kind"]: r for r in base["per_kind"]}
    ahead, tied, behind, mixed = [], [], [], []
    for r in m["per_kind"]:
        b = base_of.get(r["kind"])
        if b is None:
            continue
        a, ab = round(next(iter(r["roc_auc"].values())), 3), round(next(iter(b["roc_auc"].values())), 3)
        x, xb = round(100 * r["removed"]), round(100 * b["removed"])
        if (a, x) == (ab, xb):
            tied.append(f"{r['kind']} ({a:.3f} / {x}%)")
        elif a >= ab and x >= xb:
            ahead.append(r["kind"])
        else:
            (behind if a <= ab and x <= xb else mixed).append(
                f"{r['kind']} ({a:.3f} / {x}% vs {ab:.3f} / {xb}%)"
            )
    parts = [f"ahead on {len(ahead)} of {len(ahead) + len(tied) + len(behind) + len(mixed)} kinds"]
    for word, found in (("tied", tied), ("behind", behind), ("mixed", mixed)):
        parts += [f"{word} on {', '.join(found)}"] if found else []
    return "; ".join(parts) + f"; overall ROC-AUC {m['roc_auc']:.3f} vs {base['roc_auc']:.3f}"


def summary_row(label: str, m: dict) -> str:
    per = {r["kind"]: r for r in m["per_kind"]}
    cells = []
    for kind in KINDS:
        r = per.get(kind)
        cells.append("–" if r is None else f"{next(iter(r['roc_auc'].values())):.3f} / {r['removed']:.0%}")
    return f"| {label} | " + " | ".join(cells) + f" | {m['roc_auc']:.3f} | {m['clean_kept']:.1%} |"


SUMMARY_HEAD = (
    "| sequence, configuration | "
    + " | ".join(f"{k} AUC / removed" for k in KINDS)
    + " | all AUC | clean kept |\n|---|"
    + "---|" * (len(KINDS) + 2)
)
