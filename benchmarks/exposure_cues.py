"""What tells an underexposed photo from a dark one (issue 24): the mean luminance and the shipped classifier's
probability of low light, per set (``uir.inspection.LOW_LIGHT_MEAN`` and ``LOW_LIGHT_CONFIDENCE`` come from here).

    python benchmarks/exposure_cues.py --data-root ../shared/data
    python benchmarks/exposure_cues.py --data-root ../shared/data --classifier runs/cls/classifier.safetensors

Sets: uir-5d's synthetic low light (to be brightened), PolyU's real noisy photos, and CBSD68 at exposure x1, x0.8
and x0.6 in linear light and x0.6 in pixel values (not to be brightened). Prints per set: mean luminance (range),
p(low light) (range), and how many ``uir.inspection.is_underexposed`` calls underexposed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from uir.benchmarks import POLYU, get_protocol, iter_samples
from uir.degradations.functional import scale_exposure
from uir.inspection import Inspector, is_underexposed, low_light_probability


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--classifier", default="default")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    args = p.parse_args(argv)
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("exposure_cues: say where the data is with --data-root (or UIR_DATA_ROOT)")
    torch.set_grad_enabled(False)
    inspector = Inspector.from_files(args.classifier)
    uir5d = {s.name: s for s in get_protocol("uir-5d").sets}
    clean = [
        s.gt
        for s in iter_samples(get_protocol("fidelity").sets[0], uir5d["cbsd68-s25"].locate(args.data_root), args.cache)
    ]
    low = uir5d["syn-low-light"]
    groups = {
        "uir-5d low light": [s.lq for s in iter_samples(low, low.locate(args.data_root), args.cache)],
        "polyu": [s.lq for s in iter_samples(POLYU, POLYU.locate(args.data_root), args.cache)]
        if POLYU.locate(args.data_root)
        else [],
        "cbsd68": clean,
        "cbsd68 x0.8 linear": [scale_exposure(x, 0.8) for x in clean],
        "cbsd68 x0.6 linear": [scale_exposure(x, 0.6) for x in clean],
        "cbsd68 x0.6 srgb": [scale_exposure(x, 0.6, "srgb") for x in clean],
    }
    print(f"{'set':<20} {'n':>3} {'mean luminance (range)':>26} {'p(low light) (range)':>24} underexposed")
    for name, images in groups.items():
        if not images:
            print(f"{name:<20} data missing")
            continue
        lum, prob, dark = [], [], 0
        for x in images:
            x = (x.clamp(0, 1) * 255).round() / 255
            probs, y = inspector.exposure(x)
            lum.append(y)
            prob.append(low_light_probability(probs))
            dark += is_underexposed(probs, y)
        print(
            f"{name:<20} {len(images):>3} {sum(lum) / len(lum):>8.3f} ({min(lum):.3f}-{max(lum):.3f})"
            f" {sum(prob) / len(prob):>12.2f} ({min(prob):.2f}-{max(prob):.2f}) {dark:>6}/{len(images)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
