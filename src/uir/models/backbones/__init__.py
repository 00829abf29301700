"""Restoration backbones and their named presets.

Every backbone follows one contract (``STYLE.md``), which the methods rely on:

- ``encode(lq, mask=None, cond=None) -> list[Tensor]``: the features of every encoder level and of the
  bottleneck, shallowest first; ``mask`` ``(B, 1, H, W)`` (1 = visible) hides pixels for MaskDCPT.
- ``decode(feats, lq, cond=None) -> Tensor``: the restored ``(B, 3, H, W)`` image, a residual on ``lq``.
- ``feature_dims``: the channels of each element of ``encode``'s list; ``size_multiple``: the padding multiple.
- ``net(lq) == net.decode(net.encode(lq), lq)``; any ``H × W`` (reflect-padded inside, cropped back).
- ``cond`` reaches every block and prompt; only conditioned blocks (AMIRNet's FTB, Perceive-IR's guided blocks),
  swapped in through the ``block`` / ``encoder_block`` factories, use it.

Backbones use plain ops only and export to ONNX for any size: ``torch.onnx.export(net, (lq,), path, dynamo=True,
dynamic_shapes={"lq": {2: Dim("h", min=2 * m), 3: Dim("w", min=2 * m)}})`` with ``m = net.size_multiple``
(the padding is traced symbolically; tested against ONNX Runtime when ``onnx`` is installed).

Presets:

- ``*-tiny``: width 8, one block per level, for tests.
- ``*-cpu``: 2.4–3.7 M parameters, for training and running on a CPU; a pixel-unshuffle stem runs every level at
  half resolution (about 4× fewer MACs; measured with :mod:`uir.models.speed`). ``promptir-cpu`` is
  ``restormer-cpu`` plus prompts, as ``promptir-48`` is ``restormer-48`` plus prompts.
- ``nafnet-ftb-*``: AMIRNet's network (:mod:`uir.models.backbones.amirnet`): the NAFNet of the same name with
  FTB encoder blocks and its own degradation encoder (``-cpu``: width 32, 3 stages, 256-d: +0.83 M parameters).
- The published sizes: ``nafnet-32`` (NAFNet's SIDD model, 29.2 M), ``nafnet-64`` (NAFNet's GoPro
  configuration, the one MaskDCPT uses: width 64, encoder 1-1-1-28, 67.9 M; width 64 with the SIDD block
  counts would be 116 M), ``restormer-48`` (26.1 M), ``promptir-48`` (35.4 M; the released code has 0.2 M more
  in convolutions it never uses).
- ``perceiveir-*``: Perceive-IR's network (:mod:`uir.models.backbones.perceiveir`): the Restormer of the same size
  with guided decoder blocks, a degradation code (CFE) and a frozen semantic encoder (default: ``restormer-cpu``'s
  encoder with fixed random weights, ``restormer-tiny``'s for ``-tiny``; set ``semantic_init`` to a trained one).

Example:
    >>> import torch
    >>> net = create_backbone("restormer-tiny")
    >>> feats = net.encode(torch.rand(1, 3, 37, 53))
    >>> [f.shape[1] for f in feats] == list(net.feature_dims)
    True
"""

from __future__ import annotations

from uir.models.backbones.amirnet import DegradationEncoder, FTBlock, FTBNAFNet
from uir.models.backbones.nafnet import NAFBlock, NAFNet
from uir.models.backbones.perceiveir import DegradationCode, GuidedBlock, PerceiveIR
from uir.models.backbones.promptir import PromptStage, promptir
from uir.models.backbones.restormer import Restormer, TransformerBlock
from uir.models.presets import PRESETS, Backbone, accepted_arguments, create_backbone

