"""Checkpoints and released weights: plain dicts written atomically, and self-describing safetensors files.

A training checkpoint (``last.ckpt``) is a dict of tensors and plain values only, so that
``torch.load(path, weights_only=True)`` reads it without running pickled code:

==============  ===========================================================================================
key             value
==============  ===========================================================================================
``format``      ``"uir-checkpoint"``; ``version``: 1
``step``        iterations done
``sampler``     ``{"epoch", "batch", "steps_per_epoch", "world_size"}``: where the data order resumes
``backbone``    the backbone's ``state_dict``; ``method``: the method's other weights (heads), apart
``ema``         the EMA backbone's ``state_dict`` (or ``None``)
``optimizer``   ``optimizer.state_dict()``; ``scheduler``: ``scheduler.state_dict()``
``rng``         one dict per rank: torch CPU (and CUDA) generator states, Python's and NumPy's
``config``      the resolved config as a dict; ``labels``: the class names; ``backbone_name``
==============  ===========================================================================================

Released weights are ``.safetensors`` holding the (EMA) backbone, with metadata ``format="uir"``,
``backbone``, ``overrides``, ``labels`` and ``config`` (JSON strings), so ``load_weights`` rebuilds the model.
"""

from __future__ import annotations

import io as _bytes_io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from uir.errors import UirError
from uir.io import atomic_write_bytes
from uir.version import __version__

CHECKPOINT_FORMAT = "uir-checkpoint"
SAFETENSORS_FORMAT = "uir"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a checkpoint dict atomically (a crash mid-write leaves the previous file intact).

    Args:
        path: the file, e.g. ``run/last.ckpt``.
        state: tensors and plain values only (what ``torch.load(weights_only=True)`` accepts).
    """
    buffer = _bytes_io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "uir_version": __version__, **state}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises:
        UirError: missing, unreadable, or not a uir checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise UirError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError)
        raise UirError(f"{path}: not a readable checkpoint ({' '.join(str(err).split())[:200]})") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UirError(f"{path}: not a uir training checkpoint")
    return state


def rng_state() -> dict[str, Any]:
    """This process's random states (torch CPU and CUDA, Python, NumPy) as tensors and plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned (its tensors may have been loaded onto a GPU: they go back to the CPU)."""
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def export_safetensors(path: str | Path, state: dict[str, Tensor], metadata: dict[str, Any]) -> Path:
    """Write a backbone's weights as safetensors, atomically, with JSON metadata that describes the model.

    Args:
        path: the ``.safetensors`` file.
        state: the backbone's ``state_dict`` (copied to contiguous CPU tensors).
        metadata: at least ``backbone`` (preset name); ``overrides``, ``labels``, ``config``... Strings are
            stored as they are, other values as JSON.
    """
    from safetensors.torch import save

    if "backbone" not in metadata:
        raise ValueError("metadata needs the backbone's preset name under 'backbone'")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    meta = {"format": SAFETENSORS_FORMAT, "uir_version": __version__}
    meta |= {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


@dataclass
class Weights:
    """A model's weights and what is needed to rebuild it.

    Attributes:
        state: the backbone's ``state_dict`` (EMA weights when the source has them).
        backbone: the preset name for ``create_backbone``.
        overrides: the preset's keyword overrides.
        labels: the class names the model was trained with.
        config: the resolved training config as a dict, if known.
        metadata: everything else the file said (step, versions...).
    """

    state: dict[str, Tensor]
    backbone: str
    overrides: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def load_weights(path: str | Path) -> Weights:
    """Read weights from a uir ``.safetensors`` file or a training checkpoint (its EMA weights if any).

    Raises:
        UirError: not a uir weights file, or its description is incomplete.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    state = load_checkpoint(path)
    weights = state["ema"] if state.get("ema") is not None else state["backbone"]
    config = state.get("config") or {}
    model = config.get("model", {})
    meta = {k: state[k] for k in ("step", "uir_version") if k in state}
    return Weights(
        weights, state["backbone_name"], dict(model.get("overrides", {})), list(state["labels"]), config, meta
    )


def read_safetensors(path: str | Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    """The metadata and tensors of a ``.safetensors`` file.

    Raises:
        UirError: a missing, truncated or foreign file (one line).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            meta = dict(file.metadata() or {})
            state = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118  (not a dict)
    except (SafetensorError, OSError) as err:
        raise UirError(f"{path}: not a readable safetensors file ({err})") from err
    return meta, state


def _load_safetensors(path: Path) -> Weights:
    return weights_from_safetensors(path, *read_safetensors(path))


def weights_from_safetensors(path: str | Path, meta: dict[str, str], state: dict[str, Tensor]) -> Weights:
    """The :class:`Weights` of a read ``.safetensors`` file (``meta``, ``state`` from :func:`read_safetensors`).

    Raises:
        UirError: not uir restoration weights, or broken metadata.
    """
    if meta.get("format") != SAFETENSORS_FORMAT or "backbone" not in meta:
        raise UirError(f"{path}: safetensors without uir metadata (format=uir, backbone=...); cannot rebuild it")
    try:
        decoded = {k: json.loads(v) for k, v in meta.items() if k in ("overrides", "labels", "config", "step", "psnr")}
    except json.JSONDecodeError as err:
        raise UirError(f"{path}: broken uir metadata ({err})") from err
    others = {k: v for k, v in meta.items() if k not in decoded}
    return Weights(
        state,
        meta["backbone"],
        decoded.get("overrides") or {},
        decoded.get("labels") or [],
        decoded.get("config"),
        {**others, **{k: decoded[k] for k in ("step", "psnr") if k in decoded}},
    )
