"""The training loop: config → objects (``uir.build``) → steps, in one readable class.

Each step: next batch → ``loss, logs = method(batch)`` → backward → gradient-norm clipping → AdamW → per-iteration
warm-up/cosine learning rate → EMA update. Every ``log_every`` steps a row goes to ``log.csv``; every
``val_every`` steps the EMA backbone is scored (PSNR per task) on the fixed validation set and ``best.safetensors``
is exported when the mean improves; every ``ckpt_every`` steps, at the end and on SIGTERM/Ctrl-C, ``last.ckpt``
is written atomically. ``resume=True`` continues from ``last.ckpt`` exactly: the batch order is a function of
the seed and the step (``uir.data.mixing``), and weights, EMA, optimizer, schedule and random states are restored,
so on a CPU a run stopped at any step and resumed ends with the same weights as one never stopped (given the
same data, thread count and number of processes; a changed config is followed, with a warning).

Under ``torchrun --nproc_per_node N`` the same code trains with DDP (gloo on CPU, NCCL on GPU): each rank reads
its slice of every global batch of ``batch_size × N`` samples; only rank 0 validates and writes files.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from uir import build
from uir.checkpoint import export_safetensors, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from uir.config import Config, save_config, to_dict
from uir.data.mixing import MixSampler
from uir.distributed import (
    Distributed,
    StopSignals,
    all_gather,
    any_rank,
    init_distributed,
    mean_over_ranks,
    wrap_ddp,
)
from uir.errors import UirError
from uir.metrics import psnr
from uir.runlog import RunLog

logger = logging.getLogger(__name__)

CHECKPOINT = "last.ckpt"


@dataclass
class TrainResult:
    """What a call to ``train`` did.

    Attributes:
        run_dir: the run folder.
        step: iterations done in all (``total_iters`` when finished).
        stopped: ``"SIGTERM"``/``"SIGINT"`` when a signal stopped it early (after saving), else ``None``.
        finished: ``step == total_iters``.
        val: the last validation's PSNR per task (and ``mean``).
        best_psnr: the best mean validation PSNR so far.
        rank: the DDP rank that returns this (0 alone).
    """

    run_dir: Path
    step: int
    stopped: str | None = None
    finished: bool = False
    val: dict[str, float] = field(default_factory=dict)
    best_psnr: float | None = None
    rank: int = 0


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 − decay)·model`` for floating tensors; other buffers are copied."""
    floating: tuple[list[Tensor], list[Tensor]] = ([], [])
    for e, m in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if e.is_floating_point():
            floating[0].append(e)
            floating[1].append(m)
        else:
            e.copy_(m)
    if floating[0]:  # one fused call: a per-tensor loop is hundreds of kernel launches a step on a GPU
        torch._foreach_lerp_(floating[0], floating[1], 1.0 - decay)


