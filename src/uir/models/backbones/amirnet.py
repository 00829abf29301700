"""AMIRNet's restoration network: NAFNet whose encoder blocks follow a tree-shaped degradation code.

Zhang et al., "All-in-one Multi-degradation Image Restoration Network via Hierarchical Degradation
Representation" (AMIRNet, ACM MM 2023), METHODS §5. A small degradation encoder (residual conv blocks → pooled
``feature_dim``-d ``f``) predicts, for every level ``l`` of a binary tree with ``n_l ∈ {1, 2, 4, 8}`` nodes, the
representation ``r_l = softmax(mask_l(f)) ⊙ pred_l(f)`` (``r_0 = pred_0(f)``: a softmax over one node is 1); the
15 values condition every encoder block, a feature transform block (:class:`FTBlock`). Growing the tree (k-means
on the encoder's responses, cross-entropy on the ``mask_l`` logits) is the training method's job
(:mod:`uir.methods.amirnet`); this network only holds the tree's depth, so that it restores and describes an image
on its own (``net(lq)``, :meth:`FTBNAFNet.tree_path`): inference and export need no method.

Example:
    >>> import torch
    >>> from uir.models import create_backbone
    >>> net = create_backbone("nafnet-ftb-tiny")
    >>> net(torch.rand(1, 3, 37, 53)).shape, net.tree_path(torch.rand(1, 3, 37, 53))
    (torch.Size([1, 3, 37, 53]), [0])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uir.errors import UirError
from uir.models.backbones.nafnet import NAFBlock, NAFNet
from uir.models.layers import BlockFactory, LayerNorm2d, apply_mask, masked_mean

LEVEL_NODES = (1, 2, 4, 8)
"""Nodes per tree level: a root and three binary splits."""

CODE_DIM = sum(LEVEL_NODES)
"""Length of the concatenated representation ``[r_0, r_1, r_2, r_3]`` (15)."""


def _modulated_norm(norm: LayerNorm2d, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``norm`` with its affine shifted per image: ``(w + Δw)·x̂ + (b + Δb)``; ``Δ`` ``(B, C, 1, 1)``."""
    normalized = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], None, None, norm.eps).permute(0, 3, 1, 2)
    return normalized * (norm.weight[:, None, None] + weight) + (norm.bias[:, None, None] + bias)


class FTBlock(nn.Module):
    """The feature transform block: a :class:`NAFBlock` whose affine parameters are linear functions of ``r``.

    The LayerNorm affines, the SimpleGate outputs' scales and the residual scales ``β, γ`` are shifted by
    ``Linear(cond_dim → ·)(r)``, i.e. ``Σ_l Linear(n_l → C)(r_l)`` on the concatenated code. The linear map starts
    at zero, so an FTB starts as the NAFBlock it wraps; with ``cond=None`` it *is* that block, bit for bit.

    Args:
        channels: ``C``.
        cond_dim: length of ``cond`` (15 for the tree code).
        dw_expansion: see :class:`NAFBlock`.
        ffn_expansion: see :class:`NAFBlock`.
        dropout: see :class:`NAFBlock`.

    Example:
        >>> block, x = FTBlock(8), torch.rand(2, 8, 9, 11)
        >>> torch.equal(block(x), block.block(x)), torch.allclose(block(x, cond=torch.rand(2, 15)), block(x))
        (True, True)
    """

    uses_cond = True

    def __init__(
        self,
        channels: int,
        *,
        cond_dim: int = CODE_DIM,
        dw_expansion: int = 2,
        ffn_expansion: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.block = NAFBlock(channels, dw_expansion=dw_expansion, ffn_expansion=ffn_expansion, dropout=dropout)
        gate, ffn_gate = channels * dw_expansion // 2, channels * ffn_expansion // 2
        # norm1 weight, norm1 bias, mixer gate, beta, norm2 weight, norm2 bias, feed-forward gate, gamma
        self.splits = (channels, channels, gate, channels, channels, channels, ffn_gate, channels)
        self.modulation = nn.Linear(cond_dim, sum(self.splits))
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``, as :meth:`NAFBlock.forward` with the affines shifted by ``cond``.

        Args:
            x: features, zero at hidden positions when ``mask`` is given.
            mask: ``(B, 1, H, W)`` 0/1 (1 = visible) or ``None``.
            cond: ``(B, cond_dim)``, or ``None`` for the plain block.
        """
        if cond is None:
            return self.block(x, mask)
        b = self.block
        shifts = self.modulation(cond.to(x.dtype)).split(self.splits, dim=1)
        w1, b1, gate1, beta, w2, b2, gate2, gamma = (s[:, :, None, None] for s in shifts)
        y = b.expand(_modulated_norm(b.norm1, x, w1, b1))
        y = b.gate(b.dwconv(apply_mask(y, mask))) * (1 + gate1)
        y = y * b.attention(masked_mean(y, mask))
        x = x + (b.beta + beta) * b.dropout(b.project(y))
        y = b.ffn_out(b.gate(b.ffn_in(_modulated_norm(b.norm2, x, w2, b2))) * (1 + gate2))
        return apply_mask(x + (b.gamma + gamma) * b.dropout(y), mask)


def _half_mask(mask: Tensor | None) -> Tensor | None:
    """The mask after a stride-2 ``3×3`` conv (``ceil(H/2)``): visible where any of its children is."""
    return None if mask is None else F.max_pool2d(mask, 2, ceil_mode=True)


class _ResidualBlock(nn.Module):
    """``x + conv(LeakyReLU(conv(x)))``, masked as :mod:`uir.models.layers` prescribes."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        y = self.conv2(apply_mask(self.act(self.conv1(x)), mask))
        return apply_mask(self.act(x + y), mask)


def _mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, out_features))


