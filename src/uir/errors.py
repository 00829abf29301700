"""Errors a user can cause and fix. The CLI prints their message on one line, never a traceback."""

from __future__ import annotations

from pathlib import Path


class UirError(Exception):
    """A user-facing error: bad input, missing file, wrong option. Its message is one line."""


class ImageError(UirError):
    """An image file that cannot be read or written.

    Args:
        path: the file concerned.
        reason: what is wrong with it, in a few words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")
