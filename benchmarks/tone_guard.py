"""What each tone-guard policy costs and buys (issue 24): the bare network against ``no-brightening`` and
``keep`` (``uir.restore.guard_tone``), on the sets where tone matters and on those where it must not cost.

    python benchmarks/tone_guard.py --model default --data-root ../shared/data --every 2
    python benchmarks/tone_guard.py --model runs/x/final.safetensors --tolerance 0 --every 4

Sets: CBSD68 darkened to exposure x0.6 (``dark-linear``: in linear light, ``dark-srgb``: in pixel values; nothing
to repair, so the reference is the input), PolyU (real camera noise), and uir-5d's noise σ 25, Rain100L, haze,
motion blur and low light.
Prints per set and policy: mean PSNR, and the mean and worst output/input mean-luminance ratio. ``--every N``
keeps every N-th image of each set (a quicker look; 1 = all).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from uir.benchmarks import POLYU, get_protocol, iter_samples
from uir.degradations.functional import scale_exposure
from uir.metrics import luminance_ratio, psnr
from uir.restore import TONE_POLICIES, TONE_TOLERANCE, guard_tone, restore_tensor
from uir.restorers import load_restorer

DARK_EXPOSURE = 0.6


def sets(data_root: Path, cache: Path, every: int):
    """``(name, samples)`` pairs: each sample ``(lq, gt)``."""
    uir5d = {s.name: s for s in get_protocol("uir-5d").sets}
    clean = uir5d["cbsd68-s25"]
    folder = clean.locate(data_root)

    def dark(space: str):
        for sample in list(iter_samples(get_protocol("fidelity").sets[0], folder, cache))[::every]:
            d = (scale_exposure(sample.gt, DARK_EXPOSURE, space) * 255).round() / 255
            yield d, d

    def of(test_set):
        root = test_set.locate(data_root)
        if root is None:
            return
        for sample in list(iter_samples(test_set, root, cache))[::every]:
            yield sample.lq, sample.gt

    yield "dark-linear", dark("linear")
    yield "dark-srgb", dark("srgb")
    yield "polyu", of(POLYU)
    for name in ("cbsd68-s25", "rain100l", "syn-haze", "syn-motion-blur", "syn-low-light"):
        yield name, of(uir5d[name])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default")
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    p.add_argument("--every", type=int, default=2, help="every N-th image of each set")
    p.add_argument("--tolerance", type=float, default=TONE_TOLERANCE, help="no-brightening's allowance")
    p.add_argument("--sets", nargs="+", help="only these sets (names as printed; default all)")
    args = p.parse_args(argv)
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("tone_guard: say where the data is with --data-root (or UIR_DATA_ROOT)")
    torch.set_grad_enabled(False)
    restorer = load_restorer(args.model)
    policies = ("bare", *[t for t in TONE_POLICIES if t != "free"])
    print(f"model {restorer.name}; no-brightening tolerance {args.tolerance:g}; every {args.every}th image")
    print(f"{'set':<20} {'n':>3} {'input':>7} " + " ".join(f"{q + ' dB':>18} {'lum mean/worst':>15}" for q in policies))
    for name, samples in sets(args.data_root, args.cache, args.every):
        if args.sets and name not in args.sets:
            continue
        scores = {q: [] for q in ("input", *policies)}
        ratios = {q: [] for q in policies}
        for lq, gt in samples:
            out = restore_tensor(restorer, lq)
            scores["input"].append(float(psnr(lq, gt)[0]))
            for q in policies:
                y = out if q == "bare" else guard_tone(out, lq, q, tolerance=args.tolerance)
                scores[q].append(float(psnr(y, gt)[0]))
                ratios[q].append(float(luminance_ratio(y, lq)[0]))
        if not scores["input"]:
            print(f"{name:<20} data missing")
            continue
        cells = [
            f"{statistics.fmean(scores[q]):>18.2f} "
            f"{statistics.fmean(ratios[q]):>7.3f}/{max(ratios[q], key=lambda r: abs(r - 1)):.3f}"
            for q in policies
        ]
        print(f"{name:<20} {len(scores['input']):>3} {statistics.fmean(scores['input']):>7.2f} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
