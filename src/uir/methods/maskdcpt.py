"""MaskDCPT: masked degradation-classification pre-training of any backbone (METHODS §3).

Hu et al., "Universal Image Restoration Pre-training via Masked Degradation Classification" (MaskDCPT). Half of
the ``patch × patch`` cells of the degraded input are hidden; by default a cell is the backbone's deepest stride
(:func:`default_patch_size`: 16 px for the paper's NAFNet, 8 px for its Restormer), so that the cells line up with
the feature positions of every encoder level and a hidden cell stays hidden down to the bottleneck. The backbone
encodes the rest through its own ``mask`` path (hidden features stay zero at every level, see
:mod:`uir.models.layers`). Two decoders learn from the visible part:

- a classification decoder (:class:`ClassificationHead`) names the degradation type under a focal loss,
  ``FL = −(1 − p_t)^γ · log p_t`` (Lin et al., 2017; γ = 0 is cross-entropy);
- the backbone's own decoder reconstructs the clean image, ``L1 = |decode(encode(m ⊙ lq, m), m ⊙ lq) − gt|``;

plus, **[ours]** (named in the paper, absent from its code), a supervised contrastive term (Khosla et al., 2020)
on the pooled bottleneck features with the degradation types as classes; ``contrastive_weight: 0`` switches it off.
``loss = classification_weight · FL + reconstruction_weight · L1 + contrastive_weight · SupCon``.

Fine-tuning drops the classifier: a supervised config with ``model.init: RUN/last.ckpt`` (``uir.build``) starts
from the pre-trained backbone. The classifier stays usable: :func:`export_classifier` writes it (backbone and
head weights, class names) and :func:`load_classifier` returns a :class:`DegradationClassifier`.

Example:
    >>> from uir.models.backbones import create_backbone
    >>> method = MaskDCPT(create_backbone("nafnet-tiny"), labels=["noise", "haze"])
    >>> batch = {"lq": torch.rand(2, 3, 32, 32), "gt": torch.rand(2, 3, 32, 32), "label": torch.tensor([0, 1])}
    >>> loss, logs = method(batch)
    >>> sorted(logs)
    ['accuracy', 'contrastive', 'focal', 'l1', 'visible_deep']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.checkpoint import export_safetensors, read_safetensors
from uir.errors import UirError
from uir.methods.analysis import CalibratedClassifier, is_analysis_file, load_analysis
from uir.methods.registry import TrainedRun, method_from_checkpoint, register_method
from uir.models.backbones import create_backbone
from uir.models.heads import ClassificationHead, DegradationClassifier
from uir.models.layers import masked_mean, pad_to_multiple
from uir.pretrained import shipped_analysis_path, shipped_classifier_path

CLASSIFIER_FORMAT = "uir-maskdcpt-classifier"
"""The ``format`` metadata of the file :func:`export_classifier` writes (not loadable as restoration weights)."""


@dataclass
class MaskDCPTConfig:
    """The ``method:`` section for ``name: maskdcpt``.

    Attributes:
        mask_ratio: the fraction of patches hidden, in [0, 1).
        patch_size: the side of a masked patch in pixels; null picks the backbone's deepest stride
            (:func:`default_patch_size`). A size that is not a multiple of it leaves part of each hidden cell
            visible at the deep levels (the ``visible_deep`` log says how much).
        focal_gamma: γ of the focal loss (0 = cross-entropy).
        classification_weight: weight of the focal loss.
        reconstruction_weight: weight of the L1 reconstruction loss.
        contrastive_weight: weight of the supervised contrastive term; 0 switches it off.
        contrastive_temperature: its temperature τ.
        head_width: channels of the classification decoder.
        head_stages: its residual bottleneck stages, each halving the resolution.
    """

    name: Literal["maskdcpt"] = "maskdcpt"
    mask_ratio: float = 0.5
    patch_size: int | None = None
    focal_gamma: float = 2.0
    classification_weight: float = 1.0
    reconstruction_weight: float = 1.0
    contrastive_weight: float = 0.1
    contrastive_temperature: float = 0.1
    head_width: int = 64
    head_stages: int = 2

    def check(self) -> None:
        if not 0 <= self.mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.patch_size is not None and self.patch_size < 1:
            raise ValueError(
                f"patch_size must be >= 1 or null (16 for CNNs, 8 for Transformers), got {self.patch_size}"
            )
        weights = (self.focal_gamma, self.classification_weight, self.reconstruction_weight, self.contrastive_weight)
        if min(weights) < 0:
            raise ValueError("focal_gamma and the loss weights must be >= 0")
        if not self.contrastive_temperature > 0 or self.head_width < 4 or self.head_stages < 0:
            raise ValueError("need contrastive_temperature > 0, head_width >= 4 and head_stages >= 0")


def default_patch_size(backbone: nn.Module) -> int:
    """The masking patch of a backbone: its deepest stride, ``size_multiple`` (stem × 2^levels).

    METHODS §3 gives 16 px for CNNs and 8 px for Transformers, the bottleneck strides of the paper's NAFNet (4
    levels) and Restormer (3 levels). Taking the stride itself keeps what that choice does on backbones with
    another depth or a space-to-depth stem (``nafnet-cpu``: 32 px, ``restormer-cpu``: 16 px): each bottleneck
    position sees one cell, visible or hidden, where a 16-px cell under a 32-px stride leaves ~94 % of the
    bottleneck visible at a ratio of 0.5 (a position is visible when any of its pixels is).

    Example:
        >>> from uir.models.backbones import create_backbone
        >>> default_patch_size(create_backbone("nafnet-tiny")), default_patch_size(create_backbone("nafnet-cpu"))
        (16, 32)
    """
    return int(backbone.size_multiple)


def random_patch_mask(
    batch: int,
    height: int,
    width: int,
    *,
    patch_size: int,
    ratio: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A random MaskDCPT mask: ``round(ratio · cells)`` of each image's ``patch × patch`` cells hidden.

    Cells are laid from the top-left; the ones cut by the bottom and right edges count as cells. At least one
    cell stays visible. Drawn on the CPU (from ``generator`` or torch's global generator), so the same seed
    gives the same mask on every device.

    Args:
        batch, height, width: the mask's ``B, H, W``.
        patch_size: the cell side in pixels.
        ratio: the hidden fraction, in [0, 1).
        generator: the random source; ``None`` uses the global one.

    Returns:
        ``(B, 1, H, W)`` float32, 1 = visible, 0 = hidden.

    Example:
        >>> mask = random_patch_mask(2, 37, 53, patch_size=16, ratio=0.5, generator=torch.Generator().manual_seed(0))
        >>> mask.shape, mask[:, :, ::16, ::16].sum().item()  # 3 × 4 cells per image, 6 hidden
        (torch.Size([2, 1, 37, 53]), 12.0)
    """
    rows, cols = -(-height // patch_size), -(-width // patch_size)
    cells = rows * cols
    hidden = min(round(ratio * cells), cells - 1)
    order = torch.rand(batch, cells, generator=generator).argsort(dim=1)
    visible = torch.ones(batch, cells).scatter_(1, order[:, :hidden], 0.0)
    grid = visible.view(batch, 1, rows, cols)
    return grid.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)[..., :height, :width]


