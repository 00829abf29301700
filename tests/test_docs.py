"""The documented severity mapping is the implemented one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def test_degradation_docs_match_the_registry() -> None:
    module = load_script("make_degradation_docs")
    committed = (ROOT / "docs" / "degradations.md").read_text()
    assert committed == module.render(), "docs/degradations.md is stale: run `make docs`"


def test_the_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the README runs as written, from a copy of the repository's examples."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert any("uir.load()" in block for block in blocks), "the three-line restore is in the README"
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102  (our own documentation)
    assert (tmp_path / "out" / "coffee_restored.png").is_file()
