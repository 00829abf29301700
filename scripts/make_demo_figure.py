"""Draw the README's before/after figure from `make demo`'s output: per photo, damaged | restored | clean, PSNR.

make demo && python scripts/make_demo_figure.py docs/demo-restore.jpg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uir import io
from uir.metrics import psnr
from uir.viz import labelled_grid, shrink

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the figure to write (.jpg or .png)")
    parser.add_argument("--demo", type=Path, default=ROOT / "out" / "demo", help="make demo's output folder")
    parser.add_argument("--side", type=int, default=360, help="long side of each cell in pixels")
    args = parser.parse_args()
    rows, labels = [], []
    for record_path in sorted((args.demo / "degraded").glob("*.json")):
        record = json.loads(record_path.read_text())
        name = record_path.stem
        clean = io.read_image(next((ROOT / "examples" / "clean").glob(f"{name}.*"))).image
        damaged = io.read_image(args.demo / "degraded" / f"{name}.png").image
        restored = io.read_image(args.demo / "restored" / f"{name}.png").image
        before, after = float(psnr(damaged, clean)[0]), float(psnr(restored, clean)[0])
        rows.append([shrink(x, args.side) for x in (damaged, restored, clean)])
        labels.append(f"{name}\n{record['type']} s={record['severity']:g}\n{before:.2f} -> {after:.2f} dB")
        print(f"{name}: {record['type']} s={record['severity']:g}: PSNR {before:.2f} -> {after:.2f} dB")
    figure = labelled_grid(rows, labels, ["damaged", "restored (default model)", "clean"])
    io.write_image(args.out, io.to_tensor(figure), overwrite=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
