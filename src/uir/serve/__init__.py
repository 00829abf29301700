"""``uir serve``: one process serving a restoration page and a JSON API (FastAPI), offline.

Needs the ``serve`` extra (``pip install 'uir[serve]'``): FastAPI and uvicorn are not part of the core install.

    >>> import uir
    >>> from uir.serve import create_app                   # doctest: +SKIP
    >>> app = create_app(uir.load("identity"))              # doctest: +SKIP

``create_app`` takes a loaded ``uir.Model`` (one model in memory) and the limits; see ``uir.serve.app``.
"""

from __future__ import annotations

from uir.serve.app import create_app
from uir.serve.pool import InferencePool, PoolFull

__all__ = ["InferencePool", "PoolFull", "create_app"]
