"""Frozen semantic encoders: one global feature vector per level of a degraded image (Perceive-IR's SGM input).

Perceive-IR (METHODS §4) guides its decoder with a frozen DINOv2. **[ours]** Without its weights, the default
semantic encoder is a uir backbone's encoder, frozen: loaded from a weights file we trained (a run folder, its
checkpoint or a ``.safetensors`` export, e.g. a MaskDCPT pre-training), or, when no file is given, a *fixed
randomly initialised* encoder (seeded, so the same arguments always build the same encoder; random features are
still informative multi-scale statistics, but a trained encoder is the point of the module). DINOv2 itself loads
from a local directory through ``transformers`` (imported only then; not a uir dependency).

Both map ``(B, 3, H, W)`` in [0, 1] to ``levels`` tensors ``(B, dims[l])``, shallowest first, and never train:
:meth:`train` keeps them in eval mode and their parameters do not require gradients.

Example:
    >>> encoder = BackboneSemantic("restormer-tiny", levels=3)
    >>> [f.shape for f in encoder(torch.rand(2, 3, 37, 53))] == [torch.Size([2, d]) for d in encoder.dims]
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.checkpoint import load_weights
from uir.errors import UirError
from uir.models.presets import create_backbone

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def spread(count: int, levels: int) -> list[int]:
    """``levels`` indices into ``count`` items, evenly spread from the first to the last.

    Example:
        >>> spread(4, 3), spread(12, 4), spread(1, 2)
        ([0, 2, 3], [0, 4, 7, 11], [0, 0])
    """
    if levels == 1:
        return [count - 1]
    return [round(i * (count - 1) / (levels - 1)) for i in range(levels)]


class _Frozen(nn.Module):
    """A module that stays in eval mode and never requires gradients."""

    def freeze(self) -> None:
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> _Frozen:
        return super().train(False)


class BackboneSemantic(_Frozen):
    """A uir backbone's frozen encoder; level ``l`` is the spatial mean of one of its ``encode`` maps.

    Args:
        backbone: the preset built when ``init`` is ``None`` (ignored otherwise: the file names its own).
        init: weights of a trained backbone: a run folder, a checkpoint or a uir ``.safetensors``.
        levels: feature vectors to return (taken from the encoder's levels, evenly spread).
        seed: the seed of the random initialisation when ``init`` is ``None`` (global RNG state is restored).
        channels_last: the backbone's memory format.

    Raises:
        UirError: ``init`` does not exist or is not a uir weights file.
    """

    def __init__(
        self,
        backbone: str = "restormer-tiny",
        init: str | Path | None = None,
        *,
        levels: int = 4,
        seed: int = 0,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if init is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.net = create_backbone(backbone, channels_last=channels_last)
        else:
            self.net = _load_backbone(Path(init), channels_last)
        self.pick = spread(len(self.net.feature_dims), levels)
        self.dims: tuple[int, ...] = tuple(self.net.feature_dims[i] for i in self.pick)
        self.freeze()

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` in [0, 1] → ``levels`` tensors ``(B, dims[l])``."""
        feats = self.net.encode(x)
        return [feats[i].mean(dim=(2, 3)) for i in self.pick]


def _load_backbone(path: Path, channels_last: bool) -> nn.Module:
    file = path / "last.ckpt" if path.is_dir() else path
    if not file.is_file():
        raise UirError(f"semantic_init: {file} does not exist; give a run folder, checkpoint or .safetensors")
    weights = load_weights(file)
    net = create_backbone(weights.backbone, **{**weights.overrides, "channels_last": channels_last})
    net.load_state_dict(weights.state)
    logger.info("semantic encoder: %s from %s", weights.backbone, file)
    return net


class DinoSemantic(_Frozen):
    """DINOv2 from a local directory (``transformers``); level ``l`` is the class token of one hidden layer.

    The image is normalised with ImageNet statistics and resized to ``size × size`` (a multiple of the patch size).

    Args:
        path: a directory with ``config.json`` and the weights, as ``save_pretrained`` writes them.
        levels: feature vectors to return (hidden layers evenly spread over the depth, the last included).
        size: the side of the resized input (224; DINOv2 interpolates its position embeddings).

    Example:
        >>> encoder = DinoSemantic("weights/dinov2-small", levels=4)  # doctest: +SKIP
        >>> [f.shape[1] for f in encoder(torch.rand(1, 3, 64, 64))]  # doctest: +SKIP
        [384, 384, 384, 384]
    """

    def __init__(self, path: str | Path, *, levels: int = 4, size: int = 224) -> None:
        super().__init__()
        self.model = load_transformers_model(path, "DINOv2")
        config = self.model.config
        self.size = size // config.patch_size * config.patch_size
        self.pick = [1 + i for i in spread(config.num_hidden_layers, levels)]
        self.dims: tuple[int, ...] = (config.hidden_size,) * levels
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[:, None, None], persistent=False)
        self.freeze()

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` in [0, 1] → ``levels`` class tokens ``(B, hidden_size)``."""
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        hidden = self.model(pixel_values=(x - self.mean) / self.std, output_hidden_states=True).hidden_states
        return [hidden[i][:, 0] for i in self.pick]


def load_transformers_model(path: str | Path, what: str) -> nn.Module:
    """``transformers.AutoModel.from_pretrained(path)`` from a local directory, frozen; clear errors otherwise."""
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise UirError(f"{what}: {path} has no config.json; give a local directory written by save_pretrained")
    try:
        import transformers
    except ImportError as err:
        raise UirError(f"{what} weights need the transformers package: pip install transformers") from err
    model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    return model.eval().requires_grad_(False)


def build_semantic(
    *, backbone: str, init: str | None, dinov2: str | None, levels: int, seed: int, channels_last: bool
) -> nn.Module:
    """The semantic encoder the arguments name: DINOv2 if ``dinov2`` is set, else :class:`BackboneSemantic`."""
    if dinov2 is not None:
        return DinoSemantic(dinov2, levels=levels)
    return BackboneSemantic(backbone, init, levels=levels, seed=seed, channels_last=channels_last)


__all__: Sequence[str] = ["BackboneSemantic", "DinoSemantic", "build_semantic", "load_transformers_model", "spread"]
