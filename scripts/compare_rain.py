"""Compare uir's synthetic ``rain-streaks`` with Rain100L, by simple statistics and by eye.

For every Rain100L pair, the rain layer is ``R = luma(lq) − luma(gt)`` (Rec. 601). The same statistics
are taken for ``rain-streaks`` applied to the same clean images (seed = the image's position in the sorted
list) at a few severities. Prints a markdown table and writes ``rain-comparison.png`` (crops: Rain100L
input | ours at the best-matching severity | both rain layers, ×3) into ``--out``.

Usage:
    PYTHONPATH=src python scripts/compare_rain.py --data ../shared/data/derain/Rain100L --out docs/
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from uir.degradations import apply, draw
from uir.degradations.functional import gaussian_blur, luma

COVER = 0.05  # R above this counts as rain
ACF_REACH = 64  # px, how far the autocorrelation is followed
CROP = (128, 192)  # (h, w) of each crop in the picture
COLUMNS = ("Rain100L input", "ours", "Rain100L R x3", "ours R x3")


def load(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / max(F.mse_loss(a, b).item(), 1e-12))


def ycbcr_y(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's rgb2ycbcr Y in [0, 1] (16–235 range), as derain papers report PSNR."""
    w = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (x * w).sum(dim=1, keepdim=True)) / 255.0


def autocorrelation(r: torch.Tensor) -> torch.Tensor:
    """R's normalized autocorrelation ``(2H, 2W)``, zero lag at ``(H, W)`` (zero-padded: no wrap-around)."""
    x = r[0, 0] - r.mean()
    h, w = x.shape
    spec = torch.fft.rfft2(x, s=(2 * h, 2 * w))
    acf = torch.fft.fftshift(torch.fft.irfft2(spec.abs() ** 2, s=(2 * h, 2 * w)))
    return acf / acf[h, w].clamp_min(1e-12)


def dominant_angle(acf: torch.Tensor) -> float:
    """The streaks' angle (degrees from vertical, positive leaning ``\\``): main axis of the ACF's ridge.

    Second moments of the autocorrelation above 0.25 within ``ACF_REACH``; unlike a structure tensor on the
    pixels, this is not biased by the staircase of thin, aliased lines.
    """
    h, w = acf.shape[0] // 2, acf.shape[1] // 2
    k = min(ACF_REACH, h - 1, w - 1)
    win = acf[h - k : h + k + 1, w - k : w + k + 1]
    o = torch.arange(-k, k + 1, dtype=torch.float32)
    y, x = torch.meshgrid(o, o, indexing="ij")
    weight = (win - 0.25).clamp_min(0) * (y**2 + x**2 <= k**2)
    cyy, cxx, cxy = (weight * y * y).sum(), (weight * x * x).sum(), (weight * x * y).sum()
    return math.degrees(0.5 * math.atan2(2 * cxy.item(), (cyy - cxx).item()))


def spread(r: torch.Tensor, angle: float) -> float:
    """Circular standard deviation (degrees) of local streak orientations about ``angle``, on rain pixels.

    Local orientations come from the structure tensor of R smoothed by σ = 1 px (less staircase bias),
    averaged over σ = 2 px and weighted by gradient energy.
    """
    gy, gx = torch.gradient(gaussian_blur(r, 1.0)[0, 0])
    local = gaussian_blur(torch.stack([gx * gx, gy * gy, gx * gy])[None], 2.0)[0]
    phi = 0.5 * torch.atan2(2 * local[2], local[0] - local[1])  # across the streak
    streak = -phi  # our angle convention: direction (sin a, cos a) is perpendicular to (cos phi, sin phi)
    weight = (local[0] + local[1]) * (r[0, 0] > COVER)
    z = (weight * torch.exp(2j * (streak - math.radians(angle)))).sum() / weight.sum().clamp_min(1e-12)
    return math.degrees(0.5 * math.sqrt(max(-2 * math.log(max(abs(z.item()), 1e-6)), 0.0)))


def acf_extent(acf: torch.Tensor, angle: float) -> tuple[float, float]:
    """Full width at half maximum of the autocorrelation across and along ``angle`` (px): width and length.

    For a streak with a box profile the FWHM of its autocorrelation equals its extent.
    """
    h, w = acf.shape[0] // 2, acf.shape[1] // 2
    t = torch.arange(ACF_REACH + 1, dtype=torch.float32)
    a = math.radians(angle)
    out = []
    for ux, uy in ((math.cos(a), -math.sin(a)), (math.sin(a), math.cos(a))):
        gx = (w + t * ux + 0.5) / w - 1
        gy = (h + t * uy + 0.5) / h - 1
        grid = torch.stack([gx, gy], dim=-1).view(1, 1, -1, 2)
        prof = F.grid_sample(acf[None, None], grid, align_corners=False)[0, 0, 0]
        below = torch.nonzero(prof < 0.5)
        if len(below) == 0:
            out.append(float(2 * ACF_REACH))
            continue
        k = int(below[0])  # interpolate the half-maximum crossing between k − 1 and k
        frac = (prof[k - 1] - 0.5) / (prof[k - 1] - prof[k])
        out.append(2 * (k - 1 + frac.item()))
    return out[0], out[1]


