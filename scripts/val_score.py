"""Score model files on a training config's held-out validation set, as training does (PSNR per group, dB).

    UIR_DATA_ROOT=../shared/data python scripts/val_score.py configs/nafnet_small_uir_fidelity_finetune.yaml \\
        src/uir/weights/nafnet-small-uir.safetensors runs/fidelity/final.safetensors

For comparing weights (a blend, a checkpoint, the shipped file) without touching the test sets. The first row is
the degraded input itself; a model is a ``.safetensors`` path or a registered name.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable

import torch
from torch import Tensor

from uir.build import build_val_set
from uir.config import load_config
from uir.metrics import psnr
from uir.restorers import load_restorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a training config with a val section")
    parser.add_argument("models", nargs="+", help="model files or registered names")
    args = parser.parse_args()
    val = build_val_set(load_config(args.config).val)

    def score(restore: Callable[[Tensor], Tensor]) -> str:
        groups: dict[str, list[float]] = defaultdict(list)
        with torch.no_grad():
            for sample in val:
                groups[sample["group"]].append(float(psnr(restore(sample["lq"]).clamp(0, 1), sample["gt"])[0]))
        return "  ".join(f"{group} {sum(v) / len(v):.2f}" for group, v in groups.items())

    print(f"input: {score(lambda lq: lq)}")
    for name in args.models:
        restorer = load_restorer(name)
        print(f"{name}: {score(restorer.restore)}")


if __name__ == "__main__":
    main()
