"""Process plumbing of training: the DDP group torchrun describes, its few collectives, and stop signals.

``torchrun --nproc_per_node N`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; ``init_distributed`` then joins
the group (gloo on CPU, NCCL on CUDA, each process on GPU ``LOCAL_RANK``). Alone, everything here is a no-op.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from uir.errors import UirError

logger = logging.getLogger(__name__)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA (this process's GPU under torchrun) when available, else CPU; other names as given."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UirError(f"train.device is {name!r} but CUDA is not available; use cpu or auto")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


@dataclass
class Distributed:
    """This process's place in the group.

    Attributes:
        rank: global rank; 0 validates and writes files.
        world_size: the number of processes.
        local_rank: the rank on this machine (its GPU index).
        device: where this process computes.
        owned: this process created the group (and destroys it in ``close``).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owned: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op alone)."""
        if self.world_size > 1:
            torch_dist.barrier()

    def close(self) -> None:
        """Leave the group if this process joined it."""
        if self.owned and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def init_distributed(device_name: str = "auto") -> Distributed:
    """Join the DDP group described by the environment (torchrun), or run alone when there is none.

    Args:
        device_name: ``train.device`` (``auto``, ``cpu``, ``cuda``...); under torchrun CUDA means GPU ``LOCAL_RANK``.

    Raises:
        UirError: the environment names a group but joining it failed.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size == 1 and not torch_dist.is_initialized():
        return Distributed(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owned = not torch_dist.is_initialized()
    if owned:
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            torch_dist.init_process_group(backend)
        except (RuntimeError, ValueError) as err:
            raise UirError(f"cannot join the DDP group ({backend}): {' '.join(str(err).split())[:200]}") from err
    rank, world_size = torch_dist.get_rank(), torch_dist.get_world_size()
    logger.info("DDP rank %d of %d on %s", rank, world_size, device)
    return Distributed(rank, world_size, local_rank, device, owned)


def wrap_ddp(module: nn.Module, dist: Distributed) -> nn.Module:
    """``DistributedDataParallel(module)`` in a group, ``module`` itself alone."""
    if dist.world_size == 1:
        return module
    device_ids = [dist.device.index] if dist.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def any_rank(flag: bool, dist: Distributed) -> bool:
    """True on every rank when ``flag`` is true on some rank (so all stop at the same step)."""
    if dist.world_size == 1:
        return flag
    value = torch.tensor([int(flag)], device=dist.device)
    torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(values: dict[str, Tensor], dist: Distributed) -> dict[str, float]:
    """Average scalar tensors over the ranks (every rank must call it with the same keys)."""
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float().to(dist.device) for k in keys])
    if dist.world_size > 1:
        torch_dist.all_reduce(stacked)
        stacked /= dist.world_size
    return dict(zip(keys, stacked.tolist(), strict=True))


def all_gather(obj: Any, dist: Distributed) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order."""
    if dist.world_size == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.world_size
    torch_dist.all_gather_object(gathered, obj)
    return gathered


class StopSignals:
    """Turn SIGTERM and the first Ctrl-C into a request to stop after the current step (a second Ctrl-C interrupts).

    Installed only in the main thread; the previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if signum == signal.SIGINT and self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        logger.warning("%s received: stopping after this step (checkpoint first)", self.received)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