@torch.no_grad()
def validation_psnr(
    restore: Callable[[Tensor], Tensor], val_set: Iterable[dict[str, Any]], device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Mean PSNR (dB) per validation group of ``restore`` (a backbone or any ``lq -> restored`` function).

    ``uir.metrics.psnr`` on RGB in [0, 1] of the clamped output, whole (cropped) images: what training logs.
    """
    scores: dict[str, list[float]] = {}
    for sample in val_set:
        restored = restore(sample["lq"].to(device)).clamp(0, 1)
        scores.setdefault(sample["group"], []).append(float(psnr(restored, sample["gt"].to(device))[0]))
    return {group: sum(v) / len(v) for group, v in scores.items()}


class Trainer:
    """Owns every object of a run and the step counter; ``run`` trains until ``total_iters`` or a stop.

    Args:
        cfg: the resolved config.
        run_dir: where ``config.yaml``, ``log.csv``, ``curves.png``, checkpoints and exports go.
        dist: this process's place in a DDP group (rank 0 of 1 when alone).
        resume: continue from ``run_dir/last.ckpt``.
    """

    def __init__(self, cfg: Config, run_dir: Path, dist: Distributed, *, resume: bool = False) -> None:
        self.cfg, self.run_dir, self.dist = cfg, run_dir, dist
        self.device = dist.device
        _check_run_dir(run_dir, resume)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
        self.backbone = build.build_backbone(cfg.model, init=not resume).to(self.device)
        self.method = build.build_method(cfg, self.backbone).to(self.device).train()
        if getattr(self.method, "backbone", None) is not self.backbone:
            raise UirError(f"method {cfg.method.name!r} must keep its backbone as `self.backbone`")
        self.ema = copy.deepcopy(self.backbone).eval().requires_grad_(False) if cfg.optim.ema_decay > 0 else None
        self.optimizer = build.build_optimizer(self.method, cfg.optim)
        self.scheduler = build.build_scheduler(self.optimizer, cfg.optim)
        self.data = build.build_train_data(cfg.data, cfg.train.seed)
        sizes, batch = self.data.dataset.sizes(), cfg.data.batch_size
        sampler = MixSampler(sizes, self.data.repeats, batch_size=batch, world_size=dist.world_size)
        self.steps_per_epoch = sampler.steps_per_epoch
        self.val_set = build.build_val_set(cfg.val) if dist.is_main else []
        self.step, self.best_psnr, self.last_val, self.lr = 0, -math.inf, {}, cfg.optim.lr
        torch.manual_seed(cfg.train.seed + 7919 * dist.rank)  # per-rank draws (masks, noise) differ
        if resume:
            self.load(run_dir / CHECKPOINT)
        self.model = wrap_ddp(self.method, dist)
        self.log = self._open_log(resume) if dist.is_main else None
        self._saved_step = self.step if resume else -1

    def _open_log(self, resume: bool) -> RunLog:
        tasks = list(dict.fromkeys(s["group"] for s in self.val_set))
        save_config(self.cfg, self.run_dir / "config.yaml")
        return RunLog(self.run_dir / "log.csv", tasks, resume_step=self.step if resume else None)

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """One optimisation step on ``batch``; returns the detached loss and the method's logs."""
        batch = {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}
        bf16 = self.cfg.train.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, logs = self.model(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip is not None:
            logs = {**logs, "grad_norm": nn.utils.clip_grad_norm_(self.method.parameters(), self.cfg.optim.grad_clip)}
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            # EMA warm-up: early averages would be dominated by the random initial weights.
            decay = min(self.cfg.optim.ema_decay, (1 + self.step) / (10 + self.step))
            update_ema(self.ema, self.backbone, decay)
        self.step += 1
        return loss.detach(), logs

    # ------------------------------------------------------------------ the loop

    def run(self, *, stop_at: int | None = None, progress: bool = True) -> TrainResult:
        """Train from ``self.step`` to ``total_iters`` (or ``stop_at``); checkpoint at the end or on a signal."""
        total = self.cfg.optim.total_iters
        end = total if stop_at is None else min(stop_at, total)
        loader, _ = build.build_loader(
            self.data,
            self.cfg.data,
            seed=self.cfg.train.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            start_step=self.step,
            pin_memory=self.device.type == "cuda",
        )
        show = progress and self.dist.is_main
        bar = tqdm(total=total, initial=self.step, desc="training", unit="it", dynamic_ncols=True, disable=not show)
        batches = iter(loader)  # before the handlers are installed; the workers ignore SIGTERM and SIGINT
        with StopSignals() as signals, contextlib.closing(bar):
            stopped = self._loop(batches, end, bar, signals)
            self.save()
        if self.step == total and self.dist.is_main:
            self._export("final.safetensors")
            self.log.plot(self.run_dir / "curves.png")  # type: ignore[union-attr]
        self.dist.barrier()
        best = self.best_psnr if math.isfinite(self.best_psnr) else None
        return TrainResult(self.run_dir, self.step, stopped, self.step == total, self.last_val, best, self.dist.rank)

    def _loop(self, batches: Iterator[dict[str, Any]], end: int, bar: tqdm, signals: StopSignals) -> str | None:
        meter = _Meter()
        while self.step < end:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except Exception:
                if signals.received:  # a loader worker was killed (SIGKILL, say); the step was not taken
                    return signals.received
                raise
            meter.data_time += time.perf_counter() - start
            loss, logs = self.train_step(batch)
            meter.add(loss, logs)
            bar.update(1)
            self._periodic(meter, bar)
            if any_rank(signals.received is not None, self.dist):
                self._flush(meter)
                return signals.received or "SIGTERM"
        self._flush(meter)
        return None

    def _flush(self, meter: _Meter) -> None:
        """Log the steps since the last row when the loop ends between logging steps."""
        if meter.steps:  # every rank: the row's values are averaged over ranks
            row = self._train_row(meter)
            if self.log is not None:
                self.log.append({"step": self.step, "epoch": self.step // self.steps_per_epoch, **row})

    def _periodic(self, meter: _Meter, bar: tqdm) -> None:
        every = self.cfg.train
        row: dict[str, float | int] = {}
        if self.step % every.log_every == 0 or self.step == self.cfg.optim.total_iters:
            row |= self._train_row(meter)
            bar.set_postfix(loss=f"{row['loss']:.4g}", lr=f"{row['lr']:.2e}", refresh=False)
        validate = every.val_every and self.step % every.val_every == 0
        if (validate or self.step == self.cfg.optim.total_iters) and self.val_set:
            row |= self.validate()
        if row and self.log is not None:
            self.log.append({"step": self.step, "epoch": self.step // self.steps_per_epoch, **row})
            if "psnr/mean" in row:
                self.log.plot(self.run_dir / "curves.png")
        if every.ckpt_every and self.step % every.ckpt_every == 0:
            self.save()

    def _train_row(self, meter: _Meter) -> dict[str, float]:
        values = mean_over_ranks(meter.means(), self.dist)
        if not math.isfinite(values["loss"]):
            raise UirError(f"the loss is {values['loss']} at step {self.step}; lower optim.lr or set optim.grad_clip")
        elapsed = time.perf_counter() - meter.since
        row = {**values, "lr": self.lr, "it_per_s": meter.steps / max(elapsed, 1e-9)}
        row["data_s"] = meter.data_time / max(meter.steps, 1)
        logger.info("step %d: loss %.4g, %.2f it/s", self.step, row["loss"], row["it_per_s"])
        meter.reset()
        return row

    # ------------------------------------------------------------------ validation and files

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """PSNR per task (and their mean) of the EMA backbone (or the raw one) on the validation set.

        ``uir.metrics.psnr`` on RGB in [0, 1], whole (cropped) images, averaged per task: the benchmark convention
        on a small fixed set, for monitoring; ``uir eval`` gives the reportable numbers.
        """
        net = self.ema if self.ema is not None else self.backbone.eval()
        result = {f"psnr/{group}": value for group, value in validation_psnr(net, self.val_set, self.device).items()}
        self.backbone.train()
        result["psnr/mean"] = sum(result.values()) / len(result)
        self.last_val = {k.removeprefix("psnr/"): v for k, v in result.items()}
        logger.info("step %d: validation PSNR %s", self.step, ", ".join(f"{k} {v:.2f}" for k, v in result.items()))
        if result["psnr/mean"] > self.best_psnr:
            self.best_psnr = result["psnr/mean"]
            self._export("best.safetensors")
        return result

    def _export(self, name: str) -> None:
        net = self.ema if self.ema is not None else self.backbone
        metadata = {
            "backbone": self.cfg.model.backbone,
            "overrides": self.cfg.model.overrides,
            "labels": self.data.labels,
            "config": to_dict(self.cfg),
            "step": self.step,
            "psnr": self.last_val,
        }
        export_safetensors(self.run_dir / name, net.state_dict(), metadata)

    def state_dict(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        """The checkpoint (see ``uir.checkpoint``)."""
        epoch, batch = divmod(self.step, self.steps_per_epoch)
        position = {"epoch": epoch, "batch": batch, "steps_per_epoch": self.steps_per_epoch}
        return {
            "step": self.step,
            "sampler": {**position, "world_size": self.dist.world_size},
            "backbone": self.backbone.state_dict(),
            "method": {k: v for k, v in self.method.state_dict().items() if not k.startswith("backbone.")},
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng,
            "best_psnr": self.best_psnr,
            "config": to_dict(self.cfg),
            "labels": self.data.labels,
            "backbone_name": self.cfg.model.backbone,
        }

    def save(self) -> None:
        """Write ``last.ckpt`` (rank 0; every rank sends its random state). Skipped if this step is saved."""
        if self._saved_step == self.step:
            return
        rng = all_gather(rng_state(), self.dist)
        if self.dist.is_main:
            save_checkpoint(self.run_dir / CHECKPOINT, self.state_dict(rng))
            logger.info("step %d: saved %s", self.step, self.run_dir / CHECKPOINT)
        self._saved_step = self.step

    def load(self, path: Path) -> None:
        """Restore everything from a checkpoint (before DDP wrapping)."""
        state = load_checkpoint(path, map_location=self.device)
        _warn_differences(state, self)
        self.backbone.load_state_dict(state["backbone"])
        method = {**{f"backbone.{k}": v for k, v in state["backbone"].items()}, **state["method"]}
        self.method.load_state_dict(method)
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        build.retarget_scheduler(self.scheduler, self.cfg.optim)
        self.step, self.best_psnr = int(state["step"]), float(state["best_psnr"])
        rngs = state["rng"]
        set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        logger.info("resumed %s at step %d", path, self.step)


class _Meter:
    """Sums over the current logging interval."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.steps, self.data_time, self.since = 0, 0.0, time.perf_counter()

    def add(self, loss: Tensor, logs: dict[str, Tensor]) -> None:
        for key, value in {"loss": loss, **logs}.items():
            value = torch.as_tensor(value).detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1

    def means(self) -> dict[str, Tensor]:
        return {k: v / max(self.steps, 1) for k, v in self.sums.items()}


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    has_checkpoint = (run_dir / CHECKPOINT).is_file()
    if resume and not has_checkpoint:
        raise UirError(f"{run_dir}: no {CHECKPOINT} to resume from; start without --resume")
    if not resume and has_checkpoint:
        raise UirError(f"{run_dir} already holds a run; add --resume to continue it, or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)


def _warn_differences(state: dict[str, Any], trainer: Trainer) -> None:
    old, new = _flatten(state.get("config", {})), _flatten(to_dict(trainer.cfg))
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        logger.warning("resuming with a changed config (%s): not an exact continuation", ", ".join(changed))
    if state["sampler"].get("world_size") != trainer.dist.world_size:
        logger.warning(
            "resuming on %d processes, saved on %s: the data order changes",
            trainer.dist.world_size,
            state["sampler"].get("world_size"),
        )
    if list(state["labels"]) != trainer.data.labels:
        logger.warning("the class names changed: %s then, %s now", state["labels"], trainer.data.labels)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def train(
    cfg: Config, run_dir: str | Path, *, resume: bool = False, stop_at: int | None = None, progress: bool = True
) -> TrainResult:
    """Train (or resume) a run; under ``torchrun`` every process calls this and joins the DDP group.

    Args:
        cfg: the resolved config (``uir.config.load_config``).
        run_dir: the run folder.
        resume: continue from ``run_dir/last.ckpt``.
        stop_at: stop after this step as if interrupted (checkpoint, no export), e.g. to train in chunks.
        progress: show the progress bar (rank 0, stderr).

    Raises:
        UirError: bad data paths, a run folder that already holds a run (without ``resume``), a diverged loss.
    """
    dist = init_distributed(cfg.train.device)
    try:
        trainer = Trainer(cfg, Path(run_dir), dist, resume=resume)
        return trainer.run(stop_at=stop_at, progress=progress)
    finally:
        dist.close()
