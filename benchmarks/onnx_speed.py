"""Torch vs onnxruntime on the CPU for a shipped model: one ``size``² image, whole and through uir's tiling.

Usage: OMP_NUM_THREADS=1 python benchmarks/onnx_speed.py [--model default] [--size 1024] [--runs 3]
Prints the median seconds of each engine (after one warm-up), the network alone; then what ``uir restore``'s
analysis (the classifier on a 512-px crop) and tone guard add with ``task="auto"``, and, with ``task="camera-noise"``
(which sends this photo to the model's fine-damage companion) and with ``task="auto"`` (where it looks clean and the
companion measures its grain on the centre crop), the pipeline with and without the companion. The ONNX
files are exported into the cache (``$UIR_CACHE`` or ``~/.cache/uir``) on first use, as ``uir restore --engine onnx``
does.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

import uir
from uir import io
from uir.export import CHECK_IMAGE
from uir.restore import restore_tensor


def median_seconds(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    photo = io.read_image(CHECK_IMAGE).image
    # A real photo, mirrored out to size² (the speed of both engines does not depend on the content).
    lq = photo.repeat(1, 1, args.size // photo.shape[-2] + 1, args.size // photo.shape[-1] + 1)
    lq = lq[..., : args.size, : args.size].contiguous()
    engines = {name: uir.load(args.model, engine=name) for name in ("torch", "onnx")}
    print(f"{args.model} at {args.size}², {torch.get_num_threads()} thread(s), median of {args.runs}")
    for mode, tile in (("whole image", 0), ("tiled (the model's tile)", None)):
        times = {
            n: median_seconds(partial(restore_tensor, m.restorer, lq, tile=tile), args.runs) for n, m in engines.items()
        }
        ratio = times["torch"] / times["onnx"]
        print(f"  {mode:26s} torch {times['torch']:.2f} s   onnxruntime {times['onnx']:.2f} s   ({ratio:.2f}×)")
    onnx = engines["onnx"]
    alone = uir.load(args.model, engine="onnx", companion=None)
    full = median_seconds(partial(alone.restore_tensor, lq, task="auto"), args.runs)
    network = median_seconds(partial(restore_tensor, onnx.restorer, lq), args.runs)
    print(
        f"  uir restore's analysis and tone guard (task auto) add {full - network:.2f} s"
        f" to onnxruntime's {network:.2f} s"
    )
    if onnx.companion is not None:  # a photo routed to the companion runs both networks; camera-noise routes this one
        ((_, plan),) = onnx.restore_planned(lq, task="camera-noise")
        paired = median_seconds(partial(onnx.restore_tensor, lq, task="camera-noise"), args.runs)
        single = median_seconds(partial(alone.restore_tensor, lq, task="camera-noise"), args.runs)
        print(
            f"  task camera-noise (restored by {plan.restored_by}): {paired:.2f} s with the companion"
            f" {onnx.companion.name}, {single:.2f} s without"
        )
        # Under task auto this photo looks clean: the companion reads its grain on the centre crop (uir.api.GRAIN_SIDE).
        ((_, plan),) = onnx.restore_planned(lq, task="auto")
        auto = median_seconds(partial(onnx.restore_tensor, lq, task="auto"), args.runs)
        said = plan.restored_by or "left as it is"
        print(f"  task auto ({said}, grain {plan.grain}): {auto:.2f} s with the companion, {full:.2f} s without")


if __name__ == "__main__":
    main()
