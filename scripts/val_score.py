"""Score model files on a training config's held-out validation set, as training does (PSNR per group, dB).

    UIR_DATA_ROOT=../shared/data python scripts/val_score.py configs/nafnet_small_uir_fidelity_finetune.yaml \\
        src/uir/weights/nafnet-small-uir.safetensors runs/fidelity/final.safetensors

For comparing weights (a blend, a checkpoint, the shipped file) without touching the test sets. The first row is
the degraded input itself; a model is a ``.safetensors`` path or a registered name.
"""

from __future__ import annotations

import argparse

from uir.build import build_val_set
from uir.config import load_config
from uir.restorers import load_restorer
from uir.train import validation_psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a training config with a val section")
    parser.add_argument("models", nargs="+", help="model files or registered names")
    args = parser.parse_args()
    val = build_val_set(load_config(args.config).val)
    rows = [("input", lambda lq: lq)] + [(name, load_restorer(name).restore) for name in args.models]
    for name, restore in rows:
        scores = validation_psnr(restore, val)
        print(f"{name}: " + "  ".join(f"{group} {value:.2f}" for group, value in scores.items()))


if __name__ == "__main__":
    main()
