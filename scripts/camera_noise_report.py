"""Does the engine's ``camera-noise`` look like real camera noise? Its residual statistics beside PolyU's (issue 24).

    python scripts/camera_noise_report.py --data-root ../shared/data
    python scripts/camera_noise_report.py --data-root ../shared/data --severity 0.3 0.4 0.5 \
        --set nr=1.0 quality=75 chroma_nr=6

For PolyU (every 2nd of the 100 cropped pairs; residual = noisy JPEG - mean of many shots) and for ``camera-noise``
at several severities on held-out clean photos (CBSD432 files 400-431, the residual after the op's own JPEG):
the residual's standard deviation (0-255), the same by brightness of the clean image (four bins), the
correlation of horizontal neighbours 1 and 2 px apart (spatial grain: in-camera noise reduction and demosaicing
make it blotchy) and of the red and green residuals (colour noise vs luminance noise). ``--set`` fixes the op's
parameters (``CameraNoiseParams`` fields) instead of drawing them; with a fixed ``quality`` the residual is taken
against the clean photo saved at that quality, as PolyU's references are JPEGs too (quality 75).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
from pathlib import Path

import torch

from uir import degradations as D
from uir import io
from uir.data import pair_folder
from uir.degradations.compression import jpeg_compress
from uir.degradations.noise import CameraNoiseParams

BINS = ((0.0, 0.15), (0.15, 0.4), (0.4, 0.7), (0.7, 1.01))


def residual_stats(residual: torch.Tensor, clean: torch.Tensor) -> list[float]:
    y = clean.mean(1, keepdim=True).expand_as(residual)
    by_bin = []
    for lo, hi in BINS:
        inside = (y >= lo) & (y < hi)
        by_bin.append(float(residual[inside].std() * 255) if inside.sum() > 100 else float("nan"))
    r = residual - residual.mean()
    power = (r**2).mean()
    near = float((r[..., 1:] * r[..., :-1]).mean() / power)
    far = float((r[..., 2:] * r[..., :-2]).mean() / power)
    red, green = r[0, 0].flatten(), r[0, 1].flatten()
    colour = float((red * green).mean() / (red.std() * green.std()))
    return [float(residual.std() * 255), *by_bin, near, far, colour]


def show(name: str, rows: list[list[float]]) -> None:
    cols = list(zip(*rows, strict=True))
    mean = [statistics.fmean([v for v in c if v == v]) if any(v == v for v in c) else float("nan") for c in cols]
    print(
        f"{name:<22} {mean[0]:5.2f}  "
        + " ".join(f"{v:5.2f}" for v in mean[1:5])
        + f"  {mean[5]:5.2f} {mean[6]:5.2f} {mean[7]:6.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--severity", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2, 0.3])
    p.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="fixed camera-noise parameters")
    args = p.parse_args(argv)
    try:
        fixed = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    except ValueError:
        raise SystemExit(f"camera_noise_report: --set takes NAME=NUMBER items, got {args.set}") from None
    known = {f.name for f in dataclasses.fields(CameraNoiseParams)}
    if set(fixed) - known:
        raise SystemExit(
            f"camera_noise_report: --set: no parameter {sorted(set(fixed) - known)}; it has {sorted(known)}"
        )
    if "quality" in fixed:
        fixed["quality"] = int(fixed["quality"])
    overrides = {"camera-noise": fixed} if fixed else None
    polyu = args.data_root / "real_noisy" / "PolyU_cropped100" if args.data_root else None
    clean_root = args.data_root / "train_clean" / "CBSD432" if args.data_root else None
    if polyu is None or not polyu.is_dir() or not clean_root.is_dir():
        raise SystemExit("camera_noise_report: needs real_noisy/PolyU_cropped100 and train_clean/CBSD432 (--data-root)")
    print(f"{'':<22} {'std':>5}  {'by brightness (dark -> bright)':^23}  {'nb1':>5} {'nb2':>5} {'r-g':>6}")
    rows = []
    for pair in pair_folder(polyu).pairs[::2]:
        lq, gt = io.read_image(pair.lq).image, io.read_image(pair.gt).image
        rows.append(residual_stats(lq - gt, gt))
    show("PolyU (real)", rows)
    clean = io.list_images([clean_root])[400:432]
    for severity in args.severity:
        rows = []
        for i, path in enumerate(clean):
            gt = io.read_image(path).image
            lq, _ = D.degrade(gt, "camera-noise", severity, 1000 + i, overrides)
            reference = jpeg_compress(gt, fixed["quality"]) if fixed.get("quality") else gt
            rows.append(residual_stats(lq - reference, reference))
        show(f"camera-noise s={severity:g}", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
