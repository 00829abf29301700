"""What the degradation analysis calls a model's restored outputs, per degradation type (issue 20).

    python benchmarks/analysis_restored.py --data-root ../shared/data --models default fast --count 60

Draws ``--count`` held-out 320² crops (CBSD432 400-431, the ``5d`` mix at severity 0.1-1, seeded), restores each
with every model told its type (full strength, as ``scripts/train_analysis.py`` makes its ``restored`` clean
samples), and prints per type and model how many outputs the analysis' top class calls clean, what it calls the
others, and the outputs' PSNR gain over their input: an output called by its own type is damage the model left.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

import torch

from uir.api import load
from uir.data.datasets import SyntheticDataset
from uir.degradations import Mix, get_mix
from uir.methods import load_classifier
from uir.metrics import psnr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--models", nargs="+", default=["default"])
    p.add_argument("--classifier", default="default", help="the analysis (default: the shipped one)")
    p.add_argument("--count", type=int, default=60)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args(argv)
    data = (args.data_root / "train_clean" / "CBSD432") if args.data_root else None
    if data is None or not data.is_dir():
        raise SystemExit("analysis_restored: --data-root must hold train_clean/CBSD432")
    torch.set_grad_enabled(False)
    analysis = load_classifier(args.classifier)
    models = {name: load(name, companion=None) for name in args.models}  # the network alone
    mix = get_mix("5d")
    dataset = SyntheticDataset(data, Mix("analysis:any", mix.weights, (0.1, 1.0), mix.overrides), crop=320,
                               seed=args.seed, files=(400, 432))  # fmt: skip
    dataset.length = max(args.count, len(dataset))  # sample i is a crop of image i % files: several per image
    picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))[: args.count].tolist()
    called: dict = defaultdict(lambda: defaultdict(list))
    gains: dict = defaultdict(lambda: defaultdict(list))
    for i in picks:
        sample = dataset[i]
        before = float(psnr(sample["lq"][None], sample["gt"][None])[0])
        for name, model in models.items():
            out = model.restore_tensor(sample["lq"][None], task=sample["label"], strength=1)
            probs = analysis.classify(out[0])
            called[sample["label"]][name].append(max(probs, key=probs.get))
            gains[sample["label"]][name].append(float(psnr(out, sample["gt"][None])[0]) - before)
    print("| type | model | outputs | called clean | called otherwise | PSNR gain (dB) |")
    print("|---|---|---|---|---|---|")
    for label in sorted(called):
        for name in models:
            tops = called[label][name]
            others = defaultdict(int)
            for top in tops:
                if top != "clean":
                    others[top] += 1
            said = ", ".join(f"{k} {v}" for k, v in sorted(others.items())) or "-"
            gain = sum(gains[label][name]) / len(tops)
            print(f"| {label} | {name} | {len(tops)} | {tops.count('clean')} | {said} | {gain:+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
