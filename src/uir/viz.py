"""Pictures for people: labelled grids of images (contact sheets, comparison grids)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from uir import io
from uir.degradations import ALL_TYPES, degrade, get_type
from uir.degradations.functional import resize

_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def labelled_grid(
    rows: Sequence[Sequence[Tensor]],
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    *,
    gap: int = 4,
    font_size: int = 14,
    label_width: int | None = None,
) -> Image.Image:
    """Lay out images in a grid with a label per row (left) and per column (top).

    Args:
        rows: ``rows[r][c]`` is a ``(1, 3, H, W)`` or ``(3, H, W)`` tensor in [0, 1]; every cell of a column has
            the same size as the first row's cell.
        row_labels: one text per row (may be empty; may hold line breaks).
        col_labels: one text per column (may be empty).
        label_width: the width of the row-label margin; default: the widest label's.

    Returns:
        An RGB PIL image.
    """
    font = _font(font_size)
    widths = [t.shape[-1] for t in rows[0]]
    heights = [max(t.shape[-2] for t in row) for row in rows]
    if label_width is None:
        widest = max((font.getlength(line) for text in row_labels for line in text.splitlines()), default=0)
        label_width = int(widest) + 3 * gap
    left = label_width if row_labels else 0
    top = font_size + 2 * gap if col_labels else 0
    sheet = Image.new(
        "RGB",
        (left + sum(widths) + gap * (len(widths) + 1), top + sum(heights) + gap * (len(rows) + 1)),
        _BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    xs = [left + gap + sum(widths[:c]) + gap * c for c in range(len(widths))]
    for c, text in enumerate(col_labels):
        draw.text((xs[c] + widths[c] // 2, top // 2), text, fill=_TEXT, font=font, anchor="mm")
    y = top + gap
    for r, row in enumerate(rows):
        if r < len(row_labels):
            draw.multiline_text((gap, y + heights[r] // 2), row_labels[r], fill=_TEXT, font=font, anchor="lm")
        for c, cell in enumerate(row):
            sheet.paste(io.to_pil(cell), (xs[c], y))
        y += heights[r] + gap
    return sheet


def contact_sheet(
    image: Tensor,
    *,
    types: Sequence[str] = ALL_TYPES,
    severities: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
    seed: int = 0,
    tile: int = 192,
) -> Image.Image:
    """Every degradation type at several severities, one row per type, the clean image first.

    Args:
        image: ``(1, 3, H, W)`` in [0, 1]. It is resized so its shorter side is 4/3 of ``tile`` and the centre
            ``tile × tile`` is degraded at that size: pixel-sized effects (grain, streaks) show at their true scale.
        types: the type names, one row each.
        severities: one column each.
        seed: the seed of every cell (so columns differ only by severity).
        tile: the side of each cell in pixels.

    Returns:
        The labelled sheet as an RGB PIL image.
    """
    h, w = image.shape[-2:]
    scale = tile * 4 / 3 / min(h, w)
    nh, nw = max(tile, round(h * scale)), max(tile, round(w * scale))
    top, left = (nh - tile) // 2, (nw - tile) // 2
    small = resize(image, (nh, nw), mode="bicubic").clamp(0, 1)[..., top : top + tile, left : left + tile]
    rows, labels = [], []
    with torch.no_grad():
        for name in types:
            cells = [small] + [degrade(small, name, s, seed)[0] for s in severities]
            rows.append(cells)
            kind = get_type(name)
            labels.append(f"{name}\n({kind.family})")
    col_labels = ["clean"] + [f"s = {s:g}" for s in severities]
    return labelled_grid(rows, labels, col_labels)


def shrink(image: Tensor, long_side: int) -> Tensor:
    """``(1, 3, H, W)`` resized (antialiased, aspect kept) so its long side is at most ``long_side``."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    scale = long_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def before_after(before: Tensor, after: Tensor, label: str = "restored", *, long_side: int = 800) -> Image.Image:
    """A side-by-side picture: ``before`` (left) and ``after`` (right), each shrunk to ``long_side``.

    Args:
        before: ``(1, 3, H, W)`` in [0, 1].
        after: the same size as ``before``.
        label: the right column's title (e.g. the model's name).

    Example:
        >>> import torch
        >>> before_after(torch.zeros(1, 3, 40, 60), torch.ones(1, 3, 40, 60)).size[1] > 40
        True
    """
    cells = [shrink(before[:1].float().cpu(), long_side), shrink(after[:1].float().cpu(), long_side)]
    return labelled_grid([cells], col_labels=["input", label])
