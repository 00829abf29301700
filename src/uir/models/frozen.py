"""The paper's frozen feature networks, for users who have their weights on disk (METHODS §4, optional extra).

- :class:`ClipImageEncoder`: CLIP's image tower (e.g. ViT-B/32) from a local ``transformers`` directory, as the
  quality perceiver's encoder (``method.clip`` of a ``perceiver`` run). ``transformers`` is imported only here.
- :class:`VGG16Features`: VGG16's convolutional layers in plain torch (no torchvision), loaded from a state-dict
  file with torchvision's ``features.*`` keys, as L_dpl's feature space (``method.vgg`` of ``quality-aware``).

Both are frozen (eval mode, no gradients) and follow the encoder half of the backbone contract: ``encode(x)`` on
``(B, 3, H, W)`` in [0, 1] returns a list of ``(B, feature_dims[l], h_l, w_l)`` maps (they normalise inputs with
their own statistics).

Example:
    >>> vgg = VGG16Features()  # random weights; VGG16Features("vgg16.pth") loads torchvision's file
    >>> [f.shape[1] for f in vgg.encode(torch.rand(1, 3, 37, 53))]
    [64, 128, 256, 512]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.errors import UirError
from uir.models.semantic import IMAGENET_MEAN, IMAGENET_STD, load_transformers_model, spread

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

VGG16_LAYERS: tuple[int | str, ...] = (
    *(64, 64, "M", 128, 128, "M", 256, 256, 256, "M"),
    *(512, 512, 512, "M", 512, 512, 512),
)
"""torchvision's ``cfgs["D"]`` without the last pooling: convs (channels) and max-pools (``"M"``)."""

VGG16_TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
"""Index in ``features`` of the ReLU after each block's last conv (torchvision's numbering)."""


class _FrozenEncoder(nn.Module):
    def freeze(self) -> None:
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> _FrozenEncoder:
        return super().train(False)


class VGG16Features(_FrozenEncoder):
    """VGG16's ``features`` (13 convs, ReLUs, max-pools) and the maps after the chosen ReLUs.

    Args:
        path: a state-dict file (``torch.save``; torchvision's ``vgg16-397923af.pth`` works) holding at least
            ``features.{i}.weight/bias`` of the convs up to the last tap; other keys are ignored. ``None`` keeps
            random weights (tests).
        taps: names of :data:`VGG16_TAPS` to return, shallowest first (L_dpl's levels).

    Raises:
        UirError: missing file, or missing or misshapen ``features.*`` keys.
    """

    def __init__(
        self, path: str | Path | None = None, *, taps: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    ) -> None:
        super().__init__()
        unknown = sorted(set(taps) - set(VGG16_TAPS))
        if unknown:
            raise UirError(f"unknown VGG16 taps {unknown}; valid: {', '.join(VGG16_TAPS)}")
        self.taps = [VGG16_TAPS[t] for t in taps]
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG16_LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers[: max(self.taps) + 1])
        channel_of = {i: m.out_channels for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d)}
        self.feature_dims = tuple(channel_of[t - 1] for t in self.taps)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[:, None, None], persistent=False)
        if path is not None:
            self._load(Path(path))
        self.freeze()

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise UirError(f"VGG16 weights: {path} does not exist; give a state-dict file with features.* keys")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        own = {f"features.{k}": v for k, v in self.features.state_dict().items()}
        missing = [k for k in own if k not in state or state[k].shape != own[k].shape]
        if missing:
            raise UirError(f"VGG16 weights: {path} lacks or misshapes {len(missing)} keys ({', '.join(missing[:3])})")
        self.features.load_state_dict({k.removeprefix("features."): state[k] for k in own})

    def encode(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> list[Tensor]:
        """The maps after each tap of ``x`` ``(B, 3, H, W)`` in [0, 1]; ``mask``/``cond`` must be ``None``."""
        if mask is not None or cond is not None:
            raise UirError("VGG16Features takes no mask or cond")
        x = (x - self.mean) / self.std
        feats, last = [], max(self.taps)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                feats.append(x)
            if index == last:
                break
        return feats


class ClipImageEncoder(_FrozenEncoder):
    """CLIP's vision transformer from a local directory; ``encode`` gives patch-token maps of some layers.

    The image is normalised with CLIP's statistics and resized to ``size × size``; level ``l`` is the patch tokens
    of a hidden layer (evenly spread over the depth, the last included) as a ``(B, hidden, g, g)`` map, so the
    perceiver head pools it like any encoder's map.

    Args:
        path: a directory written by ``save_pretrained`` of ``CLIPModel`` or ``CLIPVisionModel``.
        levels: maps to return.
        size: the input side; ``None`` takes the model's ``image_size`` (224 for ViT-B/32).

    Example:
        >>> encoder = ClipImageEncoder("weights/clip-vit-base-patch32")  # doctest: +SKIP
        >>> [f.shape for f in encoder.encode(torch.rand(1, 3, 64, 64))][-1]  # doctest: +SKIP
        torch.Size([1, 768, 7, 7])
    """

    def __init__(self, path: str | Path, *, levels: int = 4, size: int | None = None) -> None:
        super().__init__()
        model = load_transformers_model(path, "CLIP")
        # CLIPModel holds the tower as vision_model (its text tower stays unused); CLIPVisionModel may be it.
        self.vision = getattr(model, "vision_model", model)
        config = getattr(model.config, "vision_config", model.config)
        self.size, self.patch = size or config.image_size, config.patch_size
        self.pick = [1 + i for i in spread(config.num_hidden_layers, levels)]
        self.feature_dims = (config.hidden_size,) * levels
        self.register_buffer("mean", torch.tensor(CLIP_MEAN)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD)[:, None, None], persistent=False)
        self.freeze()

    def encode(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> list[Tensor]:
        """``levels`` maps ``(B, hidden, size/patch, size/patch)`` of ``x`` ``(B, 3, H, W)`` in [0, 1]."""
        if mask is not None or cond is not None:
            raise UirError("ClipImageEncoder takes no mask or cond")
        x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False, antialias=True)
        hidden = self.vision(pixel_values=(x - self.mean) / self.std, output_hidden_states=True).hidden_states
        grid = self.size // self.patch
        return [hidden[i][:, 1:].transpose(1, 2).reshape(len(x), -1, grid, grid) for i in self.pick]


__all__ = ["VGG16_TAPS", "ClipImageEncoder", "VGG16Features"]
