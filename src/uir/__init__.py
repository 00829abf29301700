"""uir: universal image restoration.

One network that takes a photo damaged by noise, rain, haze, blur, low light, JPEG, snow (or several at
once), says what is wrong with it, and restores it. See the README for the command line.

The Python API (``uir.api``, re-exported here and imported on first use, so ``import uir`` stays light):

    >>> import uir
    >>> model = uir.load()                  # the shipped default model
    >>> restored = model.restore(photo)     # doctest: +SKIP
    >>> report = uir.inspect_image(photo)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from uir.version import __version__

__all__ = ["TASKS", "Inspector", "Model", "Plan", "__version__", "inspect_image", "load", "restore_image"]


def __getattr__(name: str) -> Any:
    if name in (
        "TASKS",
        "Inspector",
        "Model",
        "Plan",
        "inspect_image",
        "load",
        "restore_image",
    ):  # (uir.restore is the tiling module)
        from uir import api  # heavy: torch; `import uir` stays light and loads the API on first use

        return getattr(api, name)
    raise AttributeError(f"module 'uir' has no attribute {name!r}")
