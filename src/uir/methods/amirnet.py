"""AMIRNet: restoration conditioned on a tree of degradation representations grown without labels (METHODS §5).

Zhang et al., ACM MM 2023. The network (:class:`uir.models.backbones.FTBNAFNet`, presets ``nafnet-ftb-*``)
holds the degradation encoder and the tree's depth; this method grows the tree and trains everything. The
training loop only calls ``method(batch)``, so the method collects the images it grows the tree on itself:

1. **Reservoir.** Until the tree first grows, a uniform sample (reservoir sampling, Vitter's algorithm R) of
   ``reservoir_size`` random ``patch_size`` crops of the ``(lq, gt)`` pairs it is given is kept; then it is
   frozen: these are the images the tree is grown on and that supervise it.
2. **Growth.** After each step of ``grow_steps`` a level is added: for every leaf, 2-means on the responses
   ``f(lq) − f(gt)`` of the leaf's images, averaged over ``augment_passes`` flips/rotations of both. Child
   ``2p`` of node ``p`` is the cluster with the smaller centre (the milder response), ``2p + 1`` the other.
   The data's labels are stored beside the images only to *measure* the tree (:func:`purity`), never to grow it.
3. **Loss** ``pixel_weight·SmoothL1_β(restored, gt) + ssim_weight·(1 − SSIM) + ce_weight·Σ_l CE(mask_l(f), ŷ_l)``,
   the cross-entropy on ``replay_size`` reservoir patches per step, for every grown level ``l ≥ 1``.

The step counter, the reservoir and the pseudo-labels are buffers (the checkpoint's ``method`` state) and the
depth is a buffer of the backbone, so a run resumed mid-schedule continues the same tree. Buffers: ``step``,
``seen``, ``reservoir_lq``/``reservoir_gt`` ``(N, 3, P, P)`` float16, ``tree_labels`` ``(N, 4)`` (node per level,
``-1`` = not grown), ``true_labels`` ``(N,)`` (``-1`` = unknown).

Example:
    >>> from uir.models import create_backbone
    >>> method = AMIRNet(create_backbone("nafnet-ftb-tiny"), grow_steps=(1,), reservoir_size=4, patch_size=16)
    >>> batch = {"lq": torch.rand(4, 3, 24, 24), "gt": torch.rand(4, 3, 24, 24)}
    >>> _ = method(batch); loss, logs = method(batch)
    >>> method.depth, sorted(set(method.tree_labels[:, 1].tolist())), sorted(logs)
    (2, [0, 1], ['ce', 'smooth_l1', 'ssim', 'tree_depth'])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.data.augment import sample_generator
from uir.errors import UirError
from uir.methods.registry import register_method
from uir.metrics.reference import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW
from uir.models.backbones.amirnet import LEVEL_NODES, DegradationEncoder

logger = logging.getLogger(__name__)

# Purposes of the per-step generators (sample_generator(seed, step, purpose)): independent streams.
_RESERVOIR, _REPLAY, _KMEANS = 1, 2, 3


@dataclass
class AMIRNetConfig:
    """The ``method:`` section for ``name: amirnet`` (arguments of :class:`AMIRNet`).

    Attributes:
        grow_steps: the training steps after which a level is grown, increasing, at most 3 (the paper: every K
            epochs; here steps, since a method sees steps). Empty: the tree never grows (the root alone conditions
            the FTBs), the control that isolates the tree from the network and the loss.
        reservoir_size: images the tree is grown on (a uniform sample of the batches before the first growth).
        patch_size: side of the stored crops; at most ``data.crop``.
        augment_passes: flips/rotations (1–8) whose responses are averaged before clustering (5 in the paper).
        replay_size: reservoir patches per step for the cross-entropy.
        pixel_weight: weight of the Smooth-L1 term (0.85).
        ssim_weight: weight of ``1 − SSIM`` (0.15).
        ce_weight: weight of the summed cross-entropies (1).
        smooth_l1_beta: the Smooth-L1 ``β`` (0.03).
        seed: seed of the reservoir draws, the replay batches and k-means.
    """

    name: Literal["amirnet"] = "amirnet"
    grow_steps: tuple[int, ...] = (2000, 4000, 6000)
    reservoir_size: int = 256
    patch_size: int = 64
    augment_passes: int = 5
    replay_size: int = 8
    pixel_weight: float = 0.85
    ssim_weight: float = 0.15
    ce_weight: float = 1.0
    smooth_l1_beta: float = 0.03
    seed: int = 0

    def check(self) -> None:
        steps = list(self.grow_steps)
        if len(steps) > len(LEVEL_NODES) - 1 or any(s < 1 for s in steps) or steps != sorted(set(steps)):
            raise ValueError(f"grow_steps must be at most 3 increasing steps >= 1, got {steps}")
        if self.reservoir_size < 2 or not 1 <= self.replay_size <= self.reservoir_size:
            raise ValueError("need reservoir_size >= 2 and 1 <= replay_size <= reservoir_size")
        if self.patch_size < 8 or not 1 <= self.augment_passes <= 8:
            raise ValueError("need patch_size >= 8 and 1 <= augment_passes <= 8")
        if min(self.pixel_weight, self.ssim_weight, self.ce_weight) < 0 or not self.smooth_l1_beta > 0:
            raise ValueError("the loss weights must be >= 0 and smooth_l1_beta > 0")


def ssim_index(restored: Tensor, gt: Tensor) -> Tensor:
    """Differentiable SSIM (Gaussian window 11, σ 1.5, as :func:`uir.metrics.ssim`), mean over batch and channels.

    Args:
        restored: ``(B, C, H, W)`` in [0, 1]; a side under 11 shrinks the window to fit.
        gt: same shape.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> round(float(ssim_index(x, x)), 6)
        1.0
    """
    size = min(SSIM_WINDOW, *restored.shape[-2:])
    size -= 1 - size % 2
    r = torch.arange(size, dtype=restored.dtype, device=restored.device) - (size - 1) / 2
    taps = torch.exp(-(r**2) / (2 * SSIM_SIGMA**2))
    taps = taps / taps.sum()
    channels = restored.shape[1]
    kernel = (taps[:, None] * taps[None, :]).expand(channels, 1, size, size)
    stack = torch.cat([restored, gt, restored * restored, gt * gt, restored * gt], dim=1)
    mu_x, mu_y, xx, yy, xy = F.conv2d(stack, kernel.repeat(5, 1, 1, 1), groups=5 * channels).chunk(5, dim=1)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    return (((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))).mean()


def two_means(points: Tensor, generator: torch.Generator, *, restarts: int = 4, iterations: int = 50) -> Tensor:
    """k-means with k = 2 (k-means++ seeding, best of ``restarts``): cluster 0 has the smaller centre.

    Args:
        points: ``(N, D)``, ``N >= 2``.
        generator: a CPU generator; the same generator state gives the same labels.

    Returns:
        ``(N,)`` long labels in {0, 1}.

    Example:
        >>> points = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
        >>> two_means(points, torch.Generator().manual_seed(0)).tolist()
        [0, 0, 1, 1]
    """
    x = points.detach().double().cpu()
    best, best_inertia = torch.zeros(len(x), dtype=torch.long), float("inf")
    for _ in range(restarts):
        first = x[torch.randint(len(x), (1,), generator=generator)]
        weights = (x - first).square().sum(1)
        if weights.sum() == 0:  # all points equal: nothing to split
            return best
        second = x[torch.multinomial(weights, 1, generator=generator)]
        centres = torch.cat([first, second])
        for _ in range(iterations):
            labels = torch.cdist(x, centres).argmin(1)
            updated = torch.stack([x[labels == k].mean(0) if (labels == k).any() else centres[k] for k in (0, 1)])
            if torch.equal(updated, centres):
                break
            centres = updated
        inertia = float((x - centres[labels]).square().sum())
        if inertia < best_inertia:
            order = centres.norm(dim=1).argsort()
            best, best_inertia = order.argsort()[labels], inertia
    return best


def dihedral(x: Tensor, index: int) -> Tensor:
    """The ``index``-th (0–7) flip/rotation of ``(B, C, H, W)``; 0 is the identity."""
    x = torch.rot90(x, index % 4, dims=(-2, -1))
    return x.flip(-1) if index >= 4 else x


def undo_dihedral(x: Tensor, index: int) -> Tensor:
    """``dihedral(x, index)`` turned back: ``undo_dihedral(dihedral(x, k), k)`` is ``x``.

    Example:
        >>> x = torch.arange(6.0).view(1, 1, 2, 3)
        >>> all(torch.equal(undo_dihedral(dihedral(x, k), k), x) for k in range(8))
        True
    """
    x = x.flip(-1) if index >= 4 else x
    return torch.rot90(x, -(index % 4), dims=(-2, -1))


def purity(nodes: Tensor, labels: Tensor) -> float:
    """Share of images whose node's most common true label is theirs (images with ``label < 0`` skipped).

    Example:
        >>> purity(torch.tensor([0, 0, 1, 1]), torch.tensor([3, 3, 3, 5]))
        0.75
    """
    keep = (labels >= 0) & (nodes >= 0)
    nodes, labels = nodes[keep], labels[keep]
    if not len(nodes):
        return float("nan")
    hits = sum(int(labels[nodes == n].bincount().max()) for n in nodes.unique())
    return hits / len(nodes)


class AMIRNet(nn.Module):
    """Train an FTB network and grow its degradation tree (see the module doc for the algorithm and buffers).

    Args:
        backbone: a network with a :class:`DegradationEncoder` as ``degradation`` (``nafnet-ftb-cpu``...).
        Other arguments: the fields of :class:`AMIRNetConfig`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        grow_steps: tuple[int, ...] = (2000, 4000, 6000),
        reservoir_size: int = 256,
        patch_size: int = 64,
        augment_passes: int = 5,
        replay_size: int = 8,
        pixel_weight: float = 0.85,
        ssim_weight: float = 0.15,
        ce_weight: float = 1.0,
        smooth_l1_beta: float = 0.03,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(getattr(backbone, "degradation", None), DegradationEncoder):
            raise UirError(
                f"method amirnet needs a backbone with a degradation encoder, got {type(backbone).__name__}; "
                "set model.backbone to nafnet-ftb-cpu (or nafnet-ftb-tiny)"
            )
        self.backbone = backbone
        self.grow_steps, self.patch_size, self.augment_passes = tuple(grow_steps), patch_size, augment_passes
        self.replay_size, self.seed, self.smooth_l1_beta = replay_size, seed, smooth_l1_beta
        self.weights = (pixel_weight, ssim_weight, ce_weight)
        shape = (reservoir_size, 3, patch_size, patch_size)
        self.register_buffer("step", torch.tensor(0))
        self.register_buffer("seen", torch.tensor(0))
        self.register_buffer("reservoir_lq", torch.zeros(shape, dtype=torch.float16))
        self.register_buffer("reservoir_gt", torch.zeros(shape, dtype=torch.float16))
        self.register_buffer("tree_labels", torch.full((reservoir_size, len(LEVEL_NODES)), -1))
        self.register_buffer("true_labels", torch.full((reservoir_size,), -1))

    @property
    def encoder(self) -> DegradationEncoder:
        return self.backbone.degradation

    @property
    def depth(self) -> int:
        """Levels of the tree grown so far (1: the root alone)."""
        return int(self.encoder.depth)

    @property
    def filled(self) -> int:
        """Images in the reservoir."""
        return min(int(self.seen), len(self.tree_labels))

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """One training loss on ``batch["lq"]``, ``batch["gt"]`` ``(B, 3, H, W)`` in [0, 1] (``label`` optional).

        In training mode it also feeds the reservoir, grows the tree when a step of ``grow_steps`` is reached
        and counts the step.

        Returns:
            The loss, and ``smooth_l1``, ``ssim``, ``ce`` and ``tree_depth`` as detached scalars.
        """
        lq, gt = batch["lq"], batch["gt"]
        if self.training:
            if self.depth == 1 and self.grow_steps:  # no growth planned (a tree-less control arm): nothing to keep
                self.observe(lq, gt, batch.get("label"))
            while self.depth - 1 < len(self.grow_steps) and int(self.step) >= self.grow_steps[self.depth - 1]:
                self.grow()
        restored = self.backbone(lq)
        pixel = F.smooth_l1_loss(restored, gt, beta=self.smooth_l1_beta)
        structure = ssim_index(restored, gt)
        ce = self.replay_loss() if self.depth > 1 else restored.new_zeros(())
        loss = self.weights[0] * pixel + self.weights[1] * (1 - structure) + self.weights[2] * ce
        if self.training:
            self.step += 1
        depth = restored.new_tensor(float(self.depth))
        return loss, {"smooth_l1": pixel.detach(), "ssim": structure.detach(), "ce": ce.detach(), "tree_depth": depth}

    @torch.no_grad()
    def observe(self, lq: Tensor, gt: Tensor, label: Any = None) -> None:
        """Offer every pair of a batch to the reservoir (algorithm R), as a random ``patch_size`` crop."""
        size, (batch, _, height, width) = self.patch_size, lq.shape
        if min(height, width) < size:
            raise UirError(f"method.patch_size {size} is larger than the training crops {height}x{width}; lower it")
        generator = sample_generator(self.seed, int(self.step), _RESERVOIR)
        draws = torch.rand(batch, generator=generator, dtype=torch.float64)
        tops = torch.randint(height - size + 1, (batch,), generator=generator).tolist()
        lefts = torch.randint(width - size + 1, (batch,), generator=generator).tolist()
        labels = label.view(-1).tolist() if isinstance(label, Tensor) else [-1] * batch
        for i in range(batch):
            seen = int(self.seen) + i
            slot = seen if seen < len(self.tree_labels) else int(draws[i] * (seen + 1))
            if slot >= len(self.tree_labels):
                continue
            window = (slice(None), slice(tops[i], tops[i] + size), slice(lefts[i], lefts[i] + size))
            self.reservoir_lq[slot] = lq[i][window]
            self.reservoir_gt[slot] = gt[i][window]
            self.tree_labels[slot] = -1
            self.tree_labels[slot, 0] = 0
            self.true_labels[slot] = int(labels[i])
        self.seen += batch

    @torch.no_grad()
    def responses(self, chunk: int = 64) -> Tensor:
        """``f(lq) − f(gt)`` of every reservoir image, averaged over ``augment_passes`` flips/rotations: ``(N, D)``."""
        out = []
        with torch.autocast(self.reservoir_lq.device.type, enabled=False):
            for start in range(0, self.filled, chunk):
                lq = self.reservoir_lq[start : start + chunk].float()
                gt = self.reservoir_gt[start : start + chunk].float()
                passes = [
                    self.encoder.features(dihedral(lq, k)) - self.encoder.features(dihedral(gt, k))
                    for k in range(self.augment_passes)
                ]
                out.append(torch.stack(passes).mean(0))
        return torch.cat(out)

    @torch.no_grad()
    def grow(self) -> None:
        """Add a level: split every leaf in two by 2-means on its images' responses (module doc, step 2)."""
        level, count = self.depth, self.filled
        if level >= len(LEVEL_NODES):
            raise UirError(f"the tree already has its {len(LEVEL_NODES)} levels")
        features, parents = self.responses(), self.tree_labels[:count, level - 1]
        for parent in range(LEVEL_NODES[level - 1]):
            members = (parents == parent).nonzero().flatten()
            if len(members) < 2:
                logger.warning("tree level %d: node %d has %d image(s), not split", level, parent, len(members))
                self.tree_labels[members, level] = 2 * parent
                continue
            generator = sample_generator(self.seed, level * 1000 + parent, _KMEANS)
            split = two_means(features[members], generator).to(self.tree_labels.device)
            self.tree_labels[members, level] = 2 * parent + split
        self.encoder.depth += 1
        sizes = self.tree_labels[:count, level].bincount(minlength=LEVEL_NODES[level]).tolist()
        score = purity(self.tree_labels[:count, level], self.true_labels[:count])
        logger.info("step %d: grew tree level %d, node sizes %s, purity %.3f", int(self.step), level, sizes, score)

    def replay_loss(self) -> Tensor:
        """``Σ_l CE(mask_l(f), ŷ_l)`` over the grown levels, on ``replay_size`` reservoir patches of this step."""
        generator = sample_generator(self.seed, int(self.step), _REPLAY)
        index = torch.randperm(self.filled, generator=generator)[: self.replay_size].to(self.tree_labels.device)
        code = self.encoder(self.reservoir_lq[index].float())
        labels = self.tree_labels[index]
        return sum(F.cross_entropy(code.logits[level - 1], labels[:, level]) for level in range(1, self.depth))

    def tree_path(self, lq: Tensor) -> list[int]:
        """The node per level of one image ``(3, H, W)`` or ``(1, 3, H, W)``: see ``FTBNAFNet.tree_path``."""
        return self.backbone.tree_path(lq)


def build_amirnet(backbone: nn.Module, config: AMIRNetConfig) -> AMIRNet:
    """The registry's builder: config keys are the constructor's arguments."""
    kwargs = {k: v for k, v in vars(config).items() if k != "name"}
    return AMIRNet(backbone, **kwargs)


register_method("amirnet", AMIRNetConfig, build_amirnet)