def statistics(lq: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
    r = luma(lq) - luma(gt)
    covered = r > COVER
    acf = autocorrelation(r)
    angle = dominant_angle(acf)
    width, length = acf_extent(acf, angle)
    return {
        "mean R": r.mean().item(),
        "coverage %": 100 * covered.float().mean().item(),
        "brightness": r[covered].mean().item() if covered.any() else 0.0,
        "abs angle": abs(angle),
        "angle": angle,
        "spread": spread(r, angle),
        "width": width,
        "length": length,
        "PSNR RGB": psnr(lq, gt),
        "PSNR Y": psnr(ycbcr_y(lq), ycbcr_y(gt)),
    }


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "angle"}
    out["angle sd"] = float(np.std([r["angle"] for r in rows]))
    return out


def rain(gt: torch.Tensor, severity: float, seed: int) -> torch.Tensor:
    return apply(gt, draw("rain-streaks", severity, seed))


def match_score(ours: dict[str, float], ref: dict[str, float]) -> float:
    """Relative distance on coverage, brightness and PSNR (the orientation is random either way)."""
    keys = ("coverage %", "brightness", "PSNR RGB")
    return sum(abs(ours[k] - ref[k]) / abs(ref[k]) for k in keys)


def table(results: dict[str, dict[str, float]]) -> str:
    cols = ("mean R", "coverage %", "brightness", "abs angle", "angle sd", "spread", "width", "length")
    cols += ("PSNR RGB", "PSNR Y")
    lines = ["| source | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, stats in results.items():
        cells = [f"{stats[c]:.3f}" if c in ("mean R", "brightness") else f"{stats[c]:.2f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def crop(x: torch.Tensor) -> np.ndarray:
    h, w = x.shape[-2:]
    top, left = max(0, (h - CROP[0]) // 2), max(0, (w - CROP[1]) // 2)
    x = x[0, :, top : top + CROP[0], left : left + CROP[1]].expand(3, -1, -1)
    return (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def picture(pairs: list[tuple[Path, Path]], picks: list[int], severity: float, path: Path) -> None:
    rows = []
    for i in picks:
        lq, gt = load(pairs[i][0]), load(pairs[i][1])
        ours = rain(gt, severity, i)
        maps = [(3 * (luma(y) - luma(gt))) for y in (lq, ours)]
        rows.append(np.concatenate([crop(t) for t in (lq, ours, *maps)], axis=1))
    grid = np.concatenate(rows, axis=0)
    header = Image.new("RGB", (grid.shape[1], 18), "white")
    text = ImageDraw.Draw(header)
    for k, name in enumerate(COLUMNS):
        label = f"ours, s={severity}" if name == "ours" else name
        text.text((k * CROP[1] + 4, 3), label, fill="black")
    sheet = Image.new("RGB", (grid.shape[1], grid.shape[0] + 18))
    sheet.paste(header, (0, 0))
    sheet.paste(Image.fromarray(grid), (0, 18))
    sheet.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/derain/Rain100L"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--severities", type=float, nargs="+", default=(0.3, 0.5, 0.7))
    parser.add_argument("--limit", type=int, default=0, help="use only the first N pairs (0: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on small images)")
    args = parser.parse_args()
    if not (args.data / "lq").is_dir() or not (args.data / "gt").is_dir():
        sys.exit(f"error: {args.data} has no lq/ and gt/ folders; pass --data /path/to/Rain100L")
    names = sorted((p.name for p in (args.data / "gt").iterdir()), key=lambda n: (len(n), n))
    pairs = [(args.data / "lq" / n, args.data / "gt" / n) for n in names if (args.data / "lq" / n).is_file()]
    pairs = pairs[: args.limit] if args.limit > 0 else pairs
    if not pairs:
        sys.exit(f"error: no image pairs with the same name in {args.data}/lq and {args.data}/gt")
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    results = {"Rain100L": summarize([statistics(load(lq), load(gt)) for lq, gt in pairs])}
    for s in args.severities:
        rows = [statistics(rain(load(gt), s, i), load(gt)) for i, (_, gt) in enumerate(pairs)]
        results[f"ours s={s}"] = summarize(rows)
    best = min(args.severities, key=lambda s: match_score(results[f"ours s={s}"], results["Rain100L"]))
    print(f"{len(pairs)} pairs from {args.data}; R = luma(lq) - luma(gt), covered where R > {COVER}")
    print(table(results))
    print(f"\nbest match: s={best}")
    args.out.mkdir(parents=True, exist_ok=True)
    picks = sorted({round(k * (len(pairs) - 1) / 3) for k in range(4)})
    picture(pairs, picks, best, args.out / "rain-comparison.png")
    print(f"wrote {args.out / 'rain-comparison.png'}")


if __name__ == "__main__":
    main()
