"""Perceive-IR's quality-aware loss around any backbone (METHODS §4, stage 2 losses).

``L = pixel_weight·L1 + contrast_weight·L_cl + clip_weight·L_clip + dpl_weight·L_dpl`` (the paper: 1, 0.1, 0.05,
0.1):

- ``L_cl``, only for a backbone with a degradation code (``degradation_code(lq) -> (B, D)`` unit vectors, e.g.
  ``perceiveir-*``): InfoNCE (:func:`info_nce`, τ ``contrast_temperature``) between the codes of two random crops
  (``contrast_crop`` × the side) of every image: the positive is the other crop of the same image, the negatives
  the other crops of images of *other* degradation types (``label``). Crop positions come from the step number.

- ``L_clip = 1 − softmax(perceiver(restored))["high"]``: a frozen stage-1 :class:`QualityPerceiver` rates the
  restored image.
- ``L_dpl``, difficulty-adaptive perceptual loss, in the frozen perceiver encoder's feature space **[ours]** (the
  paper: VGG16): ``Σ_l w_l·D_l(R, GT) / (2·D_l(R, LQ) + Σ_k α_k·D_l(R, P_k))`` over the last levels with
  ``w = (1/12, 1/6, 1/3, 1)``, ``D`` the mean absolute feature distance per image, ``P_k`` the outputs of frozen
  proxy restorers (e.g. the stage-1 medium model). ``α_k`` is per task: 1.25 if proxy ``k``'s PSNR on that
  task's probe images is ≤ the model's, else 0.75 (1 until first measured). ``dpl_skip_deepest`` leaves out the
  feature net's deepest levels before the last four are taken **[ours]**: VGG16's four levels lie at 1/1 to 1/8 of
  the image, a U-net encoder's last four at 1/4 to 1/32 (2×2 on a 64² crop, with the weight 1); skipping its
  bottleneck (1) puts them at 1/2 to 1/16.
- The probe set is the first ``probe_size`` centre crops (``probe_patch`` px) of the training batches; it, the
  proxies' PSNR, the step and ``α`` are buffers, so a resumed run continues exactly. ``α`` is re-measured every
  ``probe_every`` steps (the paper: every epoch; a method sees steps).

The perceiver and proxies are frozen (``requires_grad_(False)``, eval mode) and held outside the module tree, so
they are neither optimised nor saved: the config's paths rebuild them.

Example:
    >>> from uir.models.backbones import create_backbone
    >>> from uir.models.heads.perceiver import PerceiverHead, QualityPerceiver
    >>> encoder = create_backbone("nafnet-tiny")
    >>> perceiver = QualityPerceiver(encoder, PerceiverHead(encoder.feature_dims, embed_dim=8, prompt_tokens=2))
    >>> method = QualityAware(create_backbone("nafnet-tiny"), ["noise"], perceiver=perceiver, probe_patch=16)
    >>> batch = {"lq": torch.rand(2, 3, 24, 24), "gt": torch.rand(2, 3, 24, 24), "label": torch.tensor([0, 0])}
    >>> loss, logs = method(batch)
    >>> sorted(logs)
    ['clip', 'dpl', 'l1']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.checkpoint import load_weights
from uir.errors import UirError
from uir.methods.perceiver import load_perceiver
from uir.methods.registry import register_method
from uir.models.backbones import create_backbone
from uir.models.frozen import VGG16Features
from uir.models.heads.perceiver import QualityPerceiver
from uir.schema import expand_path

logger = logging.getLogger(__name__)

LEVEL_WEIGHTS = (1 / 12, 1 / 6, 1 / 3, 1.0)


@dataclass
class QualityAwareConfig:
    """The ``method:`` section for ``name: quality-aware``.

    Attributes:
        perceiver: the stage-1 perceiver: a ``perceiver`` run folder, its checkpoint, or its export (required).
        proxies: restorers whose outputs are L_dpl's proxies ``P_k``: run folders, checkpoints or ``.safetensors``.
        pixel_weight, clip_weight, dpl_weight: the loss weights (1, 0.05, 0.1).
        probe_size: images in the fixed probe set.
        probe_patch: side of their centre crops (at most ``data.crop``).
        probe_every: steps between two measurements of ``α``.
        alpha_easy, alpha_hard: ``α_k`` when proxy ``k`` is no better than the model (1.25), or better (0.75).
        contrast_weight: weight of L_cl (0.1); ignored for backbones without ``degradation_code``.
        contrast_temperature: InfoNCE's τ (0.1).
        contrast_crop: side of the two crops as a fraction of the training crop's shorter side.
        vgg: a VGG16 state-dict file (torchvision's ``features.*`` keys): L_dpl in VGG16's space (the paper's)
            instead of the perceiver encoder's.
        dpl_skip_deepest: the feature net's deepest levels L_dpl leaves out (0: its last four levels are used).
    """

    name: Literal["quality-aware"] = "quality-aware"
    perceiver: str | None = None
    proxies: tuple[str, ...] = ()
    pixel_weight: float = 1.0
    clip_weight: float = 0.05
    dpl_weight: float = 0.1
    probe_size: int = 16
    probe_patch: int = 64
    probe_every: int = 500
    alpha_easy: float = 1.25
    alpha_hard: float = 0.75
    contrast_weight: float = 0.1
    contrast_temperature: float = 0.1
    contrast_crop: float = 0.5
    vgg: str | None = None
    dpl_skip_deepest: int = 0

    def check(self) -> None:
        if self.perceiver is None:
            raise ValueError("quality-aware needs method.perceiver: a perceiver run folder or perceiver.safetensors")
        if min(self.pixel_weight, self.clip_weight, self.dpl_weight, self.alpha_easy, self.alpha_hard) < 0:
            raise ValueError("the loss weights and alphas must be >= 0")
        if self.probe_size < 1 or self.probe_patch < 8 or self.probe_every < 1:
            raise ValueError("need probe_size >= 1, probe_patch >= 8 and probe_every >= 1")
        if self.contrast_weight < 0 or not self.contrast_temperature > 0 or not 0 < self.contrast_crop <= 1:
            raise ValueError("need contrast_weight >= 0, contrast_temperature > 0 and 0 < contrast_crop <= 1")
        if self.dpl_skip_deepest < 0:
            raise ValueError("dpl_skip_deepest must be >= 0")


def info_nce(anchor: Tensor, positive: Tensor, label: Tensor, temperature: float = 0.1) -> Tensor:
    """InfoNCE with the other degradation types as negatives (Perceive-IR's L_cl).

    ``-log(exp(a_i·p_i/τ) / (exp(a_i·p_i/τ) + Σ_{j: label_j ≠ label_i} exp(a_i·p_j/τ)))``, averaged over ``i``;
    samples of the same type as ``i`` (other than ``i``) are left out. A batch of one type gives 0.

    Args:
        anchor, positive: ``(B, D)`` unit vectors; row ``i`` of both comes from the same image.
        label: ``(B,)`` degradation type indices.
        temperature: ``τ``.

    Example:
        >>> z = torch.eye(2)
        >>> float(info_nce(z, z, torch.tensor([0, 1]))) < 1e-4  # log(1 + exp(-10))
        True
    """
    logits = anchor @ positive.T / temperature
    count = len(anchor)
    keep = (label[:, None] != label[None, :]) | torch.eye(count, dtype=torch.bool, device=anchor.device)
    logits = logits.float().masked_fill(~keep, float("-inf"))
    return F.cross_entropy(logits, torch.arange(count, device=anchor.device))


def two_crops(lq: Tensor, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two random ``size × size`` crops ``(B, 3, size, size)`` of every image of ``lq``, positions drawn per image."""
    height, width = lq.shape[-2:]
    crops = []
    for _ in range(2):
        tops = torch.randint(0, height - size + 1, (len(lq),), generator=generator).tolist()
        lefts = torch.randint(0, width - size + 1, (len(lq),), generator=generator).tolist()
        crops.append(torch.stack([x[:, t : t + size, s : s + size] for x, t, s in zip(lq, tops, lefts, strict=True)]))
    return crops[0], crops[1]


def feature_distance(a: Sequence[Tensor], b: Sequence[Tensor]) -> list[Tensor]:
    """Per level, the mean absolute difference of two feature lists, per image: a list of ``(B,)``."""
    return [(x - y).abs().flatten(1).mean(dim=1) for x, y in zip(a, b, strict=True)]


def psnr_per_image(restored: Tensor, gt: Tensor) -> Tensor:
    """PSNR in dB ``(B,)`` of images in [0, 1] (clamped), for ranking only (no border crop, RGB)."""
    mse = (restored.clamp(0, 1) - gt).square().flatten(1).mean(dim=1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


class QualityAware(nn.Module):
    """L1 + perceiver rating + difficulty-adaptive perceptual loss around any backbone (module docstring).

    Args:
        backbone: any restoration backbone.
        labels: the training data's class names; ``α`` is kept per class.
        perceiver: the frozen stage-1 perceiver (its encoder is also L_dpl's feature space by default).
        proxies: frozen restorers ``lq -> restored`` (may be empty).
        feature_net: L_dpl's feature space instead, a frozen encoder (``encode(x) -> list[Tensor]``), e.g.
            :class:`~uir.models.frozen.VGG16Features` (the paper's).
        Other arguments: the fields of :class:`QualityAwareConfig`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        labels: Sequence[str],
        *,
        perceiver: QualityPerceiver,
        proxies: Sequence[nn.Module] = (),
        feature_net: nn.Module | None = None,
        pixel_weight: float = 1.0,
        clip_weight: float = 0.05,
        dpl_weight: float = 0.1,
        probe_size: int = 16,
        probe_patch: int = 64,
        probe_every: int = 500,
        alpha_easy: float = 1.25,
        alpha_hard: float = 0.75,
        contrast_weight: float = 0.1,
        contrast_temperature: float = 0.1,
        contrast_crop: float = 0.5,
        dpl_skip_deepest: int = 0,
    ) -> None:
        super().__init__()
        self.backbone, self.labels = backbone, list(labels)
        self.weights = {"l1": pixel_weight, "clip": clip_weight, "dpl": dpl_weight, "cl": contrast_weight}
        self.contrast_temperature, self.contrast_crop = contrast_temperature, contrast_crop
        self.probe_every, self.alpha_easy, self.alpha_hard = probe_every, alpha_easy, alpha_hard
        # Plain attributes, not submodules: never optimised, never saved; _apply still moves them.
        extra = [] if feature_net is None else [feature_net]
        self._frozen: list[nn.Module] = [m.eval().requires_grad_(False) for m in (perceiver, *proxies, *extra)]
        self.proxy_count, self.has_feature_net = len(proxies), feature_net is not None
        self.high = perceiver.tiers.index("high")
        count, tasks = len(proxies), len(self.labels)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("probe_lq", torch.zeros(probe_size, 3, probe_patch, probe_patch))
        self.register_buffer("probe_gt", torch.zeros(probe_size, 3, probe_patch, probe_patch))
        self.register_buffer("probe_task", torch.full((probe_size,), -1, dtype=torch.long))
        self.register_buffer("proxy_psnr", torch.full((count, tasks), float("nan")))
        self.register_buffer("alpha", torch.ones(count, tasks))
        feature_dims = feature_net.feature_dims if feature_net is not None else perceiver.backbone.feature_dims
        self.dpl_levels = len(feature_dims) - dpl_skip_deepest  # the feature net's first levels L_dpl uses
        if self.dpl_levels < 1:
            raise UirError(
                f"method.dpl_skip_deepest ({dpl_skip_deepest}) leaves none of the feature net's "
                f"{len(feature_dims)} levels"
            )

    @property
    def perceiver(self) -> QualityPerceiver:
        return self._frozen[0]  # type: ignore[return-value]

    @property
    def proxies(self) -> list[nn.Module]:
        return self._frozen[1 : 1 + self.proxy_count]

    def features(self, x: Tensor) -> list[Tensor]:
        """L_dpl's multi-scale features of ``x``: the feature net's, else the perceiver encoder's, less the deepest
        ``dpl_skip_deepest`` levels."""
        levels = self._frozen[-1].encode(x) if self.has_feature_net else self.perceiver.features(x)
        return levels[: self.dpl_levels]

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> QualityAware:
        super()._apply(fn, recurse)
        for module in self._frozen:
            module._apply(fn, recurse)
        return self

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Restore ``batch["lq"]``; score against ``gt``, the perceiver and the proxies (``label`` picks ``α``).

        Returns:
            The weighted loss, and ``l1``, ``clip``, ``dpl`` (and ``cl``) as detached scalars.
        """
        lq, gt, label = batch["lq"], batch["gt"], batch["label"]
        self._collect_probe(lq, gt, label)
        step = int(self.step)
        if step % self.probe_every == 0 and bool((self.probe_task >= 0).all()):
            self.measure_alpha()
        self.step += 1
        restored = self.backbone(lq)
        terms = {"l1": (restored - gt).abs().mean()}
        if self.weights["cl"] > 0 and hasattr(self.backbone, "degradation_code"):
            terms["cl"] = self.contrast(lq, label, step)
        if self.weights["clip"] > 0:
            terms["clip"] = 1 - self.perceiver(restored).float().softmax(dim=1)[:, self.high].mean()
        if self.weights["dpl"] > 0:
            terms["dpl"] = self.dpl(restored, lq, gt, label)
        loss = sum(self.weights[name] * value for name, value in terms.items())
        return loss, {name: value.detach() for name, value in terms.items()}  # type: ignore[return-value]

    def contrast(self, lq: Tensor, label: Tensor, step: int) -> Tensor:
        """L_cl of the backbone's degradation codes of two crops of each image (crops drawn from ``step``)."""
        size = max(8, int(min(lq.shape[-2:]) * self.contrast_crop))
        first, second = two_crops(lq, size, torch.Generator().manual_seed(step))
        codes = self.backbone.degradation_code(torch.cat([first, second]))
        anchor, positive = codes.chunk(2)
        return info_nce(anchor, positive, label.to(lq.device), self.contrast_temperature)

    def dpl(self, restored: Tensor, lq: Tensor, gt: Tensor, label: Tensor) -> Tensor:
        """L_dpl averaged over the batch (the module docstring's formula)."""
        features = self.features
        with torch.no_grad():
            fixed = [features(gt), features(lq)]
            fixed += [features(proxy(lq)) for proxy in self.proxies]
        ours = features(restored)
        levels = min(len(ours), len(LEVEL_WEIGHTS))
        weights = LEVEL_WEIGHTS[-levels:]
        ours, fixed = ours[-levels:], [f[-levels:] for f in fixed]
        to_gt, to_lq, *to_proxies = (feature_distance(ours, f) for f in fixed)
        alpha = self.alpha[:, label].to(restored.dtype)  # (K, B)
        total = restored.new_zeros(len(restored))
        for level, weight in enumerate(weights):
            negative = 2 * to_lq[level] + sum(alpha[k] * d[level] for k, d in enumerate(to_proxies))
            total = total + weight * to_gt[level] / (negative + 1e-7)
        return total.mean()

    @torch.no_grad()
    def _collect_probe(self, lq: Tensor, gt: Tensor, label: Tensor) -> None:
        free = (self.probe_task < 0).nonzero().flatten()
        if not len(free):
            return
        patch = self.probe_lq.shape[-1]
        height, width = lq.shape[-2:]
        if min(height, width) < patch:
            raise UirError(f"method.probe_patch ({patch}) is larger than the training crops ({height}x{width})")
        top, left = (height - patch) // 2, (width - patch) // 2
        take = min(len(free), len(lq))
        slots = free[:take]
        self.probe_lq[slots] = lq[:take, :, top : top + patch, left : left + patch].to(self.probe_lq)
        self.probe_gt[slots] = gt[:take, :, top : top + patch, left : left + patch].to(self.probe_gt)
        self.probe_task[slots] = label[:take].to(self.probe_task)

    @torch.no_grad()
    def measure_alpha(self) -> None:
        """Re-measure ``α`` per proxy and task on the probe set (proxies' PSNR is measured once)."""
        if not self.proxies:
            return
        tasks = len(self.labels)

        def per_task(model: nn.Module) -> Tensor:
            psnr = psnr_per_image(model(self.probe_lq), self.probe_gt)
            sums = torch.zeros(tasks, device=psnr.device).index_add_(0, self.probe_task, psnr)
            counts = torch.bincount(self.probe_task, minlength=tasks).to(psnr)
            return torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, float("nan")))

        if bool(self.proxy_psnr.isnan().all()):
            self.proxy_psnr.copy_(torch.stack([per_task(proxy) for proxy in self.proxies]))
        was_training = self.backbone.training
        ours = per_task(self.backbone.eval())
        self.backbone.train(was_training)
        easy = self.proxy_psnr <= ours[None]
        measured = ~(self.proxy_psnr.isnan() | ours[None].isnan())
        alpha = torch.where(easy, self.alpha_easy, self.alpha_hard)
        self.alpha.copy_(torch.where(measured, alpha, torch.ones_like(alpha)))
        logger.info(
            "quality-aware: step %d, probe PSNR %s, alpha %s", int(self.step), ours.tolist(), self.alpha.tolist()
        )


def load_restorer(path: str) -> nn.Module:
    """A frozen restorer (eval, no gradients) from a run folder, checkpoint or ``.safetensors`` export."""
    file = Path(path)
    file = file / "last.ckpt" if file.is_dir() else file
    if not file.is_file():
        raise UirError(f"method.proxies: {file} does not exist; give a run folder, checkpoint or .safetensors")
    weights = load_weights(file)
    net = create_backbone(weights.backbone, **weights.overrides)
    net.load_state_dict(weights.state)
    return net.eval().requires_grad_(False)


def build_quality_aware(backbone: nn.Module, config: QualityAwareConfig, *, labels: Sequence[str]) -> QualityAware:
    """The registry's builder: loads the perceiver and the proxies from the config's paths."""
    assert config.perceiver is not None  # check() requires it
    perceiver_path = expand_path(config.perceiver, "method.perceiver")
    if not perceiver_path.exists():
        raise UirError(f"method.perceiver: {perceiver_path} does not exist; train one with method.name: perceiver")
    options = {k: v for k, v in vars(config).items() if k not in ("name", "perceiver", "proxies", "vgg")}
    proxies = [load_restorer(str(expand_path(p, "method.proxies"))) for p in config.proxies]
    feature_net = None
    if config.vgg is not None:
        feature_net = VGG16Features(expand_path(config.vgg, "method.vgg"))
    perceiver = load_perceiver(perceiver_path)
    return QualityAware(backbone, labels, perceiver=perceiver, proxies=proxies, feature_net=feature_net, **options)


register_method("quality-aware", QualityAwareConfig, build_quality_aware)
