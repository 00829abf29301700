"""Networks: restoration backbones (:mod:`uir.models.backbones`) and the blocks they share (:mod:`uir.models.layers`).

Example:
    >>> from uir.models import create_backbone
    >>> net = create_backbone("nafnet-tiny")
    >>> net.feature_dims
    (8, 16, 32, 64, 128)
"""

from __future__ import annotations

from uir.models.backbones import PRESETS, Backbone, create_backbone

__all__ = ["PRESETS", "Backbone", "create_backbone"]
