"""uir's version: here, at the bottom of the import graph, so that any module can name it (``uir.__version__``
re-exports it, and ``pyproject.toml`` reads it from here)."""

__version__ = "0.1.0"