def feature_masks(mask: Tensor | None, feats: Sequence[Tensor], size_multiple: int) -> list[Tensor | None]:
    """The mask of every feature map of ``encode``: the padded input mask max-pooled to each map's size.

    Args:
        mask: ``(B, 1, H, W)`` at the input resolution, or ``None``.
        feats: ``encode``'s maps, at ``1/f`` of the padded input for integer ``f``.
        size_multiple: the backbone's padding multiple.

    Returns:
        One ``(B, 1, h, w)`` mask per map (a position is visible when any of its pixels is), or ``None`` each.
    """
    if mask is None:
        return [None] * len(feats)
    padded = pad_to_multiple(mask, size_multiple)
    return [F.max_pool2d(padded, padded.shape[-1] // f.shape[-1]) for f in feats]


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """Mean focal loss ``−(1 − p_t)^γ · log p_t`` (Lin et al., 2017, eq. 4 without α).

    Args:
        logits: ``(B, K)``.
        target: ``(B,)`` class indices.
        gamma: γ ≥ 0; 0 gives cross-entropy.

    Example:
        >>> logits, target = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
        >>> bool(torch.isclose(focal_loss(logits, target, 0.0), F.cross_entropy(logits, target)))
        True
    """
    log_p = logits.float().log_softmax(dim=1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


def supervised_contrastive(embeddings: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    """Supervised contrastive loss (Khosla et al., 2020, eq. 2, ``L_out``) of L2-normalised embeddings.

    For each anchor ``i`` with positives ``P(i)`` (same label, not ``i``):
    ``−1/|P(i)| · Σ_p log(exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ))``, averaged over the anchors that have
    positives; 0 (with zero gradients) when none has.

    Args:
        embeddings: ``(B, D)``.
        labels: ``(B,)`` class indices.
        temperature: τ.

    Example:
        >>> z = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
        >>> round(supervised_contrastive(z, torch.tensor([0, 0, 1])).item(), 3)  # positives aligned: near 0
        0.0
        >>> round(supervised_contrastive(z, torch.tensor([0, 1, 0])).item(), 1)  # positives apart
        5.6
    """
    z = F.normalize(embeddings.float(), dim=1)
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits - logits.logsumexp(dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~eye
    count = positives.sum(dim=1)
    if not bool((count > 0).any()):
        return z.sum() * 0.0  # keeps every parameter in the graph (DDP)
    per_anchor = -log_prob.masked_fill(~positives, 0.0).sum(dim=1) / count.clamp_min(1)
    return per_anchor[count > 0].mean()


class MaskDCPT(nn.Module):
    """Masked degradation-classification pre-training around any backbone (see the module docstring).

    Args:
        backbone: a backbone of ``uir.models.backbones`` (``encode`` with ``mask``, ``decode``, ``feature_dims``).
        labels: the class names; a batch's ``label`` indexes them.
        mask_ratio, patch_size, focal_gamma, classification_weight, reconstruction_weight, contrastive_weight,
            contrastive_temperature, head_width, head_stages: as in :class:`MaskDCPTConfig`.
        projection_dim: output size of the contrastive projection MLP.
    """

    def __init__(
        self,
        backbone: nn.Module,
        labels: Sequence[str],
        *,
        mask_ratio: float = 0.5,
        patch_size: int | None = None,
        focal_gamma: float = 2.0,
        classification_weight: float = 1.0,
        reconstruction_weight: float = 1.0,
        contrastive_weight: float = 0.1,
        contrastive_temperature: float = 0.1,
        head_width: int = 64,
        head_stages: int = 2,
        projection_dim: int = 64,
    ) -> None:
        super().__init__()
        if len(labels) < 2:
            raise UirError(f"MaskDCPT classifies degradations and needs at least 2 classes in the data, got {labels}")
        self.backbone, self.labels = backbone, list(labels)
        self.mask_ratio, self.patch_size = mask_ratio, patch_size or default_patch_size(backbone)
        self.focal_gamma, self.contrastive_temperature = focal_gamma, contrastive_temperature
        self.weights = {"focal": classification_weight, "l1": reconstruction_weight, "contrastive": contrastive_weight}
        self.head = ClassificationHead(backbone.feature_dims, len(labels), width=head_width, stages=head_stages)
        deep = backbone.feature_dims[-1]
        self.projection = (
            nn.Sequential(nn.Linear(deep, deep), nn.GELU(), nn.Linear(deep, projection_dim))
            if contrastive_weight > 0
            else None
        )

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Mask ``batch["lq"]``, classify it against ``batch["label"]`` and reconstruct ``batch["gt"]``.

        The mask is drawn from torch's global generator, which the training loop seeds per rank and checkpoints
        (exact resume).

        Args:
            batch: ``lq``, ``gt`` ``(B, 3, H, W)`` in [0, 1] and ``label`` ``(B,)`` class indices.

        Returns:
            The weighted loss, and ``focal``, ``l1``, ``contrastive`` (when on), ``accuracy`` and ``visible_deep``
            (the visible share of the bottleneck's positions: ``1 - mask_ratio`` when the cells line up) as
            detached scalars.
        """
        lq, label = batch["lq"], batch["label"]
        mask = random_patch_mask(len(lq), *lq.shape[-2:], patch_size=self.patch_size, ratio=self.mask_ratio)
        mask = mask.to(device=lq.device, dtype=lq.dtype)
        feats = self.backbone.encode(lq, mask)
        masks = feature_masks(mask, feats, self.backbone.size_multiple)
        logits = self.head(feats, masks)
        restored = self.backbone.decode(feats, lq * mask)
        terms = {"focal": focal_loss(logits, label, self.focal_gamma), "l1": (restored - batch["gt"]).abs().mean()}
        if self.projection is not None:
            pooled = masked_mean(feats[-1], masks[-1]).flatten(1)
            terms["contrastive"] = supervised_contrastive(self.projection(pooled), label, self.contrastive_temperature)
        loss = sum(self.weights[name] * value for name, value in terms.items())
        logs = {name: value.detach() for name, value in terms.items()}
        logs["accuracy"] = (logits.argmax(dim=1) == label).float().mean().detach()
        logs["visible_deep"] = masks[-1].mean().detach()  # type: ignore[union-attr]
        return loss, logs  # type: ignore[return-value]

    def classifier(self) -> DegradationClassifier:
        """The classifier for inference (unmasked), sharing this method's backbone and head."""
        return DegradationClassifier(self.backbone, self.head, self.labels)

    def state_for_export(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The classification head's weights (``head.*``) and what rebuilds it (``labels``, ``head``)."""
        head = {"width": self.head.fc.in_features, "stages": self.head.stages}
        state = {f"head.{k}": v for k, v in self.head.state_dict().items()}
        return state, {"labels": self.labels, "head": head}


def build_maskdcpt(backbone: nn.Module, config: MaskDCPTConfig, *, labels: Sequence[str]) -> MaskDCPT:
    """The registry's builder; ``labels`` are the training data's class names (``uir.build`` passes them)."""
    options = {k: v for k, v in asdict(config).items() if k != "name"}
    return MaskDCPT(backbone, labels, **options)


def _checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    return path / "last.ckpt" if path.is_dir() else path


def _load_run(path: str | Path) -> TrainedRun:
    """The MaskDCPT method of a training checkpoint (or run folder), with its raw (not EMA) weights, and its model."""
    return method_from_checkpoint(path, "maskdcpt", "a MaskDCPT pre-training")


def export_classifier(run: str | Path, path: str | Path | None = None) -> Path:
    """Write a MaskDCPT run's classifier (backbone and head weights, class names) as one safetensors file.

    Args:
        run: the run folder (its ``last.ckpt``) or a checkpoint file.
        path: the output; default ``classifier.safetensors`` next to the checkpoint.

    Returns:
        The file written; :func:`load_classifier` reads it.

    Example:
        >>> export_classifier("runs/nafnet_maskdcpt_pretrain")  # doctest: +SKIP
        PosixPath('runs/nafnet_maskdcpt_pretrain/classifier.safetensors')
    """
    checkpoint = _checkpoint_path(run)
    run = _load_run(checkpoint)
    method = run.method
    state, metadata = method.state_for_export()
    state |= {f"backbone.{k}": v for k, v in method.backbone.state_dict().items()}
    metadata |= {"format": CLASSIFIER_FORMAT, "backbone": run.backbone, "overrides": run.overrides}
    return export_safetensors(path or checkpoint.with_name("classifier.safetensors"), state, metadata)


SHIPPED_BASE = "classifier-5d"
"""The shipped MaskDCPT classifier by name: what the shipped calibrated analysis names as its base."""


def load_classifier(path: str | Path) -> DegradationClassifier | CalibratedClassifier:
    """A pre-trained MaskDCPT classifier, in eval mode, from :func:`export_classifier`'s file or a run/checkpoint;
    or a calibrated analysis (``uir.methods.analysis``) from its file, on the classifier it names.

    ``"default"`` is the calibrated analysis shipped with uir (``uir.pretrained.SHIPPED_ANALYSIS``), on the
    shipped classifier; ``"classifier-5d"`` is that classifier alone (``uir.pretrained.SHIPPED_CLASSIFIER``).

    Raises:
        UirError: not such a file, or a checkpoint of another method.

    Example:
        >>> classifier = load_classifier("runs/nafnet_maskdcpt_pretrain/classifier.safetensors")  # doctest: +SKIP
        >>> classifier.classify(lq)  # doctest: +SKIP
        {'noise': 0.91, 'haze': 0.01, ...}
    """
    if str(path) == "default":
        return load_analysis(shipped_analysis_path(), load_classifier)
    if str(path) == SHIPPED_BASE:
        path = shipped_classifier_path()
    path = Path(path)
    if path.suffix != ".safetensors":
        return _load_run(path).method.classifier().eval()
    if is_analysis_file(path):
        return load_analysis(path, load_classifier)
    return _classifier_from_file(path).eval()


def _classifier_from_file(path: Path) -> DegradationClassifier:
    meta, state = read_safetensors(path)
    if meta.get("format") != CLASSIFIER_FORMAT:
        raise UirError(f"{path}: not a MaskDCPT classifier (made by export_classifier); restoration weights?")
    labels, head, overrides = (json.loads(meta[k]) for k in ("labels", "head", "overrides"))
    backbone = create_backbone(meta["backbone"], **overrides)
    classifier = DegradationClassifier(backbone, ClassificationHead(backbone.feature_dims, len(labels), **head), labels)
    classifier.load_state_dict(state)
    return classifier


register_method("maskdcpt", MaskDCPTConfig, build_maskdcpt)
