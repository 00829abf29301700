"""Issue 24: what a geometric self-ensemble of the fine-damage companion gains on PolyU's real camera noise.

    python benchmarks/companion_ensemble.py --data-root ../shared/data
    python benchmarks/companion_ensemble.py --data-root ../shared/data --model nafnet-fr-fine2 --every 2

The companion (a fully convolutional network) restores each PolyU crop under the eight flips and transposes of the
square, each output is turned back, and their means over the first 1, 2, 4 and 8 transforms (identity; + horizontal
flip; + vertical flip and both; + the four transposed ones) are scored against the reference: mean PSNR, the gain
per crop over one pass, and how many crops come out below their input. An ensemble of n costs n passes. No tone
guard and no route: the network alone, as ``uir eval --model nafnet-fr-fine2 --benchmark real-noise`` scores it.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch
from tqdm import tqdm

from uir.api import load
from uir.data import pair_folder
from uir.io import read_image
from uir.methods.amirnet import dihedral, undo_dihedral
from uir.metrics import psnr

ORDER = (0, 4, 6, 2, 1, 3, 5, 7)
"""``uir.methods.amirnet.dihedral`` indices in the order the ensembles take them: identity, left-right flip, up-down
flip, both (``uir.pretrained.ModelRestorer``'s ``flips`` 1, 2, 4), then the four that transpose the square. Kept here
so that one loop scores every ensemble size on the same passes."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--model", default="nafnet-fr-fine2", help="the network to ensemble (a name or a file)")
    p.add_argument("--every", type=int, default=1, help="take every n-th pair (a quicker look)")
    args = p.parse_args(argv)
    if args.every < 1:
        raise SystemExit(f"companion_ensemble: --every must be 1 or more, got {args.every}")
    polyu = args.data_root / "real_noisy" / "PolyU_cropped100" if args.data_root else None
    if polyu is None or not (polyu / "lq").is_dir():
        raise SystemExit("companion_ensemble: needs real_noisy/PolyU_cropped100 (--data-root or UIR_DATA_ROOT)")
    torch.set_grad_enabled(False)
    model = load(args.model, companion=None)
    sizes = (1, 2, 4, 8)
    scores: dict[int, list[float]] = {n: [] for n in sizes}
    inputs: list[float] = []
    for pair in tqdm(pair_folder(polyu).pairs[:: args.every], desc="crops", unit="crop"):
        lq, gt = read_image(pair.lq).image, read_image(pair.gt).image
        inputs.append(float(psnr(lq, gt)[0]))
        total = torch.zeros_like(lq)
        for k, index in enumerate(ORDER, 1):
            out = model.restorer.restore(dihedral(lq, index))
            total += undo_dihedral(out.clamp(0, 1), index)
            if k in scores:
                scores[k].append(float(psnr((total / k).clamp(0, 1), gt)[0]))
    print(f"{model.name} on PolyU, {len(inputs)} pairs: input {statistics.fmean(inputs):.2f} dB")
    print(f"{'passes':>6} {'PSNR':>6} {'gain over 1 pass ± s.e.':>24} {'below input':>11}")
    for n in sizes:
        gains = [a - b for a, b in zip(scores[n], scores[1], strict=True)]
        se = statistics.stdev(gains) / len(gains) ** 0.5 if len(gains) > 1 else 0.0
        below = sum(s < i for s, i in zip(scores[n], inputs, strict=True))
        print(f"{n:>6} {statistics.fmean(scores[n]):6.2f} {statistics.fmean(gains):+17.3f} ± {se:.3f} {below:>11}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
