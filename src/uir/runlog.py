"""A run folder's record: ``log.csv`` (one row per logged or validated step) and ``curves.png``.

The curves are drawn with Pillow (loss on a log scale, PSNR per task), so no plotting library is needed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from uir.errors import UirError
from uir.io import atomic_write_bytes

BASE_COLUMNS = ("step", "epoch", "loss", "lr", "it_per_s", "data_s")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


class RunLog:
    """``log.csv`` with a fixed header: the base columns, then ``psnr/<task>`` per task and ``psnr/mean``.

    Args:
        path: the CSV file.
        tasks: the validation groups.
        resume_step: when resuming, keep the rows up to this step (later ones were not checkpointed and will be
            redone); ``None`` starts a new file.
    """

    def __init__(self, path: Path, tasks: Sequence[str], resume_step: int | None = None) -> None:
        self.path = path
        psnr = [f"psnr/{t}" for t in tasks] + (["psnr/mean"] if tasks else [])
        self.columns = [*BASE_COLUMNS, *psnr]
        self.rows: list[dict[str, str]] = []
        if resume_step is not None and path.is_file():
            with path.open(newline="") as file:
                reader = csv.DictReader(file)
                self.columns += [c for c in reader.fieldnames or () if c not in self.columns]
                self.rows = [r for r in reader if r.get("step") and int(r["step"]) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.path, buffer.getvalue().encode())

    def append(self, row: dict[str, float | int]) -> None:
        """Add one row (missing columns stay empty; new ones, such as a method's losses, are added at the end).

        Floats are written with 6 significant digits.
        """
        text = {k: (f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in row.items()}
        self.rows.append(text)
        new = [k for k in text if k not in self.columns]
        if new:
            self.columns += new
            self._rewrite()
            return
        with self.path.open("a", newline="") as file:
            csv.DictWriter(file, self.columns, lineterminator="\n").writerow(text)

    def series(self, column: str) -> tuple[list[float], list[float]]:
        """``(steps, values)`` of the rows where ``column`` is set."""
        points = [(float(r["step"]), float(r[column])) for r in self.rows if r.get(column) not in (None, "")]
        return [p[0] for p in points], [p[1] for p in points]

    def plot(self, path: Path) -> Path:
        """Draw the loss and PSNR curves side by side as a PNG, atomically."""
        loss = [("loss", *self.series("loss"))]
        psnr = [(c.removeprefix("psnr/"), *self.series(c)) for c in self.columns if c.startswith("psnr/")]
        image = Image.new("RGB", (1200, 450), "white")
        draw = ImageDraw.Draw(image)
        _panel(draw, (0, 0, 600, 450), "training loss (log scale)", loss, log_y=True)
        _panel(draw, (600, 0, 1200, 450), "validation PSNR (dB)", psnr, log_y=False)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return atomic_write_bytes(path, buffer.getvalue())


def read_log(path: str | Path) -> list[dict[str, str]]:
    """The rows of a run's ``log.csv`` (``path``: the file or its run folder), as written (empty cells ``""``).

    Raises:
        UirError: no such file, no rows yet, or not a uir training log (no ``step`` column).
    """
    path = Path(path)
    path = path / "log.csv" if path.is_dir() else path
    if not path.is_file():
        raise UirError(f"{path}: no such file (give a run folder or its log.csv)")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise UirError(f"{path}: no rows logged yet")
    if "step" not in rows[0]:
        raise UirError(f"{path}: not a uir training log (no step column)")
    return rows


def train_seconds(rows: Sequence[dict[str, str]]) -> float:
    """Seconds spent in training steps: each row's ``it_per_s`` is the speed over the steps since the row before.

    Example:
        >>> train_seconds([{"step": "50", "it_per_s": "2"}, {"step": "100", "it_per_s": "5"}, {"step": "150"}])
        35.0
    """
    seconds, before = 0.0, 0
    for row in rows:
        step = int(row["step"])
        rate = float(row.get("it_per_s") or 0)
        if rate > 0:
            seconds += (step - before) / rate
        before = step
    return seconds


def median_rate(rows: Sequence[dict[str, str]]) -> float | None:
    """The median ``it_per_s`` of the rows after the first that holds one (that one includes the start-up).

    Example:
        >>> median_rate([{"it_per_s": "0.5"}, {"it_per_s": "2"}, {"it_per_s": ""}, {"it_per_s": "3"}])
        3.0
    """
    rates = sorted([float(r["it_per_s"]) for r in rows if r.get("it_per_s")][1:])
    return rates[len(rates) // 2] if rates else None


def _log_ticks(low: float, high: float) -> list[float]:
    """Ticks of a log10 axis spanning ``low..high`` (in log10 units): 1-2-5 per decade, or 1..9 if too few."""
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [
            math.log10(m) + d
            for d in range(math.floor(low), math.ceil(high) + 1)
            for m in mantissas
            if low <= math.log10(m) + d <= high
        ]
        if len(ticks) >= 3:
            return ticks
    return ticks


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / count))
    step *= next(m for m in (1, 2, 5, 10) if (high - low) / (step * m) <= count)
    return [i * step for i in range(math.ceil(low / step), math.floor(high / step) + 1)]


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: list[tuple[str, list[float], list[float]]],
    log_y: bool,
) -> None:
    """One plot: axes with ticks, a line per series, a legend; "no data yet" when empty."""
    font = ImageFont.load_default()
    x0, y0, x1, y1 = box[0] + 70, box[1] + 40, box[2] - 20, box[3] - 50
    draw.text((box[0] + 70, box[1] + 12), title, fill="black", font=font)
    draw.rectangle((x0, y0, x1, y1), outline="black")
    transform = (lambda v: math.log10(max(v, 1e-12))) if log_y else (lambda v: v)
    series = [(name, xs, [transform(v) for v in ys]) for name, xs, ys in series if xs]
    if not series:
        draw.text(((x0 + x1) // 2 - 30, (y0 + y1) // 2), "no data yet", fill="gray", font=font)
        return
    all_x = [x for _, xs, _ in series for x in xs]
    all_y = [y for _, _, ys in series for y in ys if math.isfinite(y)] or [0.0]
    lo_x, hi_x = min(all_x), max(max(all_x), min(all_x) + 1)
    lo_y, hi_y = min(all_y), max(all_y)
    pad = (hi_y - lo_y) * 0.05 or 0.5
    lo_y, hi_y = lo_y - pad, hi_y + pad

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + (x - lo_x) / (hi_x - lo_x) * (x1 - x0), y1 - (y - lo_y) / (hi_y - lo_y) * (y1 - y0)

    for tick in _ticks(lo_x, hi_x):
        px = at(tick, lo_y)[0]
        draw.line((px, y1, px, y1 + 4), fill="black")
        draw.text((px - 12, y1 + 8), f"{tick:g}", fill="black", font=font)
    for tick in _log_ticks(lo_y, hi_y) if log_y else _ticks(lo_y, hi_y):
        py = at(lo_x, tick)[1]
        draw.line((x0 - 4, py, x0, py), fill="black")
        draw.line((x0 + 1, py, x1 - 1, py), fill="#eeeeee")
        draw.text((box[0] + 5, py - 6), f"{10**tick:.3g}" if log_y else f"{tick:.4g}", fill="black", font=font)
    draw.text(((x0 + x1) // 2 - 15, y1 + 24), "step", fill="black", font=font)
    for i, (_, xs, ys) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = [at(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for px, py in points if len(points) < 30 else points[-1:]:
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=color)
    legend = (x1 - 160, y0 + 6, x1 - 6, y0 + 10 + 14 * len(series))
    draw.rectangle(legend, fill="white", outline="#cccccc")
    for i, (name, _, _) in enumerate(series):
        draw.text((legend[0] + 6, legend[1] + 2 + 14 * i), f"-- {name}", fill=PALETTE[i % len(PALETTE)], font=font)
