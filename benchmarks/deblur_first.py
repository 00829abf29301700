"""Would a classic deconvolution in front of the network close the motion-blur gap (issue 19)? Per set: the input,
blind Richardson-Lucy alone (``uir.baselines.deblur.RichardsonLucy``), the network alone, and the network given
Richardson-Lucy's output, with how many images the last beats the network alone on.

    python benchmarks/deblur_first.py --data-root ../shared/data
    python benchmarks/deblur_first.py --data-root ../shared/data --iterations 5 --shrink 0.8 --protocols uir-5d

The network is run bare (no analysis, gate or tone guard), told the set's task, as ``uir eval --model`` scores it. A
pre-step only helps if it runs on blurred photos alone: this prints what it costs everywhere else. The defaults (5
updates, the estimated kernel at full width) score higher on ``uir-5d``'s motion blur than the registered
``richardson-lucy`` (kernel width 0.8).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from pathlib import Path

import torch

from uir.baselines.deblur import RichardsonLucy
from uir.benchmarks import get_protocol, sampled_sets
from uir.errors import UirError
from uir.metrics import psnr
from uir.restorer_registry import Restorer
from uir.restorers import load_restorer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--model", default="default", help="a shipped model's name or a weights file")
    p.add_argument("--iterations", type=int, default=5, help="Richardson-Lucy's updates")
    p.add_argument(
        "--shrink",
        type=float,
        default=1.0,
        help="the estimated kernel's widths are multiplied by this (the registered richardson-lucy: 0.8)",
    )
    p.add_argument("--protocols", nargs="+", default=["uir-5d", "fidelity"])
    p.add_argument("--every", type=int, default=1, help="take every n-th image of a set (a quicker look)")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    args = p.parse_args(argv)
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("deblur_first: say where the data is with --data-root (or UIR_DATA_ROOT)")
    if args.iterations < 1 or args.every < 1 or not (math.isfinite(args.shrink) and args.shrink > 0):
        raise SystemExit("deblur_first: --iterations and --every are at least 1, --shrink a number above 0")
    torch.set_grad_enabled(False)
    try:
        for name in args.protocols:
            get_protocol(name)
        network = load_restorer(args.model)
        return _run(args, network)
    except UirError as e:
        raise SystemExit(f"deblur_first: {e}") from None


def _run(args: argparse.Namespace, network: Restorer) -> int:
    deconvolve = RichardsonLucy(iterations=args.iterations, shrink=args.shrink)
    print(f"model {network.name}; Richardson-Lucy {args.iterations} updates, kernel shrink {args.shrink:g}")
    print(f"{'set':<18} {'n':>3} {'input':>7} {'RL':>7} {'model':>7} {'model(RL)':>10} {'model(RL) ahead':>17}")
    for test_set, samples in sampled_sets(args.protocols, args.data_root, args.cache, args.every):
        if samples is None:
            print(f"{test_set.name:<18} data missing")
            continue
        rows = []
        for _, sample, lq in samples:
            if sample.gt is None:
                raise SystemExit(f"deblur_first: {test_set.name} has no references to score against")
            sharpened = deconvolve.restore(lq)
            alone = network.restore(lq, tasks=[test_set.task]).clamp(0, 1)
            after = network.restore(sharpened, tasks=[test_set.task]).clamp(0, 1)
            rows.append([float(psnr(x, sample.gt)[0]) for x in (lq, sharpened, alone, after)])
        means = [statistics.fmean(column) for column in zip(*rows, strict=True)]
        ahead = sum(r[3] > r[2] for r in rows)
        cells = " ".join(f"{m:>7.2f}" for m in means[:3])
        print(
            f"{test_set.name:<18} {len(rows):>3} {cells} {means[3]:>10.2f} {f'{ahead} of {len(rows)}':>17}", flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
