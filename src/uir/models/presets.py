"""The backbone registry: preset name → (constructor, keyword arguments), and ``create_backbone``.

The table is filled by :mod:`uir.models.backbones`, which owns the networks it names (and which the ``uir.models``
package imports, so the table is full whenever a ``uir.models`` module is in use). It lives apart from the networks
so that a network made of another preset (Perceive-IR's frozen semantic encoder, :mod:`uir.models.semantic`) can
build it by name without importing the package that imports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from torch import Tensor, nn

from uir.errors import UirError


class Backbone(Protocol):
    """What methods, heads and exporters may rely on (see the module docstring)."""

    feature_dims: tuple[int, ...]
    size_multiple: int

    def encode(self, lq: Tensor, mask: Tensor | None = None, cond: Tensor | None = None) -> list[Tensor]: ...

    def decode(self, feats: list[Tensor], lq: Tensor, cond: Tensor | None = None) -> Tensor: ...

    def __call__(self, lq: Tensor) -> Tensor: ...


PRESETS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]] = {}
"""Preset name → (backbone class or builder, its keyword arguments); filled by :mod:`uir.models.backbones`."""


def accepted_arguments(factory: Callable[..., nn.Module]) -> set[str]:
    """The keyword arguments ``factory`` takes; a wrapper that forwards ``**kwargs`` to the network named by its
    ``wraps`` attribute (``FTBNAFNet`` → ``NAFNet``) takes that network's too."""
    parameters = inspect.signature(factory).parameters
    accepted = {n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    wrapped = getattr(factory, "wraps", None)
    if wrapped is not None and len(accepted) < len(parameters):
        accepted |= accepted_arguments(wrapped)
    return accepted


def create_backbone(name: str, **overrides: Any) -> nn.Module:
    """Build the preset ``name``, with keyword arguments of its constructor overridden.

    Args:
        name: a key of :data:`PRESETS`, e.g. ``"nafnet-cpu"``.
        **overrides: constructor arguments replacing the preset's, e.g. ``width=24`` or ``block=...``.

    Raises:
        UirError: unknown preset name (the message lists the valid ones) or unknown argument.
    """
    if name not in PRESETS:
        raise UirError(f"unknown backbone {name!r}; valid: {', '.join(PRESETS)}")
    factory, kwargs = PRESETS[name]
    accepted = accepted_arguments(factory)
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise UirError(f"{name} does not take {', '.join(unknown)}; it takes: {', '.join(sorted(accepted))}")
    return factory(**{**kwargs, **overrides})