@dataclass
class TreeCode:
    """What the degradation encoder says about a batch.

    Attributes:
        features: ``f``, ``(B, feature_dim)``: the pooled response the tree is grown on.
        logits: ``mask_l(f)`` for levels 1–3, ``(B, n_l)`` each: what cross-entropy supervises.
        representation: ``[r_0, …, r_3]``, ``(B, 15)``: the blocks' conditioning.
    """

    features: Tensor
    logits: list[Tensor]
    representation: Tensor


class DegradationEncoder(nn.Module):
    """Residual conv blocks → masked global pooling → ``f``; per level, heads ``pred_l`` and ``mask_l``.

    Args:
        in_channels: image channels.
        width: channels of the first stage (after a stride-2 stem); each further stage halves the resolution
            and doubles the channels.
        stages: number of stages (one residual block each).
        feature_dim: length of ``f`` (256 in the paper).
        head_hidden: hidden units of the per-level MLP heads.

    The buffer ``depth`` (1–4) counts the levels the tree has grown: the root alone at first. Levels not grown
    yet still condition the network, as unsupervised codes; :meth:`tree_path` reports grown levels only.

    Example:
        >>> encoder = DegradationEncoder(width=8, stages=2, feature_dim=16, head_hidden=8)
        >>> code = encoder(torch.rand(2, 3, 37, 53))
        >>> code.features.shape, [t.shape[1] for t in code.logits], code.representation.shape
        (torch.Size([2, 16]), [2, 4, 8], torch.Size([2, 15]))
    """

    def __init__(
        self, in_channels: int = 3, *, width: int = 32, stages: int = 3, feature_dim: int = 256, head_hidden: int = 128
    ) -> None:
        super().__init__()
        if stages < 1:
            raise UirError(f"the degradation encoder needs stages >= 1, got {stages}")
        self.stem = nn.Conv2d(in_channels, width, 3, stride=2, padding=1)
        widths = [width * 2**s for s in range(stages)]
        self.blocks = nn.ModuleList(_ResidualBlock(c) for c in widths)
        self.downs = nn.ModuleList(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1) for c in widths[:-1])
        self.project = nn.Conv2d(widths[-1], feature_dim, 1)
        self.pred = nn.ModuleList(_mlp(feature_dim, head_hidden, n) for n in LEVEL_NODES)
        self.mask = nn.ModuleList(_mlp(feature_dim, head_hidden, n) for n in LEVEL_NODES[1:])
        self.register_buffer("depth", torch.tensor(1))

    def features(self, lq: Tensor, mask: Tensor | None = None) -> Tensor:
        """``f``: ``(B, 3, H, W)`` in [0, 1] (any size; hidden pixels ignored under ``mask``) → ``(B, feature_dim)``."""
        if mask is not None:
            mask = mask.to(lq.dtype)
            lq = lq * mask
        mask = _half_mask(mask)
        x = apply_mask(F.leaky_relu(self.stem(lq), 0.1), mask)
        for index, block in enumerate(self.blocks):
            x = block(x, mask)
            if index < len(self.downs):
                mask = _half_mask(mask)
                x = apply_mask(F.leaky_relu(self.downs[index](x), 0.1), mask)
        return masked_mean(self.project(x), mask).flatten(1)

    def represent(self, features: Tensor) -> TreeCode:
        """Heads on ``f`` ``(B, feature_dim)``: ``r_0 = pred_0(f)``, ``r_l = softmax(mask_l(f)) ⊙ pred_l(f)``."""
        logits = [head(features) for head in self.mask]
        parts = [self.pred[0](features)]
        parts += [logit.softmax(dim=1) * pred(features) for logit, pred in zip(logits, self.pred[1:], strict=True)]
        return TreeCode(features, logits, torch.cat(parts, dim=1))

    def forward(self, lq: Tensor, mask: Tensor | None = None) -> TreeCode:
        """The code of ``lq`` ``(B, 3, H, W)``; see :class:`TreeCode`."""
        return self.represent(self.features(lq, mask))

    @torch.no_grad()
    def tree_paths(self, lq: Tensor) -> list[list[int]]:
        """Each image's path through the grown tree: node index per level, the root (0) first.

        At level ``l`` the path goes to the child ``2p`` or ``2p + 1`` of its node ``p`` whose ``mask_l`` logit is
        larger, so every path is a branch of the tree.

        Args:
            lq: ``(B, 3, H, W)`` in [0, 1].

        Returns:
            ``B`` lists of ``depth`` node indices.
        """
        logits = self(lq).logits
        node = torch.zeros(lq.shape[0], dtype=torch.long, device=lq.device)
        paths = [node]
        for level in range(1, int(self.depth)):
            pair = logits[level - 1].gather(1, torch.stack([2 * node, 2 * node + 1], dim=1))
            node = 2 * node + pair.argmax(dim=1)
            paths.append(node)
        return torch.stack(paths, dim=1).tolist()


