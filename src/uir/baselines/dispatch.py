"""The trivial and the oracle baselines: ``identity`` (the degraded input) and ``classic-best``.

``classic-best`` is an *oracle*: it reads each image's degradation label (``tasks``) and runs the classic
method that measured best for that family. An all-in-one model is never told the task, so beating
``classic-best`` is a stronger claim than beating any single baseline, and losing to it is expected at times.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from uir.baselines.base import check_batch
from uir.errors import UirError
from uir.restorer_registry import RESTORERS, Restorer

# Task label (uir.degradations type names) to the baseline that measured best on it (see the README table).
BEST_FOR_TASK: dict[str, str] = {
    "noise": "nlm",
    "camera-noise": "nlm",
    "haze": "dcp",
    "rain-streaks": "guided",
    "raindrops": "guided",
    "rain-streaks-raindrops": "guided",
    "motion-blur": "richardson-lucy",
    "defocus-blur": "richardson-lucy",
    "gaussian-blur": "richardson-lucy",
    "low-light": "retinex",
}


class Identity:
    """``identity``: returns the degraded input unchanged (a copy), the floor every method must clear."""

    name = "identity"

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """Return ``lq`` clamped to [0, 1]: ``(B, 3, H, W)``, same dtype and device."""
        check_batch(lq, self.name)
        return lq.clamp(0.0, 1.0)


class ClassicBest:
    """``classic-best``: per image, the classic baseline for its task label; unknown labels get ``identity``.

    Args:
        factories: baseline name to a factory (defaults to the registered restorers).
        routes: task label to baseline name (defaults to ``BEST_FOR_TASK``).
    """

    name = "classic-best"

    def __init__(
        self,
        *,
        factories: Mapping[str, Callable[[], Restorer]] | None = None,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        # The registry is read when a task is routed, by then filled with every baseline (uir.baselines).
        self.factories = RESTORERS if factories is None else factories
        self.routes = dict(BEST_FOR_TASK if routes is None else routes)
        self._cache: dict[str, Restorer] = {}

    def route(self, task: str) -> str:
        """The baseline name used for a task label (``identity`` when the label is not routed)."""
        return self.routes.get(task, "identity")

    def _restorer(self, name: str) -> Restorer:
        if name not in self._cache:
            self._cache[name] = self.factories[name]() if name != "identity" else Identity()
        return self._cache[name]

    def restore(self, lq: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """Restore each image with the baseline for its task.

        Args:
            lq: ``(B, 3, H, W)`` float RGB in [0, 1].
            tasks: one degradation label per image (required: this baseline is an oracle).

        Returns:
            ``(B, 3, H, W)`` in [0, 1], same dtype and device.
        """
        check_batch(lq, self.name)
        if tasks is None or len(tasks) != lq.shape[0]:
            got = "none" if tasks is None else f"{len(tasks)} for {lq.shape[0]} images"
            raise UirError(f"classic-best is an oracle: it needs one task label per image (--task NAME), got {got}")
        out = torch.empty_like(lq)
        for name in sorted({self.route(t) for t in tasks}):
            idx = [i for i, t in enumerate(tasks) if self.route(t) == name]
            out[idx] = self._restorer(name).restore(lq[idx], [tasks[i] for i in idx])
        return out
