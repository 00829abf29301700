"""ONNX export of learned models, and the onnxruntime engine that runs them from a cache.

``export_onnx`` writes the backbone with dynamic height and width (the dynamo exporter; the TorchScript one
when dynamo fails), the model's name, labels and size multiple as ONNX metadata, then checks the file against
torch on a real photo at its own odd size. ``uir.onnx_engine.OnnxRestorer`` (re-exported here) runs the files;
``uir.load(name, engine="onnx")`` exports a model once into the cache (``$UIR_CACHE``, default
``~/.cache/uir``) and runs that file. Needs the ``onnx`` extra: ``pip install 'uir[onnx]'``.

Example:
    >>> from uir.export import export_onnx
    >>> report = export_onnx("default", "nafnet.onnx")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    exported nafnet-fr-v2.1 to nafnet.onnx (22.1 MB, dynamo exporter, opset 20, dynamic H and W)
    checked on chelsea.png (300×451): max |onnxruntime − torch| = 7.2e-07
    ...
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import itertools
import json
import logging
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from uir.errors import UirError
from uir.io import atomic_write_bytes, read_image
from uir.onnx_engine import OnnxRestorer, first_line, require
from uir.pretrained import ALIASES, SHIPPED, SUFFIXES, shipped_path
from uir.restorers import load_restorer
from uir.version import __version__

logger = logging.getLogger(__name__)

CHECK_IMAGE = Path(__file__).resolve().parents[2] / "examples" / "clean" / "chelsea.png"
"""The photo ``export_onnx`` checks on by default (in a source checkout of uir)."""


@dataclass(frozen=True)
class ExportReport:
    """What ``export_onnx`` wrote, and how the file compares with torch (check fields are None when unchecked).

    Attributes:
        path: the ``.onnx`` file.
        model: the exported model's name.
        exporter: ``dynamo`` or ``torchscript`` (the fallback).
        opset: the ONNX opset of the file.
        file_bytes: its size.
        export_seconds: how long exporting took.
        image: the photo it was checked on; ``image_size`` its ``(H, W)``.
        max_abs_diff: the largest ``|onnxruntime − torch|`` over the restored photo (values in [0, 1]).
        torch_seconds: median time of a torch forward pass on the photo; ``onnx_seconds`` onnxruntime's.
        threads: CPU threads both used.
    """

    path: Path
    model: str
    exporter: str
    opset: int
    file_bytes: int
    export_seconds: float
    image: Path | None = None
    image_size: tuple[int, int] | None = None
    max_abs_diff: float | None = None
    torch_seconds: float | None = None
    onnx_seconds: float | None = None
    threads: int = 1

    def summary(self) -> str:
        """The report as a few lines of text (what ``uir export`` prints)."""
        lines = [
            f"exported {self.model} to {self.path} ({self.file_bytes / 1e6:.1f} MB, {self.exporter} exporter, "
            f"opset {self.opset}, dynamic H and W) in {self.export_seconds:.1f} s"
        ]
        if self.image is not None and self.image_size is not None:
            height, width = self.image_size
            lines.append(
                f"checked on {self.image.name} ({height}×{width}): max |onnxruntime − torch| = {self.max_abs_diff:.2e}"
            )
            speedup = (self.torch_seconds or 0.0) / max(self.onnx_seconds or 0.0, 1e-9)
            threads = f"{self.threads} CPU thread{'s' * (self.threads > 1)}"
            lines.append(
                f"time per image ({threads}, median): torch {self.torch_seconds:.3f} s, "
                f"onnxruntime {self.onnx_seconds:.3f} s (onnxruntime {speedup:.2f}× torch's speed)"
            )
        return "\n".join(lines)


def export_onnx(
    model: str | Any, path: str | Path, *, opset: int | None = None, check: str | Path | bool = True, runs: int = 3
) -> ExportReport:
    """Export a learned model's backbone to ONNX with dynamic H and W, then check it against torch.

    Args:
        model: a model name (``default``), a ``.safetensors``/``.ckpt`` path, or a loaded ``uir.Model``
            (anything with a ``restorer`` attribute).
        path: the ``.onnx`` file to write (atomically; a single file, weights included).
        opset: the ONNX opset (default: the exporter's).
        check: the photo to compare onnxruntime with torch on, at its own size (``True``: ``CHECK_IMAGE``;
            ``False``: no check).
        runs: timed runs of each engine on the photo (the report gives the median).

    Returns:
        The report: exporter used, file size, and with a check the max abs difference and both timings.

    Raises:
        UirError: a classic baseline (nothing to export), onnx/onnxscript/onnxruntime missing, or both
            exporters failed.

    Example:
        >>> report = export_onnx("default", "nafnet.onnx", check="photo.png")  # doctest: +SKIP
        >>> report.max_abs_diff < 1e-4  # doctest: +SKIP
        True
    """
    restorer = _learned(model)
    require("onnx", "onnxscript", "onnxruntime")
    image = None if check is False else Path(CHECK_IMAGE if check is True else check)
    if image is not None and not image.is_file():
        raise UirError(f"{image}: no such image to check the export on")
    start = time.perf_counter()
    exporter, opset_used, size = _write_onnx(restorer, Path(path), opset)
    report = ExportReport(Path(path), restorer.name, exporter, opset_used, size, time.perf_counter() - start)
    logger.info("exported %s to %s with the %s exporter", restorer.name, path, exporter)
    return report if image is None else _check(report, restorer, image, runs)


def load_onnx_engine(spec: str, device: str = "cpu") -> OnnxRestorer:
    """Run a model with onnxruntime: an ``.onnx`` file as it is, a learned model exported once into the cache.

    The cached file is ``<cache>/onnx/<name>-<digest>.onnx``, the digest covering the weights file, uir's and
    torch's versions, so new weights or a new uir export again. ``<cache>`` is ``$UIR_CACHE`` or ``~/.cache/uir``.

    Raises:
        UirError: a classic baseline, an unknown model, or the onnx extra missing.
    """
    if Path(spec).suffix == ".onnx":
        return OnnxRestorer(spec, device)
    restorer = _learned(spec)
    path = cache_dir() / "onnx" / f"{restorer.name}-{_digest(spec, restorer)}.onnx"
    if not path.is_file():
        require("onnx", "onnxscript", "onnxruntime")
        logger.info("exporting %s to %s for onnxruntime (once)", spec, path)
        _write_onnx(restorer, path, None)
    return OnnxRestorer(path, device)


def prefers_onnx(spec: str, device: str = "cpu") -> bool:
    """Whether onnxruntime should run ``spec`` (what ``uir restore --engine auto`` asks).

    Yes for a learned model (a shipped name or a model file) on the CPU with the onnx extra installed: on one
    thread it restores the default model faster than torch (``benchmarks/onnx_speed.py`` measures both).
    """
    learned = spec in (*SHIPPED, *ALIASES) or Path(spec).suffix in (*SUFFIXES, ".onnx")
    installed = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))
    return learned and installed and torch.device(device).type == "cpu"


def cache_dir() -> Path:
    """Where uir caches derived files: ``$UIR_CACHE``, else ``~/.cache/uir``."""
    return Path(os.environ.get("UIR_CACHE") or Path.home() / ".cache" / "uir")


class _Forward(nn.Module):
    """The backbone's ``forward(lq)`` alone, so the exported graph has one input, ``lq``, whatever else it takes."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, lq: Tensor) -> Tensor:
        return self.backbone(lq)


def _learned(model: Any) -> Any:
    """The ``ModelRestorer`` behind a name, a path or a ``uir.Model``; a one-line error for anything else."""
    restorer = load_restorer(model, "cpu") if isinstance(model, str) else getattr(model, "restorer", model)
    if isinstance(restorer, OnnxRestorer):
        raise UirError(f"{restorer.name} is already an ONNX model ({restorer.path})")
    if not isinstance(getattr(restorer, "backbone", None), nn.Module):
        name = getattr(restorer, "name", type(restorer).__name__)
        raise UirError(f"{name} is a classic baseline, not a learned network: only learned models export to ONNX")
    return restorer


def _cpu_backbone(restorer: Any) -> nn.Module:
    """The restorer's backbone in eval mode on the CPU: itself if it is there, else a copy (the caller's stays)."""
    backbone = restorer.backbone
    on_cpu = all(t.device.type == "cpu" for t in itertools.chain(backbone.parameters(), backbone.buffers()))
    return (backbone if on_cpu else copy.deepcopy(backbone).to("cpu")).eval()


def _write_onnx(restorer: Any, path: Path, opset: int | None) -> tuple[str, int, int]:
    """Export, add the metadata, write ``path`` atomically; returns (exporter, opset, file size)."""
    import onnx

    backbone = _Forward(_cpu_backbone(restorer))
    multiple = int(getattr(restorer.backbone, "size_multiple", 1))
    with tempfile.TemporaryDirectory(prefix="uir-onnx-") as folder:
        exporter = _export_graph(backbone, multiple, Path(folder) / "model.onnx", opset)
        proto = onnx.load(str(Path(folder) / "model.onnx"))
    meta = {"name": restorer.name, "labels": json.dumps(list(restorer.labels)), "size_multiple": str(multiple)}
    meta |= {"tile_size": str(getattr(restorer, "tile_size", 1024)), "uir_version": __version__, "exporter": exporter}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, meta)
    data = proto.SerializeToString()
    atomic_write_bytes(path, data)
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return exporter, opset_used, len(data)


