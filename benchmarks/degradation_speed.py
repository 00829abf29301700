"""How long synthesizing degraded training pairs takes: per type, and per batch of 16 random 128² pairs.

Usage: python benchmarks/degradation_speed.py [--threads 2] [--batches 20] [--size 128] [--device cpu]
Prints a markdown table; docs/degradations-speed.md quotes it with this command.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from uir import degradations as D
from uir import io

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "clean"


def crops(size: int, count: int, generator: torch.Generator, device: str) -> torch.Tensor:
    """``count`` random ``size``² crops of the example photos: ``(count, 3, size, size)``."""
    photos = [io.read_image(p).image for p in sorted(EXAMPLES.iterdir()) if p.suffix in (".png", ".jpg")]
    out = []
    for _ in range(count):
        img = photos[int(torch.randint(len(photos), (), generator=generator))]
        top = int(torch.randint(img.shape[-2] - size + 1, (), generator=generator))
        left = int(torch.randint(img.shape[-1] - size + 1, (), generator=generator))
        out.append(img[..., top : top + size, left : left + size])
    return torch.cat(out).to(device)


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    batch = crops(args.size, args.batch_size, g, args.device)

    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}, crops {args.size}²\n")
    print(f"| type | ms per batch of {args.batch_size} (median) |\n|---|---|")
    for name in D.TYPES:
        types, severities = [name] * len(batch), [0.5] * len(batch)
        seeds = iter(range(10**6))

        def one_type(types: list[str] = types, severities: list[float] = severities, seeds=seeds) -> None:
            with torch.no_grad():
                D.degrade_batch(batch, types, severities, [next(seeds) for _ in types])

        print(f"| `{name}` | {1000 * statistics.median(timed(one_type, 5)):.1f} |")

    for mix_name in ("all", "5d"):
        mix = D.get_mix(mix_name)

        def one_batch(mix: D.Mix = mix) -> None:
            records = [mix.draw(g) for _ in range(len(batch))]
            with torch.no_grad():
                torch.cat([D.apply(batch[i : i + 1], r) for i, r in enumerate(records)])

        t = timed(one_batch, args.batches)
        print(
            f"\nmix `{mix_name}`: a batch of {args.batch_size} random {args.size}² pairs takes "
            f"{1000 * statistics.median(t):.1f} ms median, {1000 * max(t):.1f} ms worst, over {args.batches} batches"
        )


if __name__ == "__main__":
    main()
