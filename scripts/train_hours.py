"""The training time in a run's log: steps and hours spent in training steps (validation not counted).

    python scripts/train_hours.py docs/models/nafnet-fr-v2.log.csv docs/models/nafnet-fr-v2-p2.log.csv

Each row of a ``log.csv`` holds the speed (``it_per_s``) over the steps since the row before; their sum over the
rows is the time. Prints one line per log and the total.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uir.errors import UirError
from uir.runlog import read_log, train_seconds


def hours(path: Path) -> tuple[int, float]:
    """``(last step, hours)`` of one log."""
    try:
        rows = read_log(path)
    except UirError as error:
        raise SystemExit(f"train_hours: {error}") from None
    if "it_per_s" not in rows[0]:
        raise SystemExit(f"train_hours: {path}: not a uir training log (no it_per_s column)")
    return int(rows[-1]["step"]), train_seconds(rows) / 3600


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs", nargs="+", type=Path)
    args = p.parse_args(argv)
    steps, total = 0, 0.0
    for path in args.logs:
        last, h = hours(path)
        steps, total = steps + last, total + h
        print(f"{path}: {last} steps, {h:.2f} h")
    print(f"total: {steps} steps, {total:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
