"""Validation curves of several runs side by side: what a comparison looked like before its last step.

    python scripts/val_curves.py runs/i21/maskdcpt-s1/finetune runs/i21/maskdcpt-s1/scratch-same-steps

Each argument is a run folder (or its ``log.csv``), optionally ``:NAME`` for its column (default: the run folder's
last two parts, e.g. ``maskdcpt-s1/finetune``). Prints a Markdown table of
``--key`` (default ``psnr/mean``, the validation PSNR averaged over the validation sets) at every validated step,
one column per run, then the difference of each later run to the first ("first minus run"), so a reader sees
whether a gap is opening, closing or steady. A step logged twice (a resumed run) keeps its last row; a run without
that step leaves the cell empty. An unknown ``--key`` is an error that lists the log's validation columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uir.errors import UirError
from uir.runlog import read_log


def curve(spec: str, key: str) -> tuple[str, dict[int, float]]:
    """``(name, {step: value})`` of one run's ``key`` (the rows that validated)."""
    whole = Path(spec).exists() or ":" not in spec  # a path may hold a colon; then it has no :NAME
    path_text, _, name = (spec, "", "") if whole else spec.rpartition(":")
    path = Path(path_text)
    path = path / "log.csv" if path.is_dir() else path
    try:
        rows = read_log(path)
    except UirError as error:
        raise SystemExit(f"val_curves: {error}") from None
    if key not in rows[0]:
        found = ", ".join(k for k in rows[0] if k.startswith(("psnr/", "ssim/"))) or "none"
        raise SystemExit(f"val_curves: {path}: no column {key!r} (validation columns: {found})")
    values = {int(row["step"]): float(row[key]) for row in rows if row.get(key)}
    return name or "/".join(path.parent.parts[-2:]), values


def table(curves: list[tuple[str, dict[int, float]]]) -> list[str]:
    """The Markdown lines: step, each run's value, then each later run's difference to the first."""
    names = [name for name, _ in curves]
    first = curves[0][1]
    header = ["step", *names, *(f"{names[0]} − {name}" for name in names[1:])]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for step in sorted({s for _, values in curves for s in values}):
        cells = [str(step)] + [f"{values[step]:.2f}" if step in values else "" for _, values in curves]
        for _, values in curves[1:]:
            both = step in first and step in values
            cells.append(f"{first[step] - values[step]:+.2f}" if both else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="RUN[:NAME]: a run folder or its log.csv")
    parser.add_argument("--key", default="psnr/mean", help="the logged column (default psnr/mean)")
    args = parser.parse_args(argv)
    curves = [curve(spec, args.key) for spec in args.runs]
    if not any(values for _, values in curves):
        raise SystemExit(f"val_curves: no run has a validated step for {args.key}")
    sys.stdout.write("\n".join(table(curves)) + "\n")


if __name__ == "__main__":
    main()
