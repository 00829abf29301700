"""Accuracy per degradation type of a MaskDCPT classifier on held-out synthetic images, and its confusion matrix.

    python scripts/classifier_report.py runs/nafnet_maskdcpt_pretrain --data ../shared/data/train_clean/CBSD432 \\
        --files 400 432 --per-type 16 --out docs/maskdcpt-confusion.png

Each type of the classifier's classes that the engine makes is drawn ``--per-type`` times (severities from the
"all" mix's range, seeded) on the clean images ``--files`` of ``--data`` (held out from training), centre 256² crops
at full resolution; the classifier sees the whole unmasked crop. Prints a Markdown table (accuracy per type, and
the mean) and draws the row-normalised confusion matrix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from uir.data.datasets import SyntheticDataset
from uir.degradations import TYPES, Mix, get_mix
from uir.methods import load_classifier


def confusion(classifier, labels: list[str], data: Path, files: tuple[int, int], per_type: int) -> torch.Tensor:  # noqa: ANN001
    """``(T, C)`` counts: rows are the true types the engine makes, columns the classifier's classes."""
    base = get_mix("all")
    made = [name for name in labels if name in TYPES]
    counts = torch.zeros(len(made), len(labels))
    for row, name in enumerate(made):
        single = Mix(f"report:{name}", {name: 1.0}, base.severity, base.overrides)
        dataset = SyntheticDataset(data, single, crop=256, seed=1234, length=per_type, files=files)
        for i in range(len(dataset)):
            probs = classifier.classify(dataset[i]["lq"][None])
            counts[row, labels.index(max(probs, key=probs.get))] += 1
        print(f"  {name}: {counts[row, labels.index(name)] / per_type:.2f}", flush=True)
    return counts


def draw(counts: torch.Tensor, rows: list[str], cols: list[str], path: Path, cell: int = 28) -> None:
    """The row-normalised matrix as a heat map with the type names and per-cell percentages."""
    font = ImageFont.load_default(size=12)
    left = int(max(font.getlength(n) for n in rows)) + 12
    top = int(max(font.getlength(n) for n in cols)) + 12
    image = Image.new("RGB", (left + cell * len(cols) + 8, top + cell * len(rows) + 8), "white")
    pen = ImageDraw.Draw(image)
    share = counts / counts.sum(1, keepdim=True).clamp(min=1)
    for c, name in enumerate(cols):
        label = Image.new("RGB", (top, cell), "white")
        ImageDraw.Draw(label).text((4, cell // 2), name, fill="black", font=font, anchor="lm")
        image.paste(label.rotate(90, expand=True), (left + c * cell, 0))
    for r, name in enumerate(rows):
        pen.text((left - 6, top + r * cell + cell // 2), name, fill="black", font=font, anchor="rm")
        for c in range(len(cols)):
            value = float(share[r, c])
            shade = int(255 * (1 - value))
            box = (left + c * cell, top + r * cell, left + (c + 1) * cell - 1, top + (r + 1) * cell - 1)
            pen.rectangle(box, fill=(shade, shade, 255))
            if value >= 0.05:
                colour = "white" if value > 0.5 else "black"
                pen.text(
                    (box[0] + cell // 2, box[1] + cell // 2), f"{value * 100:.0f}", fill=colour, font=font, anchor="mm"
                )
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("classifier", help="a classifier file (export_classifier) or a MaskDCPT run folder")
    parser.add_argument("--data", type=Path, required=True, help="a folder of clean images")
    parser.add_argument("--files", type=int, nargs=2, default=(400, 432), metavar=("START", "STOP"))
    parser.add_argument("--per-type", type=int, default=16)
    parser.add_argument("--out", type=Path, help="the confusion-matrix picture (.png)")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    labels = list(classifier.labels)
    counts = confusion(classifier, labels, args.data, tuple(args.files), args.per_type)
    rows = [name for name in labels if name in TYPES]
    accuracy = {name: float(counts[i, labels.index(name)]) / args.per_type for i, name in enumerate(rows)}
    print("\n| type | accuracy |\n|---|---|")
    for name, value in accuracy.items():
        print(f"| {name} | {value:.2f} |")
    print(f"| **mean** | **{sum(accuracy.values()) / len(accuracy):.2f}** |")
    if args.out:
        draw(counts, rows, labels, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
