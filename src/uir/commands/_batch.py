"""What every many-files subcommand shares: one progress bar, per-file failures, a summary, output names."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from uir.errors import UirError


def run_each(paths: Sequence[Path], work: Callable[[Path], None], desc: str) -> int:
    """Call ``work`` on every path; a failing file prints one line and the rest still run.

    Returns:
        The exit code: 0 if every file went through, 1 if any failed (after a summary line).
    """
    failures = 0
    bar = tqdm(paths, desc=desc, unit="img", file=sys.stderr, disable=len(paths) < 2 or not sys.stderr.isatty())
    for path in bar:
        try:
            work(path)
        except UirError as exc:
            failures += 1
            bar.write(f"uir: error: {exc}", file=sys.stderr)
    if failures:
        print(f"uir: {failures} of {len(paths)} file(s) failed", file=sys.stderr)
        return 1
    return 0


def output_names(paths: Sequence[Path], out_dir: Path, suffix: str | Callable[[Path], str]) -> dict[Path, Path]:
    """A distinct output file inside ``out_dir`` for every input: ``<stem><suffix>``, numbered when stems clash.

    Args:
        suffix: the output's suffix, or a function of the input path that gives it (``uir restore`` keeps TIFF).

    A stem that a path would swallow (``..png`` has the stem ``.``) becomes ``image``, so every name lands inside
    ``out_dir`` whatever the input is called.
    """
    names: dict[Path, Path] = {}
    taken: set[str] = set()
    for path in paths:
        end = suffix(path) if callable(suffix) else suffix
        base = path.stem if path.stem.strip(". ") else "image"
        stem, n = base, 1
        while stem.lower() in taken:  # the stem, not the name: extra outputs (<stem>_compare.jpg) derive from it
            n += 1
            stem = f"{base}-{n}"
        taken.add(stem.lower())
        names[path] = out_dir / (stem + end)
        assert names[path].parent == out_dir and names[path].name == stem + end, names[path]
    return names


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """``"0.1,0.5"`` → ``(0.1, 0.5)``; a one-line error otherwise."""
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UirError(f"{what} must be comma-separated numbers, got {text!r}") from None
