"""Training methods: ``nn.Module``s that own a backbone (plus heads and frozen helpers) and return a loss.

A method's ``forward(batch)`` returns ``(loss, logs)``: the scalar to minimise and a dict of detached scalar
tensors to log. The training loop knows nothing else. Each method registers its name, its config dataclass
(the ``method:`` section of a config, tagged by ``name``) and a builder; ``uir.build`` calls the builder.

Example:
    >>> from uir.methods import METHODS, get_method
    >>> "supervised" in METHODS
    True
    >>> get_method("supervised").config().loss
    'l1'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from uir.errors import UirError


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: registry key (kebab-case), the ``method.name`` of configs.
        config: its config dataclass; its first field is ``name``.
        build: ``build(backbone, config, **helpers) -> nn.Module``; helpers are frozen networks made by
            ``uir.build`` (teachers, perceivers), none for ``supervised``. A builder with a keyword ``labels``
            also gets the training data's class names (a batch's ``label`` indexes them), e.g. ``maskdcpt``.
    """

    name: str
    config: type
    build: Callable[..., nn.Module]


METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, config: type, build: Callable[..., nn.Module]) -> None:
    """Register a method under ``name``."""
    assert name not in METHODS, f"method {name} registered twice"
    METHODS[name] = MethodSpec(name, config, build)


def get_method(name: str) -> MethodSpec:
    """A registered method; the error lists the valid names."""
    if name not in METHODS:
        raise UirError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def build_method(backbone: nn.Module, config: Any, **helpers: nn.Module) -> nn.Module:
    """Build the method named by ``config.name`` around ``backbone``."""
    return get_method(config.name).build(backbone, config, **helpers)


from uir.methods import amirnet  # noqa: E402, F401  (registers itself)
from uir.methods.maskdcpt import MaskDCPT, MaskDCPTConfig, export_classifier, load_classifier  # noqa: E402
from uir.methods.perceiver import export_perceiver, load_perceiver  # noqa: E402, F401  (Perceive-IR)
from uir.methods.supervised import Supervised, SupervisedConfig  # noqa: E402  (registers itself)

__all__ = [
    "METHODS",
    "MaskDCPT",
    "MaskDCPTConfig",
    "MethodSpec",
    "Supervised",
    "SupervisedConfig",
    "build_method",
    "export_classifier",
    "get_method",
    "load_classifier",
    "register_method",
]
