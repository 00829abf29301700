"""Anything that restores images, behind one small interface: classic baselines and learned models alike.

``uir eval --model`` and ``uir restore --model`` take a registered name or a checkpoint path; both resolve it
with ``load_restorer``. Classic baselines register themselves in ``uir.baselines``; learned models add a
loader for checkpoint files with ``register_loader``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from torch import Tensor

from uir.errors import UirError


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


def register_loader(loader: Callable[[Path, str], Restorer | None]) -> None:
    """Register a checkpoint loader: ``loader(path, device)`` returns a Restorer, or None if not its format."""
    LOADERS.append(loader)


def _register_builtins() -> None:
    # Importing these modules registers their restorers and checkpoint loaders; kept out of import time here.
    import uir.baselines  # noqa: F401
    import uir.export  # noqa: F401
    import uir.pretrained  # noqa: F401


def load_restorer(spec: str, device: str = "cpu") -> Restorer:
    """A restorer by registered name or checkpoint path.

    Raises:
        UirError: neither a registered name nor a loadable file; the message lists the names.
    """
    _register_builtins()
    if spec in RESTORERS:
        return RESTORERS[spec](device) if spec in DEVICE_AWARE else RESTORERS[spec]()
    path = Path(spec)
    if path.is_file():
        for loader in LOADERS:
            restorer = loader(path, device)
            if restorer is not None:
                return restorer
        raise UirError(f"{spec}: not a model file uir can load")
    raise UirError(f"unknown model {spec!r}: not a file, and not one of {', '.join(sorted(RESTORERS))}")


def available_restorers() -> list[str]:
    """The registered names, sorted."""
    _register_builtins()
    return sorted(RESTORERS)
