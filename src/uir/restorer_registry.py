"""The ``Restorer`` interface and the plain registries that name restorers and read model files.

Anything that restores images sits behind ``Restorer``: classic baselines (``uir.baselines``), trained and shipped
models (``uir.pretrained``), exported ONNX files (``uir.onnx_engine``). Each of those registers its own names
(``register_restorer``) and file formats (``register_loader``) here when it is imported; ``uir.restorers``
imports them all and resolves a name or a path with ``load_restorer``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Restorer(Protocol):
    """Restores a batch of images.

    Attributes:
        name: a short identity for tables and reports.
    """

    name: str

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """Restore ``lq``.

        Args:
            lq: ``(B, 3, H, W)`` float32 RGB in [0, 1].
            tasks: the degradation label of each image when the caller knows it (benchmarks do). All-in-one
                models ignore it; task-specific dispatchers (``classic-best``) use it.

        Returns:
            ``(B, 3, H, W)`` float32 in [0, 1], on the device of ``lq``.
        """
        ...


RESTORERS: dict[str, Callable[..., Restorer]] = {}
# Names whose factory takes the device (``factory(device)``): learned models; the others are CPU-only.
DEVICE_AWARE: set[str] = set()
# Callables that turn a file path into a Restorer, or return None when the file is not theirs.
LOADERS: list[Callable[[Path, str], Restorer | None]] = []
# Names that once named a restorer and no longer do → how to get it now (said when the name is asked for).
RETIRED: dict[str, str] = {}


def register_restorer(name: str, factory: Callable[..., Restorer], *, takes_device: bool = False) -> None:
    """Register a named restorer (its factory is called on every ``load_restorer``).

    Args:
        name: the name ``--model`` takes.
        factory: ``factory()``, or ``factory(device)`` when ``takes_device``.
        takes_device: the factory places the model on the device ``load_restorer`` is given.
    """
    assert name not in RESTORERS, f"restorer {name} registered twice"
    RESTORERS[name] = factory
    if takes_device:
        DEVICE_AWARE.add(name)


def retire_restorer(name: str, how: str) -> None:
    """Mark ``name`` as a restorer that left uir: ``load_restorer(name)`` then says ``how`` to get it instead."""
    assert name not in RESTORERS, f"restorer {name} is registered, not retired"
    RETIRED[name] = how


def register_loader(loader: Callable[[Path, str], Restorer | None]) -> None:
    """Register a checkpoint loader: ``loader(path, device)`` returns a Restorer, or None if not its format."""
    LOADERS.append(loader)
