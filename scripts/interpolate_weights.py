"""Blend two uir model files of the same network weight by weight: OUT = (1 - alpha) * A + alpha * B.

    python scripts/interpolate_weights.py src/uir/weights/nafnet-small-uir.safetensors \\
        runs/fidelity/final.safetensors --alpha 0.5 /tmp/blend-0.5.safetensors

Meant for two fine-tunes of one model (B trained from A's weights), where the straight line between them stays
in one basin and trades what each learned ("model soups", WiSE-FT). A and B must describe the same backbone. Written
in fp16 like the shipped files, with A's metadata (backbone, recipe) less its validation scores, both files' labels,
and a note of the blend.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import save

from uir.checkpoint import read_safetensors
from uir.io import atomic_write_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="the weights at alpha 0")
    parser.add_argument("b", type=Path, help="the weights at alpha 1")
    parser.add_argument("out", type=Path)
    parser.add_argument("--alpha", type=float, required=True, help="the share of B, in [0, 1]")
    args = parser.parse_args()
    if not 0.0 <= args.alpha <= 1.0:
        raise SystemExit(f"interpolate_weights: --alpha must be in [0, 1], got {args.alpha}")
    if args.out.resolve() in (args.a.resolve(), args.b.resolve()):
        raise SystemExit("interpolate_weights: OUT must be a new file, not A or B")
    meta_a, state_a = read_safetensors(args.a)
    meta_b, state_b = read_safetensors(args.b)
    for key in ("backbone", "overrides"):
        if meta_a.get(key) != meta_b.get(key):
            raise SystemExit(f"interpolate_weights: A and B differ in {key}: {meta_a.get(key)} vs {meta_b.get(key)}")
    if state_a.keys() != state_b.keys() or any(state_a[k].shape != state_b[k].shape for k in state_a):
        raise SystemExit("interpolate_weights: A and B do not hold the same tensors")
    blend = {
        k: ((1.0 - args.alpha) * a.float() + args.alpha * state_b[k].float()).half() if a.is_floating_point() else a
        for k, a in state_a.items()
    }
    # A's validation scores and step describe A, not the blend: dropped. The labels are both files' classes.
    meta = {k: v for k, v in meta_a.items() if k not in ("psnr", "step")}
    labels = json.loads(meta_a.get("labels", "[]"))
    meta["labels"] = json.dumps(labels + [x for x in json.loads(meta_b.get("labels", "[]")) if x not in labels])
    meta["blend"] = json.dumps({"a": args.a.name, "b": args.b.name, "alpha": args.alpha})
    atomic_write_bytes(args.out, save(blend, metadata=meta))
    print(f"wrote {args.out}: {1 - args.alpha:g} x {args.a.name} + {args.alpha:g} x {args.b.name}")


if __name__ == "__main__":
    main()
