"""Training methods: ``nn.Module``s that own a backbone (plus heads and frozen helpers) and return a loss.

A method's ``forward(batch)`` returns ``(loss, logs)``: the scalar to minimise and a dict of detached scalar
tensors to log. The training loop knows nothing else. Each method registers its name, its config dataclass
(the ``method:`` section of a config, tagged by ``name``) and a builder in ``uir.methods.registry`` when
imported; this package imports every method module, so the registry is full once it is imported. ``uir.build``
calls the builder.

Example:
    >>> from uir.methods import METHODS, get_method
    >>> "supervised" in METHODS
    True
    >>> get_method("supervised").config().loss
    'l1'
"""

from __future__ import annotations

from uir.methods import (
    amirnet,  # noqa: F401  (registers itself)
    quality_aware,  # noqa: F401  (Perceive-IR stage 2; registers itself)
)
from uir.methods.maskdcpt import MaskDCPT, MaskDCPTConfig, export_classifier, load_classifier
from uir.methods.perceiver import export_perceiver, load_perceiver  # noqa: F401  (Perceive-IR stage 1)
from uir.methods.registry import (
    METHODS,
    MethodSpec,
    TrainedRun,
    build_method,
    get_method,
    method_from_checkpoint,
    register_method,
)
from uir.methods.supervised import Supervised, SupervisedConfig  # (registers itself)

__all__ = [
    "METHODS",
    "MaskDCPT",
    "MaskDCPTConfig",
    "MethodSpec",
    "Supervised",
    "SupervisedConfig",
    "TrainedRun",
    "build_method",
    "export_classifier",
    "get_method",
    "load_classifier",
    "method_from_checkpoint",
    "register_method",
]
