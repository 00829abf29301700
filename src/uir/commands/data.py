"""``uir data``: look at data folders before training or evaluating on them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uir.data import check_folder

EPILOG = """examples:
  uir data check ../shared/data/derain/Rain100L
  uir data check my_pairs/ --layout paired
  uir data check ../shared/data/denoise/CBSD68 --json

Layouts: paired (lq/ + gt/), sots, rain100l, gopro, lol, levin, clean (a plain folder of photos).
The exit code is 0 when every image reads and every file is matched, 1 otherwise.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "data",
        help="inspect data folders (layout, pairs, unreadable images)",
        description="Inspect data folders.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="say what a folder holds: layout, counts, unmatched files, unreadable images",
        description="Say what a data folder holds: layout, counts, unmatched files, unreadable images.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    check.add_argument("folder", type=Path, metavar="DIR")
    check.add_argument("--layout", help="the layout to check against (default: detected)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:

    report = check_folder(args.folder, layout=args.layout)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1
