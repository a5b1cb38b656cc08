"""The package layout follows the data: no package imports one that comes later in the flow
(data -> model -> train -> score -> decide -> output -> cli), except training's trimming, which
asks score and decide who trains; and no module grows past the size a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

import cae_fast

ROOT = Path(cae_fast.__file__).parent
FLOW = ["data", "model", "train", "score", "decide", "output", "cli"]
ALLOWED = {("train", "score"), ("train", "decide")}  # the trimming
MAX_LINES = 420


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "cae_fast" and parts[1] in FLOW else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_no_package_imports_a_later_stage():
    backward = []
    for path in ROOT.rglob("*.py"):
        here = path.relative_to(ROOT).parts[0]
        if here not in FLOW:
            continue
        for module in _imports(path):
            there = _stage(module)
            if there and FLOW.index(there) > FLOW.index(here) and (here, there) not in ALLOWED:
                backward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert backward == []


def test_no_module_is_over_the_size_limit():
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert long == []
