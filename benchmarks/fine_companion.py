"""What a fine-damage companion would give the default settings (issue 24): where ``--strength auto`` leaves a photo as
it is, take a second network's output instead (one trained on grain, compression and clean photos only).

    python benchmarks/fine_companion.py --data-root ../shared/data --companion runs/zoom-probe/final.safetensors

Each image is restored as ``uir restore`` does by default (``--model``, task and strength ``auto``: the analysis, the
tone guard, the gate: left as it is where the analysis calls it clean at ``CLEAN_CONFIDENCE``, not underexposed, and
the model's output is within ``SMALL_CHANGE_DB`` of it). Three routes to the companion, which restores an image told
the task ``camera-noise`` (tone ``keep``: fine detail only, exposure and colour put back) at full strength: *gate*,
the images the gate leaves; *change*, every image the model changes little, whatever the analysis says; *rain kept*,
the same but images whose likeliest type is rain streaks stay with the model (light rain is what it changes little).
Prints per set the mean PSNR of the default settings and of each route, how many images each sends to the companion,
and how many come out below their input each way. A measurement for a design, not a pipeline: nothing in ``uir.api``
changes. Fidelity's clean set has the input as its reference: an image left as it is scores ``inf``, so there the mean
is over the images that were changed and the count says how many were not.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from pathlib import Path

import torch

from uir.api import SMALL_CHANGE_DB, load
from uir.benchmarks import get_protocol, iter_samples
from uir.inspection import CLEAN_CONFIDENCE
from uir.metrics import psnr


def _mean(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    same = len(values) - len(finite)
    mean = statistics.fmean(finite) if finite else math.inf
    return f"{mean:6.2f}" + (f" ({same} same)" if same else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--model", default="default")
    p.add_argument("--companion", required=True, help="the fine-damage network (a model file or name)")
    p.add_argument("--protocols", nargs="+", default=["real-noise", "fidelity", "uir-5d"])
    p.add_argument("--every", type=int, default=1, help="take every n-th image of a set (a quicker look)")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    args = p.parse_args(argv)
    if args.data_root is None or not args.data_root.is_dir():
        raise SystemExit("fine_companion: say where the data is with --data-root (or UIR_DATA_ROOT)")
    torch.set_grad_enabled(False)
    model, companion = load(args.model), load(args.companion)
    print(f"model {model.name}, companion {companion.name}")
    print(f"{'set':<16} {'n':>3} {'input':>7} {'default':>8} {'gate: PSNR, sent':>17} {'change: PSNR, sent':>19}"
          f" {'rain kept: PSNR, sent':>22} {'below input: default, gate, change, rain kept':>47}")  # fmt: skip
    for protocol in args.protocols:
        for test_set in get_protocol(protocol).sets:
            root = test_set.locate(args.data_root)
            if root is None:
                print(f"{test_set.name:<16} data missing")
                continue
            cols: dict[str, list[float]] = {"input": [], "default": [], "gate": [], "change": [], "rain": []}
            sent = {"gate": 0, "change": 0, "rain": 0}
            for i, sample in enumerate(iter_samples(test_set, root, args.cache)):
                if i % args.every:
                    continue
                lq = (sample.lq.clamp(0, 1) * 255).round() / 255
                ((restored, plan),) = model.restore_planned(lq, strength=1)
                full = float(psnr(restored.clamp(0, 1), sample.gt)[0])
                kept = float(psnr(lq, sample.gt)[0])
                little = float(psnr(restored.clamp(0, 1), lq)[0]) >= SMALL_CHANGE_DB
                looks_clean = plan.tone != "free" and plan.clean is not None and plan.clean >= CLEAN_CONFIDENCE
                left = looks_clean and little
                fine = None
                if little:
                    out = companion.restore_tensor(lq, task="camera-noise", strength=1)
                    fine = float(psnr(out.clamp(0, 1), sample.gt)[0])
                cols["input"].append(kept)
                cols["default"].append(kept if left else full)
                cols["gate"].append(fine if left else full)
                cols["change"].append(fine if little else full)
                rain_kept = little and plan.hint != "rain-streaks"
                cols["rain"].append(fine if rain_kept else full)
                sent["gate"] += left
                sent["change"] += little
                sent["rain"] += rain_kept
            below = {k: sum(v < x - 1e-6 for v, x in zip(cols[k], cols["input"], strict=True)) for k in cols}
            n = len(cols["input"])
            print(
                f"{test_set.name:<16} {n:>3} {_mean(cols['input']):>7} {_mean(cols['default']):>8}"
                f" {_mean(cols['gate']):>12} {sent['gate']:>4} {_mean(cols['change']):>14} {sent['change']:>4}"
                f" {_mean(cols['rain']):>17} {sent['rain']:>4}"
                f" {below['default']:>10}, {below['gate']}, {below['change']}, {below['rain']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