def _export_graph(backbone: nn.Module, multiple: int, path: Path, opset: int | None) -> str:
    """Export with the dynamo exporter, else the TorchScript one; returns which one wrote ``path``."""
    # Sizes of at least twice the multiple: below, padding and the 1-pixel bottleneck take other code paths.
    example = torch.rand(1, 3, 2 * multiple + 5, 2 * multiple + 11, generator=torch.Generator().manual_seed(0))
    names = {"input_names": ["lq"], "output_names": ["restored"], "opset_version": opset}
    height = torch.export.Dim("height", min=2 * multiple, max=16384)
    width = torch.export.Dim("width", min=2 * multiple, max=16384)
    try:
        with _quiet():
            torch.onnx.export(
                backbone, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                dynamic_shapes=({2: height, 3: width},), **names,
            )  # fmt: skip
        return "dynamo"
    except Exception as err:  # the exporter raises from deep inside torch.export, of many types
        dynamo_error = first_line(err)
        logger.warning("the dynamo exporter failed (%s); trying the TorchScript exporter", dynamo_error)
    axes = {"lq": {2: "height", 3: "width"}, "restored": {2: "height", 3: "width"}}
    try:
        with _quiet():
            torch.onnx.export(backbone, (example,), str(path), dynamo=False, dynamic_axes=axes, **names)
        return "torchscript"
    except Exception as err:
        raise UirError(
            f"ONNX export failed with both exporters (dynamo: {dynamo_error}; torchscript: {first_line(err)})"
        ) from err


