"""Trained models as ``Restorer``s: ``uir eval --model run/best.safetensors`` and ``uir restore`` load them here.

Importing this module registers ``load_model_file`` with ``uir.restorer_registry.register_loader``; it accepts uir
``.safetensors`` files and training checkpoints (``.ckpt``, EMA weights preferred). It also registers the
models shipped inside the package (``SHIPPED``) by name, and ``default`` for the one ``uir restore`` uses
when no ``--model`` is given. Their cards are in docs/models/.

Example:
    >>> from uir.restorers import load_restorer  # doctest: +SKIP
    >>> model = load_restorer("runs/nafnet_cpu_5d/best.safetensors")  # doctest: +SKIP
    >>> model.restore(lq).shape == lq.shape  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from uir.checkpoint import Weights, load_weights
from uir.errors import UirError
from uir.models.backbones import create_backbone
from uir.restorer_registry import Restorer, register_loader, register_restorer, retire_restorer

logger = logging.getLogger(__name__)

# Model files this loader claims; anything else is left to other loaders.
SUFFIXES = (".safetensors", ".ckpt")


class ModelRestorer:
    """A trained backbone behind the ``Restorer`` interface.

    ``restore`` runs the whole batch through the backbone under ``no_grad`` (backbones pad internally to their
    size multiple). ``tile_size`` tells ``uir.restore.restore_tensor`` to tile images larger than it.

    Args:
        name: a short identity (the file's stem).
        backbone: the network, ``forward(lq) -> restored``.
        labels: the class names the model was trained with.
        device: where it runs.
        tile_size: the tile side for large images (``0``: never tile).
        flips: test-time self-ensemble: the mean of the outputs for the input flipped in ``flips`` ways (1: no
            flip; 2: and left-right; 4: and up-down, and both), each flipped back; ``flips`` times slower.
    """

    def __init__(
        self,
        name: str,
        backbone: nn.Module,
        labels: Sequence[str] = (),
        device: str = "cpu",
        tile_size: int = 1024,
        flips: int = 1,
    ) -> None:
        if flips not in (1, 2, 4):
            raise UirError(f"flips must be 1, 2 or 4, got {flips}")
        self.name = name
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device).eval()
        self.labels = list(labels)
        self.tile_size = tile_size
        self.flips = flips

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """Restore ``lq`` ``(B, 3, H, W)`` float in [0, 1]; returns the same shape, in [0, 1], on ``lq``'s device.

        ``tasks`` is ignored: the model is all-in-one.
        """
        if not isinstance(lq, Tensor) or lq.ndim != 4 or lq.shape[1] != 3 or not lq.is_floating_point():
            shape = tuple(lq.shape) if isinstance(lq, Tensor) else type(lq).__name__
            raise UirError(f"{self.name}: expects a (B, 3, H, W) float tensor in [0, 1], got {shape}")
        x = lq.to(self.device, torch.float32)
        dims = [(), (-1,), (-2,), (-2, -1)][: self.flips]
        with torch.no_grad():
            restored = sum(self.backbone(x.flip(d) if d else x).flip(d) if d else self.backbone(x) for d in dims)
        return (restored / len(dims)).clamp(0.0, 1.0).to(lq.device, lq.dtype)

    def __repr__(self) -> str:
        return f"ModelRestorer(name={self.name!r}, device={str(self.device)!r})"


def build_from_weights(weights: Weights) -> nn.Module:
    """The backbone described by ``weights``, with the weights loaded (strictly)."""
    backbone = create_backbone(weights.backbone, **weights.overrides)
    missing, unexpected = backbone.load_state_dict(weights.state, strict=False)
    if missing or unexpected:
        raise UirError(
            f"the weights do not fit {weights.backbone}: {len(missing)} missing and {len(unexpected)} unexpected "
            f"tensors (e.g. {(missing or unexpected)[0]})"
        )
    pooling = weights.metadata.get("test_pooling")
    if pooling:  # the training crop: pool channel attention over 1.5x that window at test time (NAFNet's TLC)
        if not hasattr(backbone, "set_local_pooling"):
            raise UirError(f"{weights.backbone} has no local pooling, but its file asks for test_pooling={pooling}")
        backbone.set_local_pooling(int(pooling))
    return backbone


def load_model(path: str | Path, device: str = "cpu") -> ModelRestorer:
    """A ``ModelRestorer`` from a uir ``.safetensors`` file or a training checkpoint.

    Raises:
        UirError: not a uir model file, or the weights do not fit the described backbone.
    """
    path = Path(path)
    weights = load_weights(path)
    return ModelRestorer(path.stem, build_from_weights(weights), weights.labels, device=device)


SHIPPED: dict[str, str] = {
    "nafnet-fr-v2.1": "nafnet-fr-v2.1.safetensors",
    "nafnet-fr-fine2": "nafnet-fr-fine2.safetensors",
    "nafnet-small-uir": "nafnet-small-uir.safetensors",
}
"""Shipped model name → its file in the package's ``weights`` folder (fp16 safetensors, run in fp32). Each is also
registered as ``NAME-x4``: the same weights with a 4-flip test-time self-ensemble (4× slower)."""

DEFAULT_MODEL = "nafnet-fr-v2.1"
"""The shipped model behind the name ``default`` (docs/models/nafnet-fr-v2.1.md): v2 fine-tuned under the PSNR loss;
``nafnet-fr-v2``, the default before it (0.3 dB ahead on haze), is in ``RETIRED_FILES``."""

FAST_MODEL = "nafnet-small-uir"
"""The shipped model behind the name ``fast``: v1, about 40 % quicker than the default and behind it on every task
but motion blur (docs/models/nafnet-small-uir.md)."""

ALIASES = {"default": DEFAULT_MODEL, "fast": FAST_MODEL}
"""Names that stand for a shipped model."""

COMPANIONS = {DEFAULT_MODEL: "nafnet-fr-fine2"}
"""Shipped model → its fine-damage companion (``uir.api.Model.companion``), which ``uir.load`` attaches:
``nafnet-fr-fine2`` (docs/models/nafnet-fr-fine2.md), the default fine-tuned on real-camera-like grain, light white
noise and JPEG with clean photos (sharp, enlarged and soft, and dim) as identity targets: photos the default changes
little go to it (issue 24: PolyU's real camera noise). ``nafnet-fr-fine``, the companion before it
(docs/models/nafnet-fr-fine.md), is in ``RETIRED_FILES``. Keyed by name: the default's weights loaded from a file get
no companion unless one is named."""

RETIRED_FILES = {
    "nafnet-fr-v2": "c3008df16c09ef05db7b3c2ec826838c424cfe25:src/uir/weights/nafnet-fr-v2.safetensors",
    "nafnet-fr-fine": "bed53fd12660080fc259a77fc88233be6a3109a1:src/uir/weights/nafnet-fr-fine.safetensors",
}
"""Models that shipped once and left the package (over 8 MiB each, a size only the default, its companion and ``fast``
may have there) → where the repository's history holds the file. ``make runs/NAME.safetensors`` in a clone writes it; a
model loaded from that file keeps its name in results (``--model runs/NAME.safetensors``)."""


SHIPPED_CLASSIFIER = "classifier-5d.safetensors"
"""The shipped degradation classifier (``load_classifier("classifier-5d")``): a MaskDCPT classifier of the five types
the default model restores, and clean (docs/models/classifier-5d.md); the shipped analysis sits on its encoder."""


SHIPPED_ANALYSIS = "analysis-5d.safetensors"
"""The calibrated degradation analysis (``uir.methods.analysis``) on ``SHIPPED_CLASSIFIER``'s encoder: what
``load_classifier("default")`` returns, so ``uir inspect``, ``uir restore`` (task and strength ``auto``) and
``uir serve`` use it by default; ``classifier-5d`` names the bare classifier (docs/models/analysis-5d.md)."""


def _weights_file(file: str, what: str) -> Path:
    from importlib.resources import files

    path = Path(str(files("uir") / "weights" / file))
    if not path.is_file():
        raise UirError(f"{path}: the weights of {what} are missing from this installation of uir")
    return path


def shipped_path(name: str) -> Path:
    """The file of a shipped model (``SHIPPED``, or one of its ``ALIASES``: ``default``, ``fast``).

    Raises:
        UirError: an unknown name, or a package installed without its weights.
    """
    name = ALIASES.get(name, name)
    if name not in SHIPPED:
        raise UirError(f"no shipped model {name!r}; shipped: {', '.join(sorted([*SHIPPED, *ALIASES]))}")
    return _weights_file(SHIPPED[name], repr(name))


def shipped_classifier_path() -> Path:
    """The file of the shipped degradation classifier (``SHIPPED_CLASSIFIER``)."""
    return _weights_file(SHIPPED_CLASSIFIER, "the default degradation classifier")


def shipped_analysis_path() -> Path:
    """The file of the shipped calibrated analysis (``SHIPPED_ANALYSIS``)."""
    return _weights_file(SHIPPED_ANALYSIS, "the default degradation analysis")


def load_shipped(name: str, device: str = "cpu", flips: int = 1) -> ModelRestorer:
    """A shipped model by name (its ``ALIASES`` included) as a ``ModelRestorer``, named after the model."""
    restorer = load_model(shipped_path(name), device)
    restorer.name = ALIASES.get(name, name)
    restorer.flips = flips
    if flips > 1:
        restorer.name += f"-x{flips}"
    return restorer


def load_model_file(path: Path, device: str) -> Restorer | None:
    """The ``register_loader`` hook: a restorer for uir model files, ``None`` for other files."""
    if path.suffix not in SUFFIXES:
        return None
    return load_model(path, device)


register_loader(load_model_file)
for _name in [*SHIPPED, *ALIASES]:
    register_restorer(_name, partial(load_shipped, _name), takes_device=True)
for _name in SHIPPED:
    register_restorer(f"{_name}-x4", partial(load_shipped, _name, flips=4), takes_device=True)
for _name in RETIRED_FILES:
    _how = f"in a clone of the repository `make runs/{_name}.safetensors`, then load that file (--model, uir.load)"
    retire_restorer(_name, _how)
    retire_restorer(f"{_name}-x4", f"{_how}; the 4-flip ensemble (-x4) is kept for shipped models only")
