"""PSNR of models on every degradation type of the engine, at one severity, on a few CBSD68 photos.

    python scripts/per_type_gains.py OLD.safetensors nafnet-small-uir --severity 0.5 --images 8

Every 8th CBSD68 image (from the 2nd), degraded by each of the 19 types with seeds 100, 101, ...; prints a
tab-separated table (input and each model, mean PSNR dB) and the mean over the types. For what `uir-5d` does not
cover: the types outside the 5-task mix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from uir import io
from uir.degradations import ALL_TYPES, apply, draw
from uir.metrics import psnr
from uir.restorers import load_restorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model files or registered names")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--severity", type=float, default=0.5)
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    files = sorted((args.data_root / "denoise" / "CBSD68").glob("*.png"))[1::8][: args.images]
    if not files:
        raise SystemExit(f"per_type_gains: no CBSD68 images under {args.data_root / 'denoise' / 'CBSD68'}")
    clean = [io.read_image(f).image for f in files]
    models = {spec: load_restorer(spec) for spec in args.models}
    columns = ["input", *models]
    print("type", *columns, sep="\t")
    totals = dict.fromkeys(columns, 0.0)
    for kind in ALL_TYPES:
        scores = dict.fromkeys(columns, 0.0)
        for i, x in enumerate(clean):
            lq = apply(x, draw(kind, args.severity, seed=100 + i))
            scores["input"] += float(psnr(lq, x)[0]) / len(clean)
            for spec, model in models.items():
                with torch.no_grad():
                    scores[spec] += float(psnr(model.restore(lq).clamp(0, 1), x)[0]) / len(clean)
        for c in columns:
            totals[c] += scores[c] / len(ALL_TYPES)
        print(kind, *(f"{scores[c]:.2f}" for c in columns), sep="\t", flush=True)
    print("mean", *(f"{totals[c]:.2f}" for c in columns), sep="\t")


if __name__ == "__main__":
    main()
