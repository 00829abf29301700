"""``uir perceive``: Perceive-IR's stage-1 data (quality tiers by 2-fold cross-validation)."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  uir perceive tiers configs/nafnet_cpu_5d.yaml -o runs/tiers --iterations 2000
  uir perceive tiers configs/tiny_test.yaml -o /tmp/tiers --iterations 4 --limit 8 --set train.device=cpu
  uir train configs/perceiver_tiers.yaml --set method.tiers=manifest \\
      --set 'data.sources=[{kind: tiers, root: runs/tiers/manifest.csv}]'

Every sample of CONFIG's training sources (whole images) is written as a low/high pair and put in fold
sha1(file name) mod 2; a restorer (CONFIG's model, method and optimiser, --iterations steps) is trained on each fold
and renders the other fold's degraded images: the medium tier. OUT gets pairs/, medium/, runs/fold0|1/ and
manifest.csv (low, medium, high, task, fold; paths relative to OUT), which a `kind: tiers` data source reads.
Run it again to resume interrupted fold trainings.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "perceive",
        help="Perceive-IR stage-1 data: quality tiers by 2-fold cross-validation",
        description="Perceive-IR's stage-1 data.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    sub = p.add_subparsers(dest="perceive_command", metavar="SUBCOMMAND", required=True)
    tiers = sub.add_parser(
        "tiers",
        help="write (low, medium, high) tiers and their manifest",
        description="Write (low, medium, high) quality tiers by 2-fold cross-validation, and their manifest.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    tiers.add_argument("config", metavar="CONFIG", help="a restorer training config (its sources are the samples)")
    tiers.add_argument("-o", "--out", type=Path, required=True, help="the output folder")
    tiers.add_argument("--iterations", type=int, help="training steps per fold (default: CONFIG's optim.total_iters)")
    tiers.add_argument("--limit", type=int, help="at most this many samples per source")
    tiers.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    tiers.add_argument("--no-progress", action="store_true", help="no progress bars")
    tiers.set_defaults(run=run_tiers)


def run_tiers(args: argparse.Namespace) -> int:
    from uir.config import load_config  # heavy: run() loads it, not `uir --help`
    from uir.tiers import make_tiers  # heavy: run() loads it, not `uir --help`

    cfg = load_config(args.config, args.set)
    manifest = make_tiers(cfg, args.out, iterations=args.iterations, limit=args.limit, progress=not args.no_progress)
    print(f"wrote {manifest}")
    return 0
