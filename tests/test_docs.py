"""The documented severity mapping is the implemented one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_degradation_docs_match_the_registry() -> None:
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "scripts" / "make_degradation_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "degradations.md").read_text()
    assert committed == module.render(), "docs/degradations.md is stale: run `make docs`"