def _check(report: ExportReport, restorer: Any, image: Path, runs: int) -> ExportReport:
    """``report`` completed with the max abs difference and the median times of torch and onnxruntime."""
    from dataclasses import replace

    lq = read_image(image).image
    session = OnnxRestorer(report.path)
    backbone = _cpu_backbone(restorer)
    with torch.no_grad():
        torch_time, expected = _median_time(lambda: backbone(lq), runs)
    onnx_time, restored = _median_time(lambda: session.restore(lq), runs)
    return replace(
        report,
        image=image,
        image_size=(lq.shape[-2], lq.shape[-1]),
        max_abs_diff=(restored - expected.clamp(0, 1)).abs().max().item(),
        torch_seconds=torch_time,
        onnx_seconds=onnx_time,
        threads=torch.get_num_threads(),
    )


def _median_time(fn: Callable[[], Tensor], runs: int) -> tuple[float, Tensor]:
    """The median of ``runs`` timed calls after one warm-up, and the last result."""
    result = fn()
    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _digest(spec: str, restorer: Any) -> str:
    """16 hex digits naming the weights (their file's bytes, else the tensors), the tile size (kept in the file's
    metadata) and uir's and torch's versions."""
    tile = getattr(restorer, "tile_size", None)
    digest = hashlib.sha256(f"uir {__version__} torch {torch.__version__} tile {tile}".encode())
    source = shipped_path(spec) if spec in (*SHIPPED, *ALIASES) else Path(spec)
    if source.is_file():
        digest.update(source.read_bytes())
    else:
        for key, tensor in restorer.backbone.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' own chatter (progress lines, deprecation and torchvision warnings)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnx_ir", "onnxscript")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
