"""Cost of the backbone presets on a CPU: parameters, multiply-accumulates per megapixel, latency.

What is counted as MACs: every convolution (grouped and depthwise ones at their true cost), linear layer and
matrix product — including the attention products ``Q·Kᵀ`` and ``A·V`` — as traced by
:class:`torch.utils.flop_counter.FlopCounterMode` (MACs = FLOPs / 2). Not counted: normalizations, activations
and gates, softmax, pooling, pixel-(un)shuffles, resizing and additions; they are cheap in MACs but
memory-bound, which is why latency is measured rather than derived (METHODS §8).

Example:
    >>> rows = speed_table(["nafnet-tiny"], sizes=(64,), repeats=1, progress=False)
    >>> rows[0]["preset"], rows[0]["params"] > 0, 64 in rows[0]["latency_s"]
    ('nafnet-tiny', True, True)
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from uir.models.backbones import PRESETS, create_backbone

log = logging.getLogger(__name__)

MAC_SIZE = 256
"""Side of the square input on which MACs are counted (a multiple of every preset's padding multiple)."""


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int = MAC_SIZE, width: int = MAC_SIZE) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on a ``(1, 3, height, width)`` input."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, height, width))
    return counter.get_total_flops() // 2


def measure_latency(model: nn.Module, size: int, repeats: int = 3) -> float:
    """Median seconds of ``repeats`` forward passes on a ``(1, 3, size, size)`` input, after one warm-up.

    The model runs as it is (put it in eval mode first), under ``torch.no_grad``.
    """
    lq = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.no_grad():
        model(lq)
        for _ in range(repeats):
            start = time.perf_counter()
            model(lq)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (unchanged if ``None``), then restore."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def speed_table(
    presets: Sequence[str] | None = None,
    sizes: Sequence[int] = (256, 512, 1024),
    threads: int | None = None,
    repeats: int = 3,
    *,
    time_budget: float = 30.0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure every preset in one run: parameters, GMACs per megapixel, CPU latency per input size.

    Args:
        presets: backbone preset names (see :data:`uir.models.backbones.PRESETS`); default all of them.
        sizes: sides of the square test inputs, in increasing order.
        threads: CPU threads for the measurement (``None``: torch's current setting).
        repeats: timed runs per size (after one warm-up); the median is reported.
        time_budget: skip a size when one forward pass is predicted to take longer than this many seconds
            (extrapolated from the previous size by the pixel count); its latency is then ``None``.
        progress: show a progress bar.

    Returns:
        One dict per preset: ``preset``, ``params``, ``gmacs_per_mpix``, ``latency_s`` (size → median seconds
        or ``None`` when skipped), the settings ``threads``, ``repeats``, ``time_budget``, and the system's
        1-minute ``load_average`` when the preset's measurement started (other processes slow it down).
    """
    rows = []
    presets = list(PRESETS) if presets is None else presets
    with _num_threads(threads), tqdm(total=len(presets) * len(sizes), disable=not progress, desc="speed") as bar:
        for name in presets:
            model = create_backbone(name).eval()
            row: dict[str, Any] = {
                "preset": name,
                "params": count_parameters(model),
                "gmacs_per_mpix": count_macs(model) / MAC_SIZE**2 * 1e6 / 1e9,
                "latency_s": {},
                "threads": torch.get_num_threads(),
                "repeats": repeats,
                "time_budget": time_budget,
                "load_average": os.getloadavg()[0],
            }
            previous: tuple[int, float] | None = None
            for size in sizes:
                bar.set_postfix_str(f"{name} {size}²")
                predicted = previous[1] * (size / previous[0]) ** 2 if previous else 0.0
                seconds = measure_latency(model, size, repeats) if predicted <= time_budget else None
                row["latency_s"][size] = seconds
                log.info("%s at %d²: %s", name, size, "skipped" if seconds is None else f"{seconds:.3f} s")
                if seconds is not None:
                    previous = (size, seconds)
                bar.update()
            rows.append(row)
    return rows


def format_speed_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`speed_table` as a markdown table with a note on how they were measured."""
    sizes = sorted({size for row in rows for size in row["latency_s"]})
    header = ["preset", "params (M)", "GMACs / MPix", *(f"{size}² (s)" for size in sizes)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        latencies = [row["latency_s"].get(size) for size in sizes]
        cells = [
            row["preset"],
            f"{row['params'] / 1e6:.2f}",
            f"{row['gmacs_per_mpix']:.1f}",
            *("–" if seconds is None else f"{seconds:.3f}" for seconds in latencies),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        first = rows[0]
        loads = [row["load_average"] for row in rows]
        lines.append("")
        lines.append(
            f"Latency: median of {first['repeats']} forward passes after one warm-up, batch 1, eval mode, no_grad, "
            f"{first['threads']} CPU threads, torch {torch.__version__}, "
            f"system load average {min(loads):.1f}–{max(loads):.1f} during the run. "
            f"–: skipped, one pass predicted to exceed {first['time_budget']:g} s. "
            "MACs: convolutions, linear layers and matrix products (attention included); "
            "norms, activations, softmax, pooling and resizing not counted."
        )
    return "\n".join(lines)
