"""PolyU crops at 400 %: the input, the default settings without the companion, with it, and the reference.

    python scripts/make_companion_figure.py --data-root ../shared/data docs/companion-polyu-400.jpg

Each row is a 96-px crop of one PolyU photo (``--photos``: indices in the set's sorted order), enlarged 4× with
nearest-neighbour pixels so that grain, patterns and halos show; the columns are the noisy input, ``uir restore``'s
default settings with the companion turned off (``--companion none``), the default settings (the fine-damage
companion on), and the reference (the mean of many shots). Prints each whole photo's PSNR against its reference.

``--networks`` puts networks side by side instead (model files or names, each alone, told the task camera-noise as
the route runs the companion): the longer-trained companion candidate that smooths a plush toy's fur
(docs/models/nafnet-fr-fine2.md, "A longer run")::

    python scripts/make_companion_figure.py --data-root ../shared/data --networks nafnet-fr-fine2 \
        runs/fine5-256/final.safetensors --photos 28 --at 384 384 docs/companion-fine5-fur.jpg
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from uir.api import load
from uir.data import pair_folder
from uir.errors import UirError
from uir.io import atomic_write_bytes


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="the figure (.jpg or .png)")
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--photos", type=int, nargs="+", default=[92, 99, 37])
    p.add_argument("--at", type=int, nargs=2, default=[208, 208], metavar=("Y", "X"), help="the crop's top left")
    p.add_argument("--side", type=int, default=96)
    p.add_argument("--networks", nargs="+", metavar="SPEC", help="networks alone instead of the default settings")
    args = p.parse_args(argv)
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("make_companion_figure: say where the data is with --data-root (or UIR_DATA_ROOT)")
    pairs = pair_folder(args.data_root / "real_noisy" / "PolyU_cropped100").pairs  # uir eval's order
    if not all(0 <= index < len(pairs) for index in args.photos):
        raise SystemExit(f"make_companion_figure: --photos are indices from 0 to {len(pairs) - 1}")
    try:
        if args.networks:
            models = [load(spec, companion=None) for spec in args.networks]
            restorers = [lambda lq, m=m: m.restore(lq, task="camera-noise") for m in models]
            names = ("input", *args.networks)
        else:
            alone, paired = load("default", companion=None), load("default")
            restorers = [alone.restore, paired.restore]
            names = ("input", "without the companion", "with it")
    except UirError as e:
        raise SystemExit(f"make_companion_figure: {e}") from None
    rows = []
    for index in args.photos:
        lq_path, gt_path = pairs[index].lq, pairs[index].gt
        lq, gt = (np.asarray(Image.open(f).convert("RGB")) for f in (lq_path, gt_path))
        y, x, side = *args.at, args.side
        if side < 1 or min(y, x) < 0 or y + side > lq.shape[0] or x + side > lq.shape[1]:
            raise SystemExit(f"make_companion_figure: a {side}-px crop at {y}, {x} is not inside {lq_path.name}")
        try:
            outs = [lq, *(restore(lq) for restore in restorers), gt]
        except UirError as e:
            raise SystemExit(f"make_companion_figure: {e}") from None
        print(f"{lq_path.name}: " + ", ".join(f"{n} {_psnr(o, gt):.2f} dB" for n, o in zip(names, outs, strict=False)))
        crops = [np.kron(o[y : y + side, x : x + side], np.ones((4, 4, 1), np.uint8)) for o in outs]
        rows.append(np.concatenate(crops, 1))
    picture = Image.fromarray(np.concatenate(rows, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG" if args.out.suffix.lower() in (".jpg", ".jpeg") else "PNG", quality=92)
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
