"""Run restorers on a benchmark protocol and score them: per image, per set, per model, in one run.

Every model sees the same inputs. Results are written as JSON (per image, per set, averages; protocol, versions
and model identities recorded), a markdown table with one row per model, and an image grid per set.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from uir import io
from uir.benchmarks import Protocol, TestSet, iter_samples
from uir.degradations.functional import resize
from uir.errors import UirError
from uir.metrics import artifact_score, colour_shift, get_metric, luminance_ratio, periodic_energy
from uir.restorer_registry import Restorer
from uir.version import __version__
from uir.viz import labelled_grid

logger = logging.getLogger(__name__)


@dataclass
class SetResult:
    """The scores of every model on one test set."""

    name: str
    task: str
    kind: str
    folder: str
    metrics: tuple[str, ...]
    images: list[str] = field(default_factory=list)
    # scores[model][metric] = one value per image
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # energy[model] = each image's periodic_energy (the 2-/4-px pattern); reference_energy: the references'
    energy: dict[str, list[float]] = field(default_factory=dict)
    reference_energy: list[float] = field(default_factory=list)
    # luminance[model] / shift[model] = each image's output/input mean-luminance ratio and colour shift
    luminance: dict[str, list[float]] = field(default_factory=dict)
    shift: dict[str, list[float]] = field(default_factory=dict)

    def mean(self, model: str, metric: str) -> float:
        values = self.scores[model][metric]
        return statistics.fmean(values) if values else float("nan")

    def artifact(self, model: str) -> float:
        """The model's artifact score on this set (``uir.metrics.artifact_score``; nan without references)."""
        return artifact_score(self.energy.get(model, []), self.reference_energy)

    def tone(self, model: str) -> dict[str, float]:
        """The model's tone figures on this set (``uir.metrics.tone``): mean and worst output/input luminance
        ratio, mean and worst colour shift."""
        ratios, shifts = self.luminance.get(model) or [float("nan")], self.shift.get(model) or [float("nan")]
        return {
            "luminance_ratio": statistics.fmean(ratios),
            "worst_luminance_ratio": max(ratios, key=lambda r: abs(r - 1)),
            "colour_shift": statistics.fmean(shifts),
            "worst_colour_shift": max(shifts),
        }


@dataclass
class EvalResult:
    protocol: Protocol
    models: list[dict[str, str]]
    sets: list[SetResult]
    missing: list[dict[str, str]]


