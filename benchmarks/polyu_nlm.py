"""Issue 24's bar on real camera noise: OpenCV's non-local means at fixed strengths on PolyU's 100 pairs.

    python benchmarks/polyu_nlm.py --data-root ../shared/data
    python benchmarks/polyu_nlm.py --data-root ../shared/data --h 2 3 4 5 6 --colour-factor 1 2

``cv2.fastNlMeansDenoisingColored`` (CIELab; template 7, search 21, OpenCV's defaults) at luminance strength ``h``
and colour strength ``h`` times ``--colour-factor``, on each noisy crop as read (8-bit): mean PSNR against the
reference and how many crops come out below their input. The best fixed ``h`` is tuned on the test set itself,
so it is a bar, not a method (the registered ``nlm`` estimates its strength per photo instead). A second block
adds eight PolyU residuals (noisy - reference) to other clean photos, sharp and enlarged (``--flat``, made by
``scripts/make_soft_photos.py --zoom``), to tell what NLM owes to PolyU's grain and what to its flat content; a
third prints how flat each set is (mean absolute difference of horizontal neighbours, grey, 0-255).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import cv2
import numpy as np

from uir import io
from uir.data import pair_folder


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255**2 / mse) if mse > 0 else math.inf


def flatness(paths: list[Path]) -> float:
    return float(np.mean([np.abs(np.diff(cv2.imread(str(p), 0).astype(np.float32), axis=1)).mean() for p in paths]))


def nlm(image: np.ndarray, h: float, colour: float) -> np.ndarray:
    return cv2.fastNlMeansDenoisingColored(image, None, h, colour, 7, 21)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--h", type=float, nargs="+", default=[2, 3, 4, 5, 6])
    p.add_argument("--colour-factor", type=float, nargs="+", default=[1.0])
    p.add_argument("--flat", type=Path, default=Path("runs/zoom-cbsd432"), help="enlarged clean photos, if made")
    args = p.parse_args(argv)
    polyu = args.data_root / "real_noisy" / "PolyU_cropped100" if args.data_root else None
    if polyu is None or not (polyu / "lq").is_dir():
        raise SystemExit("polyu_nlm: needs real_noisy/PolyU_cropped100 (--data-root or UIR_DATA_ROOT)")
    pairs = pair_folder(polyu).pairs
    read = [(cv2.imread(str(pair.lq)), cv2.imread(str(pair.gt))) for pair in pairs]
    inputs = [psnr8(lq, gt) for lq, gt in read]
    print(f"PolyU, {len(read)} pairs: input {np.mean(inputs):.2f} dB")
    print(f"{'h':>4} {'colour h':>8} {'PSNR':>6} {'below input':>11}")
    for h in args.h:
        for factor in args.colour_factor:
            scores = [psnr8(nlm(lq, h, h * factor), gt) for lq, gt in read]
            below = sum(s < i for s, i in zip(scores, inputs, strict=True))
            print(f"{h:>4g} {h * factor:>8g} {np.mean(scores):>6.2f} {below:>7}/{len(read)}")
    grain = [lq.astype(np.float32) - gt.astype(np.float32) for lq, gt in read[::12][:8]]
    clean_root = args.data_root / "train_clean" / "CBSD432"
    contents = {"CBSD432 400-431 (sharp)": io.list_images([clean_root])[400:432:4]}
    if args.flat.is_dir():
        contents[f"{args.flat.name} (flat)"] = io.list_images([args.flat])[::50][:8]
    print("\nPolyU's grain on other photos (8 each): input, then NLM at each h (colour h = h)")
    for name, paths in contents.items():
        rows: dict[str, list[float]] = {"input": []}
        for residual, path in zip(grain, paths, strict=False):
            clean = cv2.imread(str(path)).astype(np.float32)
            h, w = min(residual.shape[0], clean.shape[0]), min(residual.shape[1], clean.shape[1])
            clean = clean[:h, :w]
            noisy = np.clip(clean + residual[:h, :w], 0, 255).round().astype(np.uint8)
            rows["input"].append(psnr8(noisy, clean))
            for strength in args.h:
                rows.setdefault(f"h {strength:g}", []).append(psnr8(nlm(noisy, strength, strength), clean))
        print(f"  {name}: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in rows.items()))
    print("\nFlatness (mean |horizontal gradient|, 0-255):")
    sets = {"PolyU references": [pair.gt for pair in pairs], "CBSD432 (all)": io.list_images([clean_root])}
    if args.flat.is_dir():
        sets[f"{args.flat.name}"] = io.list_images([args.flat])
    for name, paths in sets.items():
        print(f"  {name}: {flatness(paths):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
