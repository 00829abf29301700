"""Does a model remove camera grain? PSNR in -> out of bare networks on faint noise of three kinds (issue 24).

    python benchmarks/camera_noise_gain.py --data-root ../shared/data --models default

On held-out clean photos (CBSD432 files 400-431, every 4th): the engine's ``camera-noise`` at severity 0.1, 0.2 and
0.3 (seeded), white Gaussian noise at sigma 3, 5 and 10 (seeded), and PolyU's own grain (``noisy - reference`` of
eight of its pairs) added to the clean photo, cropped to the smaller of the two. Each model restores the noisy
image as a whole, bare (no tone guard, full strength). A model that has learned a kind of noise gains on it; one
that takes the grain for texture gives back its input, or less. A second input row gives the camera-noise draws
without the camera's JPEG: the share of the damage that is compression, not grain.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from uir import degradations as D
from uir import io
from uir.api import load
from uir.data import pair_folder
from uir.degradations.noise import add_gaussian_noise
from uir.metrics import psnr

KINDS = (("camera-noise", 0.1), ("camera-noise", 0.2), ("camera-noise", 0.3), ("gauss", 3), ("gauss", 5))
KINDS += (("gauss", 10), ("polyu-grain", 0))


def noisy(kind: str, level: float, clean: torch.Tensor, i: int, grains: list[torch.Tensor]) -> torch.Tensor:
    if kind == "camera-noise":
        return D.degrade(clean, kind, level, 1000 + i)[0]
    if kind == "gauss":
        return add_gaussian_noise(clean, level, torch.Generator().manual_seed(i))
    grain = grains[i % len(grains)]
    h, w = min(clean.shape[-2], grain.shape[-2]), min(clean.shape[-1], grain.shape[-1])
    return (clean[..., :h, :w] + grain[..., :h, :w]).clamp(0, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--models", nargs="+", default=["default"])
    args = p.parse_args(argv)
    root = args.data_root
    polyu = root / "real_noisy" / "PolyU_cropped100" if root else None
    clean_root = root / "train_clean" / "CBSD432" if root else None
    if polyu is None or not polyu.is_dir() or not clean_root.is_dir():
        raise SystemExit("camera_noise_gain: needs real_noisy/PolyU_cropped100 and train_clean/CBSD432 (--data-root)")
    torch.set_grad_enabled(False)
    grains = []
    for pair in pair_folder(polyu).pairs[1::12]:
        grains.append(io.read_image(pair.lq).image - io.read_image(pair.gt).image)
    clean = [io.read_image(path).image for path in io.list_images([clean_root])[400:432:4]]
    names = [f"{k} {v:g}" if k != "polyu-grain" else k for k, v in KINDS]
    print(f"{'':<26}" + "".join(f"{n:>17}" for n in names))
    inputs = {}
    for kind, level in KINDS:
        inputs[kind, level] = [noisy(kind, level, c, i, grains) for i, c in enumerate(clean)]
    print(f"{'input':<26}" + "".join(f"{mean_psnr(inputs[k], clean):>17.2f}" for k in KINDS))
    # how much of camera-noise's damage is the camera's JPEG (quality 88-98 in 3 draws of 4): the same draws without it
    unjpeg = {"camera-noise": {"quality": 0}}
    row = [
        f"{mean_psnr([D.degrade(c, k, v, 1000 + i, unjpeg)[0] for i, c in enumerate(clean)], clean):>17.2f}"
        if k == "camera-noise"
        else f"{'-':>17}"
        for k, v in KINDS
    ]
    print(f"{'input without its JPEG':<26}" + "".join(row))
    for name in args.models:
        model = load(name)
        row = []
        for k in KINDS:
            outs = [model.restorer.restore(x) for x in inputs[k]]
            row.append(mean_psnr(outs, clean))
        print(f"{model.name[:26]:<26}" + "".join(f"{v:>17.2f}" for v in row))
    return 0


def mean_psnr(images: list[torch.Tensor], clean: list[torch.Tensor]) -> float:
    return statistics.fmean(
        float(psnr(x.clamp(0, 1), c[..., : x.shape[-2], : x.shape[-1]])) for x, c in zip(images, clean, strict=True)
    )


if __name__ == "__main__":
    raise SystemExit(main())
