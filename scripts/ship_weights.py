"""Write a uir .safetensors file (model, classifier or perceiver) with its floating tensors in fp16, for shipping.

    python scripts/ship_weights.py runs/nafnet_classifier_5d/classifier.safetensors \\
        src/uir/weights/classifier-5d.safetensors

The metadata is kept as it is (less the keys named by ``--drop-meta``: a campaign fallback's ``campaign`` and
``step``, its training position); the loaders cast the tensors back to the model's fp32 on load. Prints the largest
absolute change of any weight, so the rounding can be judged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors.torch import save

from uir.checkpoint import read_safetensors
from uir.io import atomic_write_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--test-pooling",
        type=int,
        metavar="CROP",
        help="record the training crop: NAFNets then pool channel attention over 1.5x CROP at test time (TLC)",
    )
    parser.add_argument(
        "--drop-meta",
        nargs="+",
        default=[],
        metavar="KEY",
        help="metadata keys to leave out (a campaign fallback's training position: campaign step)",
    )
    args = parser.parse_args()
    if args.out.resolve() == args.source.resolve():
        raise SystemExit("ship_weights: OUT must not be SOURCE (the fp32 file would be lost)")
    meta, state = read_safetensors(args.source)
    meta = {k: v for k, v in meta.items() if k not in set(args.drop_meta)}
    if args.test_pooling:
        meta["test_pooling"] = str(args.test_pooling)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    change = max((float((half[k].float() - v.float()).abs().max()) for k, v in state.items() if v.numel()), default=0)
    atomic_write_bytes(args.out, save(half, metadata=meta))
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB); largest change of a weight {change:.2e}")


if __name__ == "__main__":
    main()
