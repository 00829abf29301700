"""Does the analysis take a soft photo for a blurred one (issue 24)? Its calls on sharp, soft and blurred sets.

    python benchmarks/soft_photos.py --data-root ../shared/data
    python benchmarks/soft_photos.py --data-root ../shared/data --classifier runs/analysis-soft.safetensors

A camera's native-resolution crop is softer than a downscaled photo (lens, anti-aliasing filter, demosaicing);
nothing needs repair, but an analysis fitted on downscaled photos may call it motion-blurred, and the default
model then re-sharpens it. Sets: SunHays80's centre 512² crops as saved (downscaled JPEG photos), the same softened
by a Gaussian of sigma 0.8 and 1.2 px, PolyU's real noisy crops and their references (native resolution), CBSD68,
and uir-5d's motion blur and haze (to be called damaged). Prints per set the share of each top call and how many
the gate of ``--strength auto`` would leave (clean at ``uir.inspection.CLEAN_CONFIDENCE`` or more).
"""

from __future__ import annotations

import argparse
import collections
import os
from pathlib import Path

import torch

from uir import io
from uir.benchmarks import POLYU, get_protocol, iter_samples
from uir.degradations.functional import gaussian_blur
from uir.inspection import CLEAN_CONFIDENCE, Inspector, center_crop

SIDE = 512


def quantize(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--classifier", default="default", help="the analysis (default: the shipped one) or a file")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    args = p.parse_args(argv)
    sun = args.data_root / "train_clean" / "SunHays80" if args.data_root else None
    if sun is None or not sun.is_dir():
        raise SystemExit("soft_photos: needs train_clean/SunHays80 (--data-root or UIR_DATA_ROOT)")
    torch.set_grad_enabled(False)
    inspector = Inspector.from_files(args.classifier)
    uir5d = {s.name: s for s in get_protocol("uir-5d").sets}
    sharp = [center_crop(io.read_image(path).image, SIDE) for path in io.list_images([sun])]
    groups = {
        "SunHays80 crops": sharp,
        "  softened, sigma 0.8": [gaussian_blur(x, 0.8) for x in sharp],
        "  softened, sigma 1.2": [gaussian_blur(x, 1.2) for x in sharp],
    }
    polyu = POLYU.locate(args.data_root)
    if polyu:
        samples = list(iter_samples(POLYU, polyu, args.cache))
        groups["PolyU noisy"] = [s.lq for s in samples]
        groups["PolyU references"] = [s.gt for s in samples]
    for name, label in (
        ("cbsd68-s25", "CBSD68"),
        ("syn-motion-blur", "uir-5d motion blur"),
        ("syn-haze", "uir-5d haze"),
    ):
        test = uir5d[name]
        samples = list(iter_samples(test, test.locate(args.data_root), args.cache))
        groups[label] = [s.gt for s in samples] if label == "CBSD68" else [s.lq for s in samples]
    print(f"{'set':<24} {'n':>3}  {'left by the gate':>16}  top calls")
    for name, images in groups.items():
        calls, left = collections.Counter(), 0
        for x in images:
            probs, _ = inspector.exposure(quantize(x))
            calls[max(probs, key=probs.get)] += 1
            left += probs.get("clean", 0.0) >= CLEAN_CONFIDENCE
        said = ", ".join(f"{k} {v}" for k, v in calls.most_common())
        print(f"{name:<24} {len(images):>3}  {left:>16}  {said}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
