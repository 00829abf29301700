"""Is a model's 2-/4-pixel artifact score a pattern it adds, or only residual error? (issue 19)

    python benchmarks/artifact_origin.py MODEL [MODEL...] --set syn-low-light --images 4 --data-root ../shared/data

For the first IMAGES images of a ``uir-5d`` set, prints per model: the artifact score (the outputs' energy at the
2- and 4-px periods over the references'), and the same energy of the error ``output - reference`` over that of the
error with its pixels shuffled (which keeps its size and destroys any pattern): about 1 for an error without
periodic structure, far above 1 for a pattern (or for a reference pattern the output lost).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from uir.benchmarks import get_protocol, iter_samples
from uir.metrics import periodic_energy
from uir.restorers import load_restorer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--set", default="syn-low-light", help="a set of the uir-5d protocol")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("UIR_DATA_ROOT", "../shared/data")))
    parser.add_argument("--cache", type=Path, default=Path("runs/artifact-origin-cache"))
    args = parser.parse_args(argv)
    test_set = next(s for s in get_protocol("uir-5d").sets if s.name == args.set)
    folder = test_set.locate(args.data_root)
    if folder is None:
        raise SystemExit(f"artifact_origin: no data for {args.set} under {args.data_root}")
    samples = list(iter_samples(test_set, folder, args.cache, args.images))
    for spec in args.models:
        model = load_restorer(spec)
        out_e = ref_e = err_e = shuffled_e = 0.0
        for sample in samples:
            with torch.no_grad():
                out = model.restore(sample.lq[None] if sample.lq.ndim == 3 else sample.lq).float().clamp(0, 1)
            gt = sample.gt[None] if sample.gt.ndim == 3 else sample.gt
            err = out - gt
            order = torch.randperm(err[0, 0].numel(), generator=torch.Generator().manual_seed(0))
            shuffled = err.flatten(2)[..., order].reshape(err.shape)
            out_e += float(periodic_energy(out))
            ref_e += float(periodic_energy(gt))
            err_e += float(periodic_energy(err))
            shuffled_e += float(periodic_energy(shuffled))
        print(
            f"{spec}: {args.set}, {len(samples)} images: artifact score {out_e / ref_e:.2f}; "
            f"error periodic / shuffled {err_e / shuffled_e:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
