"""How far the blind severity estimates are off, on held-out photos (issue 20: noise σ within ±3, JPEG quality ±10).

    python scripts/severity_report.py --data-root ../shared/data            # the 68 CBSD68 photos
    python scripts/severity_report.py --data-root ../shared/data --images 10

Every photo gets Gaussian noise at each σ (clipped, 8-bit, a seed per photo and σ) and, separately, a real libjpeg
encode at each quality with a random 8×8 grid offset (as a crop of a JPEG has); ``uir.metrics.estimates`` then
estimates σ and quality blind. Prints, per level: the mean error, the largest error and the share within the
tolerance; then the same over all levels. The estimators learn nothing, so any photo is held out; CBSD68 is used
because the benchmarks use it. (Its photos were themselves JPEGs near quality 95: the "clean" row shows what a
clean photo reads as.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import zlib
from pathlib import Path

import torch

from uir import io
from uir.degradations.compression import jpeg_compress
from uir.metrics.estimates import jpeg_quality, noise_sigma

SIGMAS = (5, 10, 15, 25, 35, 50)
QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def summary(label: str, errors: list[float], tolerance: float) -> str:
    finite = [e for e in errors if e == e]
    within = sum(abs(e) <= tolerance for e in finite) / len(errors)
    worst = max((abs(e) for e in finite), default=float("nan"))
    missed = len(errors) - len(finite)
    mean = statistics.fmean(finite) if finite else float("nan")
    extra = f", {missed} not found" if missed else ""
    return f"{label:>8}: mean error {mean:+6.2f}, largest {worst:5.2f}, within ±{tolerance:g}: {within:6.1%}{extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("UIR_DATA_ROOT", "../shared/data")))
    parser.add_argument("--images", type=int, default=68)
    args = parser.parse_args(argv)
    folder = args.data_root / "denoise" / "CBSD68"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")[: args.images] if folder.is_dir() else []
    if not files:
        raise SystemExit(f"severity_report: no CBSD68 photos in {folder}")
    torch.set_num_threads(1)
    clean_sigma, clean_quality = [], []
    sigma_errors: dict[int, list[float]] = {s: [] for s in SIGMAS}
    quality_errors: dict[int, list[float]] = {q: [] for q in QUALITIES}
    for path in files:
        photo = io.read_image(path).image
        clean_sigma.append(float(noise_sigma(photo)))
        clean_quality.append(float(jpeg_quality(photo)))
        for sigma in SIGMAS:
            generator = torch.Generator().manual_seed(zlib.crc32(f"{path.name}:{sigma}".encode()))
            noisy = (photo + torch.randn(photo.shape, generator=generator) * sigma / 255).clamp(0, 1)
            sigma_errors[sigma].append(float(noise_sigma((noisy * 255).round() / 255)) - sigma)
        for quality in QUALITIES:
            seed = zlib.crc32(f"{path.name}:q{quality}".encode())
            offset = (seed % 8, (seed // 8) % 8)
            quality_errors[quality].append(float(jpeg_quality(jpeg_compress(photo, quality, offset=offset))) - quality)
    print(f"{len(files)} CBSD68 photos from {folder}")
    read = [q for q in clean_quality if q == q]
    qualities = f"quality {statistics.median(read):.0f} (median of {len(read)})" if read else "no JPEG quality"
    print(f"the photos as they are read as: σ {statistics.median(clean_sigma):.2f} (median), {qualities}")
    print("noise σ (8-bit units):")
    for sigma, errors in sigma_errors.items():
        print(summary(f"σ {sigma}", errors, 3))
    print(summary("all", [e for v in sigma_errors.values() for e in v], 3))
    print("JPEG quality (libjpeg, 4:2:0):")
    for quality, errors in quality_errors.items():
        print(summary(f"q {quality}", errors, 10))
    print(summary("all", [e for v in quality_errors.values() for e in v], 10))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
