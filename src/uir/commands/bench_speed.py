"""``uir bench-speed``: parameters, GMACs per megapixel and CPU latency of every backbone preset, in one table."""

from __future__ import annotations

import argparse

from uir.commands._batch import parse_floats

EPILOG = """examples:
  uir bench-speed                                  every preset at 256², 512², 1024²
  uir bench-speed --preset nafnet-cpu restormer-cpu --sizes 512,1024 --threads 2
  OMP_NUM_THREADS=2 LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 uir bench-speed

Latency is the median of --repeats timed forward passes after one warm-up, in eval mode without gradients.
A size whose predicted time exceeds --budget seconds is skipped and shown as a dash.
"""


def add_parser(subparsers: argparse._SubParsersAction, formatter: type) -> None:
    p = subparsers.add_parser(
        "bench-speed",
        help="params, GMACs/MPix and CPU latency of every backbone preset",
        description="Measure every backbone preset in one run: parameters, GMACs per megapixel, CPU latency.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    p.add_argument("--preset", nargs="+", help="presets to measure (default: all)")
    p.add_argument("--sizes", default="256,512,1024", help="square input sides (default 256,512,1024)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per size (default 3)")
    p.add_argument("--budget", type=float, default=30.0, help="skip sizes predicted to take longer (seconds)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from uir.models.speed import format_speed_table, speed_table  # heavy: run() loads it, not `uir --help`

    sizes = tuple(int(s) for s in parse_floats(args.sizes, "--sizes"))
    rows = speed_table(args.preset, sizes, threads=args.threads, repeats=args.repeats, time_budget=args.budget)
    print(format_speed_table(rows))
    return 0
