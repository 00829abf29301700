"""What tells a photo that needs nothing from one that needs restoring (issue 20, ``--strength auto``): per set, the
analysis' p(clean) and top type, the blind noise σ and JPEG quality estimates, and what they cost.

    python benchmarks/strength_cues.py --data-root ../shared/data
    python benchmarks/strength_cues.py --data-root ../shared/data --classifier classifier-5d --no-estimates
    python benchmarks/strength_cues.py --data-root ../shared/data --restored nafnet-small-uir --every 2

Sets: fidelity's (CBSD68 as it is, JPEG q90, q75: to be left alone or nearly) and uir-5d's five (to be restored);
PolyU's real noisy photos where present. ``--classifier`` is the analysis (default: the shipped calibrated one;
``classifier-5d``: the bare classifier). ``--restored MODEL`` adds each set's outputs of that model (what the gate
sees when a restored photo goes through again). Prints per set: p(clean) mean and range, how many have clean as the
top type, how many reach ``CLEAN_CONFIDENCE`` (what ``--strength auto`` leaves as it is), the median and range of
the σ and quality estimates (on the ``uir.inspection.ESTIMATE_SIDE`` centre crop; quality ``nan`` counted as
"none"), and the seconds each took per image.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import torch

from uir.benchmarks import POLYU, get_protocol, iter_samples
from uir.inspection import CLEAN, CLEAN_CONFIDENCE, ESTIMATE_SIDE, Inspector, center_crop
from uir.metrics.estimates import jpeg_quality, noise_sigma


def _range(values: list[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "none"
    return f"{statistics.median(finite):6.1f} ({min(finite):.1f}-{max(finite):.1f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--classifier", default="default")
    p.add_argument("--restored", default=None, help="also measure this model's outputs of every set")
    p.add_argument("--no-estimates", action="store_true", help="skip the σ and quality estimates (the slow part)")
    p.add_argument("--every", type=int, default=1, help="take every n-th image of a set (a quicker look)")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    args = p.parse_args(argv)
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("strength_cues: say where the data is with --data-root (or UIR_DATA_ROOT)")
    torch.set_grad_enabled(False)
    inspector = Inspector.from_files(args.classifier)
    model = None
    if args.restored:
        from uir.api import load

        model = load(args.restored, companion=None)  # the network alone
    sets = [*get_protocol("fidelity").sets, *get_protocol("uir-5d").sets]
    if POLYU.locate(args.data_root):
        sets.append(POLYU)
    print(
        f"{'set':<22} {'n':>3} {'p(clean) (range)':>18} {'top clean':>9} {'left':>7} {'noise σ (range)':>20}"
        f" {'JPEG quality (range)':>22} {'s/σ':>5} {'s/q':>5}"
    )
    for test_set in sets:
        root = test_set.locate(args.data_root)
        if root is None:
            print(f"{test_set.name:<22} data missing")
            continue
        images = [s.lq for i, s in enumerate(iter_samples(test_set, root, args.cache)) if i % args.every == 0]
        groups = [(test_set.name, images)]
        if model is not None:
            groups.append((f"{test_set.name} restored", [model.restore_tensor(x) for x in images]))
        for name, group in groups:
            clean, top, left, sigma, quality, t_sigma, t_quality = [], 0, 0, [], [], 0.0, 0.0
            for x in group:
                x = (x.clamp(0, 1) * 255).round() / 255
                probs, _ = inspector.exposure(x)
                clean.append(probs.get(CLEAN, 0.0))
                top += max(probs, key=probs.get) == CLEAN
                left += probs.get(CLEAN, 0.0) >= CLEAN_CONFIDENCE
                if args.no_estimates:
                    continue
                crop = center_crop(x, ESTIMATE_SIDE)
                t0 = time.perf_counter()
                sigma.append(float(noise_sigma(crop)[0]))
                t1 = time.perf_counter()
                quality.append(float(jpeg_quality(crop)[0]))
                t_sigma, t_quality = t_sigma + t1 - t0, t_quality + time.perf_counter() - t1
            n = len(group)
            print(
                f"{name:<22} {n:>3} {sum(clean) / n:8.2f} ({min(clean):.2f}-{max(clean):.2f}) {top:>5}/{n:<3}"
                f" {left:>3}/{n:<3}"
                f" {_range(sigma):>20} {_range(quality):>22} {t_sigma / n:5.2f} {t_quality / n:5.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