class FTBNAFNet(nn.Module):
    """NAFNet with FTB encoder blocks, conditioned on its own :class:`DegradationEncoder` (AMIRNet, METHODS §5).

    Follows the backbone contract: ``encode``/``decode``/``feature_dims``/``size_multiple``; ``cond=None``
    (the default everywhere) computes the tree code of ``lq`` with :attr:`degradation`, an explicit ``cond``
    replaces it (e.g. a code of another image).

    Args:
        in_channels, channels_last: as :class:`NAFNet`.
        encoder_block: factory of the encoder blocks; default :class:`FTBlock` (the decoder stays plain).
        degradation_width, degradation_stages, feature_dim, head_hidden: the :class:`DegradationEncoder`'s
            ``width``, ``stages``, ``feature_dim``, ``head_hidden``.
        nafnet: the other keywords of :class:`NAFNet` (``width``, ``encoder_blocks``, ``middle_blocks``...).

    Example:
        >>> net = FTBNAFNet(width=8, encoder_blocks=(1, 1), middle_blocks=1, decoder_blocks=(1, 1),
        ...                 degradation_width=8, degradation_stages=2, feature_dim=16, head_hidden=8)
        >>> lq = torch.rand(2, 3, 37, 53)
        >>> net(lq).shape, net.condition(lq).shape
        (torch.Size([2, 3, 37, 53]), torch.Size([2, 15]))
    """

    wraps = NAFNet
    """The network this one builds on; ``create_backbone`` accepts its keywords too."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        encoder_block: BlockFactory | None = None,
        channels_last: bool = True,
        degradation_width: int = 32,
        degradation_stages: int = 3,
        feature_dim: int = 256,
        head_hidden: int = 128,
        **nafnet: Any,
    ) -> None:
        super().__init__()
        self.degradation = DegradationEncoder(
            in_channels,
            width=degradation_width,
            stages=degradation_stages,
            feature_dim=feature_dim,
            head_hidden=head_hidden,
        )
        self.net = NAFNet(
            **nafnet,
            in_channels=in_channels,
            encoder_block=encoder_block or partial(FTBlock, cond_dim=CODE_DIM),
            channels_last=channels_last,
        )
        self.feature_dims, self.size_multiple = self.net.feature_dims, self.net.size_multiple
        self.levels, self.stem_factor = self.net.levels, self.net.stem_factor
        self.uses_code = any(getattr(m, "uses_cond", False) for m in self.net.modules())
        self.decoder_uses_code = any(getattr(m, "uses_cond", False) for m in self.net.decoders.modules())
        if channels_last:
            self.degradation.to(memory_format=torch.channels_last)

    def condition(self, lq: Tensor, mask: Tensor | None = None) -> Tensor:
        """The tree code ``[r_0, …, r_3]`` of ``lq`` ``(B, 3, H, W)``: ``(B, 15)``."""
        return self.degradation(lq, mask).representation

    def _code(self, lq: Tensor, mask: Tensor | None, cond: Tensor | None, needed: bool) -> Tensor | None:
        return self.condition(lq, mask) if cond is None and needed else cond

    def encode(self, lq: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> list[Tensor]:
        """:meth:`NAFNet.encode` conditioned on ``cond`` (default: the code of ``lq``, hidden pixels ignored)."""
        return self.net.encode(lq, mask, self._code(lq, mask, cond, self.uses_code))

    def decode(self, feats: list[Tensor], lq: Tensor, cond: Tensor | None = None) -> Tensor:
        """:meth:`NAFNet.decode`; the code is computed only if conditioned decoder blocks need it."""
        return self.net.decode(feats, lq, self._code(lq, None, cond, self.decoder_uses_code))

    def forward(self, lq: Tensor, cond: Tensor | None = None) -> Tensor:
        """Restore ``lq`` ``(B, 3, H, W)``, computing its code once."""
        cond = self._code(lq, None, cond, self.uses_code)
        return self.net.decode(self.net.encode(lq, cond=cond), lq, cond=cond)

    def base_state(self, state: Mapping[str, Tensor]) -> dict[str, Tensor] | None:
        """The weights of the wrapped :class:`NAFNet` (e.g. a MaskDCPT pre-training of ``nafnet-cpu``) under this
        network's keys, or ``None`` when ``state`` is not exactly such a NAFNet's.

        An FTB's NAFBlock takes the block's weights; the FTB modulations (zero at start, so each FTB starts as the
        pre-trained block) and the degradation encoder are not in the result and keep their initialisation:
        ``model.init`` with a NAFNet's weights is how MaskDCPT pre-training is combined with AMIRNet.

        Example:
            >>> from uir.models import create_backbone
            >>> base, net = create_backbone("nafnet-tiny"), create_backbone("nafnet-ftb-tiny")
            >>> mapped = net.base_state(base.state_dict())
            >>> len(mapped) == len(base.state_dict()), net.base_state(net.state_dict()) is None
            (True, True)
        """
        wrapped = [name for name, module in self.net.named_modules() if isinstance(module, FTBlock)]
        mapped: dict[str, Tensor] = {}
        own = self.state_dict()
        for key in own:
            if not key.startswith("net.") or ".modulation." in key:
                continue
            base = key.removeprefix("net.")
            for name in wrapped:
                if base.startswith(f"{name}.block."):
                    base = name + base[len(name) + len(".block") :]
                    break
            if base not in state or state[base].shape != own[key].shape:
                return None
            mapped[key] = state[base]
        return mapped if len(mapped) == len(state) else None

    def tree_path(self, lq: Tensor) -> list[int]:
        """The path of one image ``(3, H, W)`` or ``(1, 3, H, W)`` through the grown tree (see ``tree_paths``).

        Example:
            >>> from uir.models import create_backbone
            >>> create_backbone("nafnet-ftb-tiny").tree_path(torch.rand(3, 20, 20))
            [0]
        """
        if lq.ndim == 3:
            lq = lq[None]
        if lq.ndim != 4 or lq.shape[0] != 1:
            raise UirError(
                f"tree_path takes one image (3, H, W) or (1, 3, H, W), got {tuple(lq.shape)}; use tree_paths"
            )
        return self.degradation.tree_paths(lq)[0]

    def tree_paths(self, lq: Tensor) -> list[list[int]]:
        """Every image's path through the grown tree, ``lq`` ``(B, 3, H, W)``: see ``DegradationEncoder.tree_paths``."""
        return self.degradation.tree_paths(lq)
