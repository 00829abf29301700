"""Every restorer uir knows, by name or file: classic baselines and learned models alike.

``uir eval --model`` and ``uir restore --model`` take a registered name or a model file; both resolve it with
``load_restorer``. The interface and the registries are in ``uir.restorer_registry``; importing this module
imports the modules that fill them: ``uir.baselines`` (classic methods), ``uir.pretrained`` (shipped models and
``.safetensors``/``.ckpt`` files) and ``uir.onnx_engine`` (``.onnx`` files).

Example:
    >>> from uir.restorers import available_restorers, load_restorer
    >>> "identity" in available_restorers()
    True
"""

from __future__ import annotations

from pathlib import Path

import uir.baselines  # noqa: F401  (registers the classic baselines)
import uir.onnx_engine  # noqa: F401  (registers the .onnx loader)
import uir.pretrained  # noqa: F401  (registers the shipped models and the model-file loader)
from uir.errors import UirError
from uir.restorer_registry import (
    DEVICE_AWARE,
    LOADERS,
    RESTORERS,
    RETIRED,
    Restorer,
    register_loader,
    register_restorer,
)

__all__ = [
    "DEVICE_AWARE",
    "LOADERS",
    "RESTORERS",
    "Restorer",
    "available_restorers",
    "load_restorer",
    "register_loader",
    "register_restorer",
]


def load_restorer(spec: str, device: str = "cpu") -> Restorer:
    """A restorer by registered name or checkpoint path.

    Raises:
        UirError: neither a registered name nor a loadable file; the message lists the names.
    """
    if spec in RESTORERS:
        return RESTORERS[spec](device) if spec in DEVICE_AWARE else RESTORERS[spec]()
    path = Path(spec)
    if path.is_file():
        for loader in LOADERS:
            restorer = loader(path, device)
            if restorer is not None:
                return restorer
        raise UirError(f"{spec}: not a model file uir can load")
    if spec in RETIRED:
        raise UirError(f"{spec} is no longer shipped with uir: {RETIRED[spec]}")
    raise UirError(f"unknown model {spec!r}: not a file, and not one of {', '.join(sorted(RESTORERS))}")


def available_restorers() -> list[str]:
    """The registered names, sorted."""
    return sorted(RESTORERS)