def model_identity(restorer: Restorer, spec: str) -> dict[str, str]:
    """Name, the spec it was loaded from, and the SHA-256 of the file for checkpoints."""
    identity = {"name": restorer.name, "spec": spec}
    path = Path(spec)
    if path.is_file():
        identity["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return identity


def _score(test_set: TestSet, restored: torch.Tensor, gt: torch.Tensor | None) -> dict[str, float]:
    out = {}
    for name in test_set.metrics:
        metric = get_metric(name)
        value = metric.fn(restored, gt) if metric.needs_reference else metric.fn(restored)
        out[name] = float(value[0])
    return out


def evaluate(
    restorers: Sequence[Restorer],
    protocol: Protocol,
    data_root: Path,
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    limit: int | None = None,
    grid_images: int = 3,
    device: str = "cpu",
    identities: Sequence[dict[str, str]] = (),
) -> EvalResult:
    """Evaluate every restorer on every available set of ``protocol``.

    Args:
        restorers: the models, each with a distinct ``name``.
        data_root: where the protocol's folders are looked up.
        out_dir: where grids are written (results are written by ``write_results``).
        cache_dir: where synthetic sets are cached (default ``data_root/.uir-cache``, or ``out_dir/cache`` if
            the data root is read-only).
        limit: at most this many images per set (for quick looks; a full run leaves it None).
        grid_images: how many images per set go into the comparison grid.
        identities: what to record of each model (see ``model_identity``); default: the names.

    Returns:
        The scores; sets whose data is missing are listed in ``missing``.
    """
    names = [r.name for r in restorers]
    if len(set(names)) != len(names):
        raise UirError(f"two models share a name: {names}")
    cache_dir = cache_dir or out_dir / "cache"
    results, missing = [], []
    for test_set in protocol.sets:
        folder = test_set.locate(data_root)
        if folder is None:
            tried = ", ".join(str(data_root / p) for p in test_set.paths)
            missing.append({"set": test_set.name, "expects": test_set.expects, "tried": tried})
            logger.warning("%s: data missing; expected %s in one of: %s", test_set.name, test_set.expects, tried)
            continue
        results.append(_run_set(test_set, folder, restorers, out_dir, cache_dir, limit, grid_images, device))
    if not results:
        raise UirError(
            f"no data found for any set of {protocol.name!r} under {data_root}: "
            + "; ".join(f"{m['set']} expects {m['expects']}" for m in missing)
        )
    models = list(identities) or [{"name": n} for n in names]
    return EvalResult(protocol, models, results, missing)


def _run_set(
    test_set: TestSet,
    folder: Path,
    restorers: Sequence[Restorer],
    out_dir: Path,
    cache_dir: Path,
    limit: int | None,
    grid_images: int,
    device: str,
) -> SetResult:
    result = SetResult(test_set.name, test_set.task, test_set.kind, str(folder), test_set.metrics)
    columns = ["input"] + [r.name for r in restorers]
    result.scores = {name: {m: [] for m in test_set.metrics} for name in columns}
    result.seconds = dict.fromkeys(columns, 0.0)
    result.energy = {name: [] for name in columns}
    result.luminance = {r.name: [] for r in restorers}
    result.shift = {r.name: [] for r in restorers}
    grid_rows = []
    samples = iter_samples(test_set, folder, cache_dir, limit)
    for sample in tqdm(samples, desc=test_set.name, unit="img", leave=False, disable=None):
        result.images.append(sample.name)
        outputs = [sample.lq]
        for name, value in _score(test_set, sample.lq, sample.gt).items():
            result.scores["input"][name].append(value)
        if sample.gt is not None:
            result.reference_energy.append(float(periodic_energy(sample.gt)[0]))
            result.energy["input"].append(float(periodic_energy(sample.lq)[0]))
        for restorer in restorers:
            start = time.perf_counter()
            with torch.no_grad():
                restored = restorer.restore(sample.lq.to(device), tasks=[test_set.task]).float().cpu().clamp(0, 1)
            result.seconds[restorer.name] += time.perf_counter() - start
            outputs.append(restored)
            for name, value in _score(test_set, restored, sample.gt).items():
                result.scores[restorer.name][name].append(value)
            if sample.gt is not None:
                result.energy[restorer.name].append(float(periodic_energy(restored)[0]))
            result.luminance[restorer.name].append(float(luminance_ratio(restored, sample.lq)[0]))
            result.shift[restorer.name].append(float(colour_shift(restored, sample.lq)[0]))
        if len(grid_rows) < grid_images:
            grid_rows.append(outputs + ([sample.gt] if sample.gt is not None else []))
    if grid_rows:
        _write_grid(out_dir / "grids" / f"{test_set.name}.jpg", grid_rows, result, columns)
    return result


def _write_grid(path: Path, rows: list[list[torch.Tensor]], result: SetResult, columns: list[str]) -> None:
    side = 256
    cells = []
    for row in rows:
        h, w = row[0].shape[-2:]
        scale = side / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        cells.append([resize(t, size, mode="bicubic").clamp(0, 1) for t in row])
    labels = columns + (["ground truth"] if len(rows[0]) > len(columns) else [])
    io.write_image(path, io.to_tensor(labelled_grid(cells, result.images[: len(rows)], labels)), quality=90)


def _versions() -> dict[str, str]:
    import cv2
    import numpy
    import PIL

    return {
        "uir": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }


def to_dict(result: EvalResult) -> dict[str, Any]:
    """The whole run as plain JSON-ready data."""
    sets = []
    for s in result.sets:
        per_model = {
            model: {
                "mean": {m: s.mean(model, m) for m in s.metrics},
                "per_image": {m: dict(zip(s.images, v, strict=True)) for m, v in s.scores[model].items()},
                "seconds_per_image": s.seconds[model] / max(1, len(s.images)),
                **({"artifact": s.artifact(model)} if s.reference_energy else {}),
                **({"tone": s.tone(model)} if model in s.luminance else {}),
            }
            for model in s.scores
        }
        sets.append(
            {
                "name": s.name,
                "task": s.task,
                "kind": s.kind,
                "folder": s.folder,
                "images": len(s.images),
                "models": per_model,
            }
        )
    return {
        "protocol": {"name": result.protocol.name, "description": result.protocol.description},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "models": result.models,
        "sets": sets,
        "averages": averages(result),
        "missing": result.missing,
        "conventions": {
            "psnr/ssim": "RGB in [0, 1], no border crop, SSIM Gaussian window 11 / sigma 1.5, mean of per-image scores",
            "artifact": "energy at the 2- and 4-pixel periods (variance of the 16 phase means, uir.metrics.artifacts), "
            "sum over the set's outputs / sum over its references: 1.0 = no pattern added",
            "tone": "per image, output over input: mean-luminance ratio (1.0 = exposure kept) and colour shift "
            "(largest departure of a channel's gain from the luminance gain, 0 = balance kept; uir.metrics.tone)",
            "noise": "clip(gt + N(0,1)*sigma/255, 0, 1), N from a CPU torch generator seeded with "
            "crc32(file name) + round(sigma*1000003)",
            "synthetic sets": "uir.degradations on a fixed subset of clean images, seed = crc32('<type>:<file name>'), "
            "cached as 8-bit PNG",
        },
    }


def averages(result: EvalResult) -> dict[str, dict[str, float]]:
    """Per model, the mean over reference sets of each set's mean PSNR/SSIM (the field's task average)."""
    out: dict[str, dict[str, float]] = {}
    for model in result.sets[0].scores:
        for metric in ("psnr", "ssim", "piqe", "niqe"):
            values = [s.mean(model, metric) for s in result.sets if metric in s.metrics]
            if values:
                out.setdefault(model, {})[metric] = statistics.fmean(values)
    return out


def to_markdown(result: EvalResult) -> str:
    """One table per metric family, one row per model (the degraded input first)."""
    lines = [f"Benchmark `{result.protocol.name}`: {result.protocol.description}.", ""]
    avg = averages(result)
    for family, metrics in (("reference", ("psnr", "ssim")), ("no-reference", ("piqe", "niqe"))):
        sets = [s for s in result.sets if metrics[0] in s.metrics]
        if not sets:
            continue
        unit = "PSNR dB / SSIM" if family == "reference" else "PIQE / NIQE (lower is better)"
        header = "| model | " + " | ".join(f"{s.name} ({len(s.images)})" for s in sets) + " | average | s/img |"
        lines += [f"{unit}:", "", header, "|---" * (len(sets) + 3) + "|"]
        for model in sets[0].scores:
            cells = [
                f"{s.mean(model, metrics[0]):.2f} / {s.mean(model, metrics[1]):.{3 if family == 'reference' else 2}f}"
                for s in sets
            ]
            mean_avg = f"{avg[model][metrics[0]]:.2f} / {avg[model][metrics[1]]:.{3 if family == 'reference' else 2}f}"
            seconds = sum(s.seconds[model] for s in sets) / max(1, sum(len(s.images) for s in sets))
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {mean_avg} | {seconds:.2f} |")
        lines.append("")
    sets = [s for s in result.sets if s.reference_energy]
    if sets:
        lines += [
            "Artifact score (energy at the 2- and 4-pixel periods over the reference's; 1.0 = no pattern added):",
            "",
            "| model | " + " | ".join(s.name for s in sets) + " |",
            "|---" * (len(sets) + 1) + "|",
        ]
        lines += [f"| {m} | " + " | ".join(f"{s.artifact(m):.2f}" for s in sets) + " |" for m in sets[0].scores]
        lines.append("")
    lines += _tone_table(result)
    for m in result.missing:
        lines.append(f"- `{m['set']}`: data missing (expects {m['expects']}; tried {m['tried']})")
    return "\n".join(lines).rstrip() + "\n"


def _tone_table(result: EvalResult) -> list[str]:
    """The markdown lines of the tone table (output over input), one row per model; none for the input."""
    models = list(result.sets[0].luminance)
    if not models:
        return []
    lines = [
        "Tone (output over input: mean-luminance ratio, mean (worst); colour shift, mean (worst)):",
        "",
        "| model | " + " | ".join(s.name for s in result.sets) + " |",
        "|---" * (len(result.sets) + 1) + "|",
    ]
    for m in models:
        cells = []
        for s in result.sets:
            t = s.tone(m)
            cells.append(
                f"{t['luminance_ratio']:.3f} ({t['worst_luminance_ratio']:.3f}); "
                f"{t['colour_shift']:.3f} ({t['worst_colour_shift']:.3f})"
            )
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_results(result: EvalResult, out_dir: Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; returns both paths."""
    json_path = io.write_text(out_dir / "results.json", json.dumps(to_dict(result), indent=2, allow_nan=True) + "\n")
    md_path = io.write_text(out_dir / "results.md", to_markdown(result))
    return json_path, md_path
