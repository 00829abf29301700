"""Clean photos softened as a camera's native-resolution crops are: training data for real camera noise (issue 24).

    python scripts/make_soft_photos.py --data-root ../shared/data --out runs/soft-cbsd432
    python scripts/make_soft_photos.py --data-root ../shared/data --out runs/zoom-cbsd432 --zoom 3 6 --sigma 0.3 0.8
    python scripts/make_soft_photos.py --data-root ../shared/data --out runs/zoom-dark --zoom 4 8 --exposure 0.25 0.7

A photo downscaled for the web (CBSD432, SunHays80) is sharper at the pixel level than a camera's own crop, whose
lens, anti-aliasing filter and demosaicing spread each point over 1-2 px (PolyU's references: ``python
benchmarks/soft_photos.py`` calls 73 of 100 motion-blurred, as it does softened SunHays80 photos). A
denoiser that only saw sharp photos keeps (or re-sharpens) what it takes for texture. Each of CBSD432's first 400
photos is blurred by a Gaussian of sigma drawn from ``--sigma`` (seeded per file) and saved as PNG under the same
stem: clean targets of the same softness as the camera crops they stand for. ``--zoom`` also enlarges each photo
by a factor drawn from its range (Lanczos, before the blur) and keeps the centre ``--side`` square: a 512-px crop of
a 24-MPix photo shows a small part of one object, nearly as flat at the pixel level as PolyU's (mean horizontal gradient
1.8 of 255 against CBSD432's 9.3). ``--exposure`` scales each photo's linear light by a factor drawn from its range
(after the blur): dim indoor crops, where real grain is strongest against the signal.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from uir import io
from uir.degradations.functional import gaussian_blur, scale_exposure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sigma", type=float, nargs=2, default=(0.6, 1.3), help="the Gaussian's sigma range, px")
    p.add_argument("--zoom", type=float, nargs=2, default=(1.0, 1.0), help="enlargement range (1 1: none)")
    p.add_argument("--side", type=int, default=512, help="the side of the centre square kept after --zoom")
    p.add_argument("--exposure", type=float, nargs=2, default=(1.0, 1.0), help="linear-light scale range (1 1: none)")
    p.add_argument("--files", type=int, nargs=2, default=(0, 400), help="a slice of CBSD432's sorted photos")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    root = args.data_root / "train_clean" / "CBSD432" if args.data_root else None
    if root is None or not root.is_dir():
        raise SystemExit("make_soft_photos: needs train_clean/CBSD432 (--data-root or UIR_DATA_ROOT)")
    if not 0 < args.sigma[0] <= args.sigma[1]:
        raise SystemExit(f"make_soft_photos: --sigma must be 0 < low <= high, got {args.sigma}")
    if not 1 <= args.zoom[0] <= args.zoom[1]:
        raise SystemExit(f"make_soft_photos: --zoom must be 1 <= low <= high, got {args.zoom}")
    if not 0 < args.exposure[0] <= args.exposure[1] <= 1:
        raise SystemExit(f"make_soft_photos: --exposure must be 0 < low <= high <= 1, got {args.exposure}")
    dim = tuple(args.exposure) != (1.0, 1.0)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = io.list_images([root])[args.files[0] : args.files[1]]
    for i, path in enumerate(paths):
        g = torch.Generator().manual_seed(args.seed * 100_003 + args.files[0] + i)
        sigma = args.sigma[0] + (args.sigma[1] - args.sigma[0]) * float(torch.rand((), generator=g))
        zoom = args.zoom[0] + (args.zoom[1] - args.zoom[0]) * float(torch.rand((), generator=g))
        photo = Image.open(path).convert("RGB")
        if zoom > 1:
            w, h = photo.size
            photo = photo.resize((round(w * zoom), round(h * zoom)), Image.Resampling.LANCZOS)
            left, top = max(0, (photo.width - args.side) // 2), max(0, (photo.height - args.side) // 2)
            photo = photo.crop((left, top, left + min(args.side, photo.width), top + min(args.side, photo.height)))
        image = torch.from_numpy(np.asarray(photo, np.float32) / 255).permute(2, 0, 1)[None]
        soft = gaussian_blur(image, sigma).clamp(0, 1)
        if dim:  # drawn after the others: the photos of the default range stay as they were
            lo, hi = args.exposure
            soft = scale_exposure(soft, lo + (hi - lo) * float(torch.rand((), generator=g)))
        io.write_image(args.out / f"{path.stem}.png", soft)
    zoomed = f", enlarged {args.zoom[0]:g}-{args.zoom[1]:g}x" if args.zoom[1] > 1 else ""
    zoomed += f", exposure x{args.exposure[0]:g}-{args.exposure[1]:g}" if dim else ""
    print(f"wrote {len(paths)} photos softened by sigma {args.sigma[0]:g}-{args.sigma[1]:g} px{zoomed} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
