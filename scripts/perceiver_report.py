"""Tier accuracy per task of a Perceive-IR quality perceiver on held-out synthetic images, and its confusion.

    python scripts/perceiver_report.py runs/perceiver_tiers --data ../shared/data/train_clean/CBSD432 \\
        --files 400 432 --per-task 32

Held-out tiers, made the way ``tiers: synthetic`` training makes them: low = a ``--crop`` crop of a clean image of
``--files`` (never seen in training) degraded by the ``--mix`` mix (seeded draws), medium = the same crop degraded
again by the same type and seed at ``--medium-scale`` × the severity, high = the clean crop; or, with
``--medium-restorer``, medium = that restorer's output on low: the paper's tiers, where the restorer is one of
``uir perceive tiers``' fold restorers (``OUT/runs/fold0``: it never saw ``--files`` either). Each task of the mix is
drawn ``--per-task`` times.

    python scripts/perceiver_report.py runs/i21/pir-tiers-perceiver --data ../shared/data/train_clean/CBSD432 \\
        --files 400 432 --per-task 32 --medium-restorer runs/i21/pir-tiers/runs/fold0

Prints a Markdown table: per task, the share of the 3 tier images put in the right tier
(:func:`uir.methods.perceiver.tier_accuracy`), the accuracy on each tier, and the mean probability of "high" for
each tier; then the 3×3 confusion (rows: true tier) over all tasks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from uir.data.datasets import SyntheticDataset
from uir.degradations import Mix, get_mix
from uir.errors import UirError
from uir.methods.perceiver import load_perceiver, synthetic_medium, tier_accuracy
from uir.methods.quality_aware import load_restorer


def held_out(  # noqa: ANN201
    data: Path,
    files: tuple[int, int],
    mix_name: str,
    per_task: int,
    crop: int,
    scale: float,
    restorer: torch.nn.Module | None = None,
):
    """Per task of the mix, ``per_task`` samples ``{lq, medium, gt, label}`` with batch dimension 1 (medium: the
    restorer's output on lq when one is given, else lq's degradation redrawn at ``scale`` × its severity)."""
    base = get_mix(mix_name)
    for task in base.weights:
        single = Mix(f"report:{task}", {task: 1.0}, base.severity, base.overrides)
        dataset = SyntheticDataset(data, single, crop=crop, seed=4321, length=per_task, files=files)
        for i in range(len(dataset)):
            item = dataset[i]
            lq, gt = item["lq"][None], item["gt"][None]
            if restorer is None:
                medium = synthetic_medium(lq, gt, [item["record"]], scale=scale, mix=mix_name)
            else:
                with torch.no_grad():
                    medium = restorer(lq).clamp(0, 1)
            yield {"lq": lq, "medium": medium, "gt": gt, "label": task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("perceiver", help="a perceiver file (export_perceiver) or a perceiver run folder")
    parser.add_argument("--data", type=Path, required=True, help="a folder of clean images")
    parser.add_argument("--files", type=int, nargs=2, default=(400, 432), metavar=("START", "STOP"))
    parser.add_argument("--mix", default="5d", help="the mix whose tasks are drawn (default 5d)")
    parser.add_argument("--per-task", type=int, default=32)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--medium-scale", type=float, default=0.4)
    parser.add_argument(
        "--medium-restorer",
        help="medium = this restorer's output (a run folder, checkpoint or .safetensors); --medium-scale is unused",
    )
    args = parser.parse_args()
    try:
        perceiver = load_perceiver(args.perceiver)
        restorer = None if args.medium_restorer is None else load_restorer(args.medium_restorer)
    except UirError as err:
        raise SystemExit(f"perceiver_report: {err}".replace("method.proxies: ", "--medium-restorer: ")) from None
    samples = list(
        held_out(args.data, tuple(args.files), args.mix, args.per_task, args.crop, args.medium_scale, restorer)
    )
    with torch.no_grad():
        accuracy = tier_accuracy(perceiver, samples)
        tiers = perceiver.tiers
        high = tiers.index("high")
        confusion = torch.zeros(3, 3)
        per_task: dict[str, dict[str, list[float]]] = {}
        for sample in samples:
            probs = perceiver(torch.cat([sample["lq"], sample["medium"], sample["gt"]])).softmax(dim=1)
            stats = per_task.setdefault(sample["label"], {"hit": [], "p_high": []})
            for tier in range(3):
                confusion[tier, int(probs[tier].argmax())] += 1
                stats["hit"].append(float(probs[tier].argmax() == tier))
                stats["p_high"].append(float(probs[tier, high]))
    columns = [f"acc. {t}" for t in tiers] + [f"p(high) {t}" for t in tiers]
    print(f"\n| task | accuracy | {' | '.join(columns)} |")
    print("|---" * 8 + "|")
    for task, stats in per_task.items():
        hits = [stats["hit"][t::3] for t in range(3)]
        p_high = [stats["p_high"][t::3] for t in range(3)]
        cells = [f"{sum(h) / len(h):.2f}" for h in hits] + [f"{sum(p) / len(p):.2f}" for p in p_high]
        print(f"| {task} | {accuracy[task]:.2f} | {' | '.join(cells)} |")
    print(f"| **all** | **{accuracy['all']:.2f}** |" + " |" * 6)
    share = confusion / confusion.sum(1, keepdim=True)
    print(f"\nconfusion (rows: true tier, columns: predicted; {len(samples)} images per tier)")
    print("| | " + " | ".join(tiers) + " |\n|---|---|---|---|")
    for tier, name in enumerate(tiers):
        print(f"| {name} | " + " | ".join(f"{float(v):.2f}" for v in share[tier]) + " |")


if __name__ == "__main__":
    main()