_RESTORMER_48 = {"dim": 48, "num_blocks": (4, 6, 6, 8), "num_refinement_blocks": 4, "num_heads": (1, 2, 4, 8)}
_RESTORMER_CPU = {"dim": 20, "num_blocks": (1, 2, 2, 4), "num_refinement_blocks": 1, "stem": 2}
_TINY = {"num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1}
_PERCEIVEIR_TINY = {"code_width": 8, "code_stages": 2, "code_dim": 16, "prompt_len": 4, "guide_hidden": 8}
_FTB_TINY = {"degradation_width": 8, "degradation_stages": 2, "feature_dim": 16, "head_hidden": 8}

PRESETS |= {  # the table of uir.models.presets, filled here where the networks are
    "nafnet-tiny": (
        NAFNet,
        {"width": 8, "encoder_blocks": (1, 1, 1, 1), "middle_blocks": 1, "decoder_blocks": (1, 1, 1, 1)},
    ),
    "nafnet-cpu": (
        NAFNet,
        {"width": 24, "encoder_blocks": (1, 1, 2, 2), "middle_blocks": 1, "decoder_blocks": (1, 1, 1, 1), "stem": 2},
    ),
    "nafnet-small": (
        NAFNet,
        {"width": 32, "encoder_blocks": (2, 2, 4, 2), "middle_blocks": 1, "decoder_blocks": (2, 2, 2, 1), "stem": 2},
    ),
    "nafnet-fr": (  # nafnet-small with a full-resolution first level in place of its 2x stem (issue 19)
        NAFNet,
        {
            "width": 16,
            "encoder_blocks": (1, 2, 2, 4, 2),
            "middle_blocks": 1,
            "decoder_blocks": (1, 2, 2, 2, 1),
            "icnr": True,
        },
    ),
    "nafnet-ftb-tiny": (
        FTBNAFNet,
        {
            "width": 8,
            "encoder_blocks": (1, 1, 1, 1),
            "middle_blocks": 1,
            "decoder_blocks": (1, 1, 1, 1),
            **_FTB_TINY,
        },
    ),
    "nafnet-ftb-cpu": (
        FTBNAFNet,
        {"width": 24, "encoder_blocks": (1, 1, 2, 2), "middle_blocks": 1, "decoder_blocks": (1, 1, 1, 1), "stem": 2},
    ),
    "nafnet-32": (
        NAFNet,
        {"width": 32, "encoder_blocks": (2, 2, 4, 8), "middle_blocks": 12, "decoder_blocks": (2, 2, 2, 2)},
    ),
    "nafnet-64": (
        NAFNet,
        {"width": 64, "encoder_blocks": (1, 1, 1, 28), "middle_blocks": 1, "decoder_blocks": (1, 1, 1, 1)},
    ),
    "restormer-tiny": (Restormer, {"dim": 8, **_TINY}),
    "restormer-cpu": (Restormer, _RESTORMER_CPU),
    "restormer-48": (Restormer, _RESTORMER_48),
    "promptir-tiny": (promptir, {"dim": 8, **_TINY, "prompt_dims": (4, 8, 16), "prompt_sizes": (16, 8, 4)}),
    "promptir-cpu": (promptir, {**_RESTORMER_CPU, "prompt_dims": (24, 48, 120), "prompt_sizes": (32, 16, 8)}),
    "promptir-48": (
        promptir,
        {**_RESTORMER_48, "prompt_dims": (64, 128, 320), "prompt_len": 5, "prompt_sizes": (64, 32, 16)},
    ),
    "perceiveir-tiny": (
        PerceiveIR,
        {"dim": 8, **_TINY, **_PERCEIVEIR_TINY, "semantic_dim": 8, "semantic_backbone": "restormer-tiny"},
    ),
    "perceiveir-cpu": (PerceiveIR, {**_RESTORMER_CPU, "prompt_len": 8, "semantic_dim": 32}),
    "perceiveir-48": (PerceiveIR, _RESTORMER_48),
}


__all__ = [
    "PRESETS",
    "Backbone",
    "accepted_arguments",
    "DegradationCode",
    "DegradationEncoder",
    "FTBNAFNet",
    "FTBlock",
    "GuidedBlock",
    "NAFBlock",
    "NAFNet",
    "PerceiveIR",
    "PromptStage",
    "Restormer",
    "TransformerBlock",
    "create_backbone",
    "promptir",
]
