"""uir: universal image restoration.

One network that takes a photo damaged by noise, rain, haze, blur, low light, JPEG, snow (or several at
once), says what is wrong with it, and restores it. See the README for the command line; the Python API
grows here as the layers land.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
