"""The training time in a run's log: steps and hours spent in training steps (validation not counted).

    python scripts/train_hours.py docs/models/nafnet-fr-v2.log.csv docs/models/nafnet-fr-v2-p2.log.csv

Each row of a ``log.csv`` holds the speed (``it_per_s``) over the steps since the row before; their sum over the
rows is the time. Prints one line per log and the total.

``--median``: steps over the median logged speed instead (``uir.runlog.median_rate``), the time the run would have
taken at its typical speed: for runs paused, resumed or slowed by other work beside them for a while.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uir.errors import UirError
from uir.runlog import median_rate, read_log, train_seconds


def hours(path: Path, median: bool = False) -> tuple[int, float]:
    """``(last step, hours)`` of one log; ``median``: the steps at the median logged speed."""
    try:
        rows = read_log(path)
    except UirError as error:
        raise SystemExit(f"train_hours: {error}") from None
    if "it_per_s" not in rows[0]:
        raise SystemExit(f"train_hours: {path}: not a uir training log (no it_per_s column)")
    last = int(rows[-1]["step"])
    if not median:
        return last, train_seconds(rows) / 3600
    rate = median_rate(rows)
    if rate is None:
        raise SystemExit(f"train_hours: {path}: too few logged speeds for a median")
    return last, last / rate / 3600


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs", nargs="+", type=Path)
    p.add_argument("--median", action="store_true", help="steps at the median logged speed (runs paused or crowded)")
    args = p.parse_args(argv)
    steps, total = 0, 0.0
    for path in args.logs:
        last, h = hours(path, args.median)
        steps, total = steps + last, total + h
        print(f"{path}: {last} steps, {h:.2f} h")
    print(f"total: {steps} steps, {total:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
