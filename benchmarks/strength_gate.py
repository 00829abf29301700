"""What ``--strength auto`` costs and saves (issue 20): each set restored once as ``uir restore`` does at full strength,
then scored with the gate at several ``CLEAN_CONFIDENCE`` thresholds (a photo the analysis calls clean with at least
that probability, and not underexposed, comes back as it was).

    python benchmarks/strength_gate.py --data-root ../shared/data
    python benchmarks/strength_gate.py --data-root ../shared/data --model runs/x/final.safetensors --every 2

Sets: ``fidelity`` (clean photos, JPEG q90 and q75: where leaving alone should help) and ``uir-5d`` (degraded: where
the gate must not cost more than 0.1 dB). Prints per set and threshold: how many outputs were left as their input,
the mean PSNR at full strength and with the gate, and the difference. ``--min-change DB`` also asks that the model's
own change be small (PSNR of its output against its input at least ``DB``; ``uir.api.SMALL_CHANGE_DB`` is what
``uir restore`` uses; 0: no such condition). An output left as its input scores ``inf`` against a clean reference
that is the input itself (fidelity's ``clean`` set); the mean is then taken over the images that were restored, and
the count says how many were not.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from pathlib import Path

import torch

from uir.api import SMALL_CHANGE_DB, load
from uir.benchmarks import sampled_sets
from uir.inspection import CLEAN_CONFIDENCE
from uir.metrics import psnr


def _mean(values: list[float]) -> tuple[float, int]:
    """The mean of the finite values, and how many were infinite (identical images)."""
    finite = [v for v in values if math.isfinite(v)]
    return (statistics.fmean(finite) if finite else float("inf")), len(values) - len(finite)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--model", default="default")
    p.add_argument("--thresholds", type=float, nargs="+", default=[CLEAN_CONFIDENCE, 0.95, 0.97])
    p.add_argument(
        "--min-change",
        type=float,
        nargs="+",
        default=[0.0, SMALL_CHANGE_DB],
        metavar="DB",
        help="also require the model's change to be small: PSNR(output, input) >= DB (0: no such condition)",
    )
    p.add_argument("--protocols", nargs="+", default=["fidelity", "uir-5d"])
    p.add_argument("--every", type=int, default=1, help="take every n-th image of a set (a quicker look)")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    args = p.parse_args(argv)
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("strength_gate: say where the data is with --data-root (or UIR_DATA_ROOT)")
    torch.set_grad_enabled(False)
    model = load(args.model, companion=None)  # the gate of the network alone
    print(f"model {model.name}; thresholds {', '.join(f'{t:g}' for t in args.thresholds)}")
    print(
        f"{'set':<18} {'n':>3} {'full':>7}  "
        + "  ".join(f"{'>=' + format(t, 'g'):>6} left   PSNR     Δ" for t in args.thresholds)
    )
    for test_set, samples in sampled_sets(args.protocols, args.data_root, args.cache, args.every):
        if samples is None:
            print(f"{test_set.name:<18} data missing")
            continue
        full, kept, clean, change = [], [], [], []
        for _, sample, lq in samples:
            ((restored, plan),) = model.restore_planned(lq, strength=1)
            full.append(float(psnr(restored.clamp(0, 1), sample.gt)[0]))
            kept.append(float(psnr(lq, sample.gt)[0]))
            clean.append(plan.clean if plan.tone != "free" and plan.clean is not None else 0.0)
            change.append(float(psnr(restored.clamp(0, 1), lq)[0]))
        base, _ = _mean(full)
        for db in args.min_change:
            cells = []
            for t in args.thresholds:
                left = [c >= t and d >= db for c, d in zip(clean, change, strict=True)]
                mean, same = _mean([k if g else f for f, k, g in zip(full, kept, left, strict=True)])
                cells.append(f"{sum(left):>6}/{len(full):<3} {mean:6.2f} {mean - base:+5.2f}" + ("*" if same else " "))
            name = test_set.name + (f" ≥{db:g}dB" if db else "")
            print(f"{name:<18} {len(full):>3} {base:7.2f}  " + "  ".join(cells), flush=True)
    print("* the mean is over the images that were restored: the others are identical to their reference (inf)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
