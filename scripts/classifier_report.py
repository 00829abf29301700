"""Accuracy per degradation type of a MaskDCPT classifier on held-out synthetic images, and its confusion matrix.

    python scripts/classifier_report.py runs/nafnet_maskdcpt_pretrain --data ../shared/data/train_clean/CBSD432 \\
        --files 400 432 --per-type 16 --out docs/maskdcpt-confusion.png

Each type of the classifier's classes that the engine makes is drawn ``--per-type`` times (severities from the
``--mix`` mix's range, default "all", seeded) on the clean images ``--files`` of ``--data`` (held out from
training), centre 256² crops at full resolution; the classifier sees the whole unmasked crop. A classifier with a
``clean`` class is also shown the clean crops themselves (row ``clean``). Prints a Markdown table (accuracy per
type, and the mean) and draws the row-normalised confusion matrix. With ``--benchmark``, it also scores the inputs
of a ``uir eval`` protocol.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from uir.data.datasets import SyntheticDataset
from uir.degradations import TYPES, Mix, get_mix
from uir.methods import load_classifier

CLEAN = "clean"


def shown(labels: list[str]) -> list[str]:
    """The classes a report can show images of: the types the engine makes, and ``clean``."""
    return [name for name in labels if name in TYPES or name == CLEAN]


def confusion(  # noqa: PLR0913
    classifier,  # noqa: ANN001
    labels: list[str],
    data: Path,
    files: tuple[int, int],
    per_type: int,
    mix: str = "all",
) -> torch.Tensor:
    """``(T, C)`` counts: rows are the true types the engine makes (and clean), columns the classifier's classes;
    each type drawn with ``mix``'s severity range and parameter overrides."""
    base = get_mix(mix)
    made = shown(labels)
    counts = torch.zeros(len(made), len(labels))
    for row, name in enumerate(made):
        # A clean row draws crops like the others (any type: only the clean crop is shown).
        single = Mix(f"report:{name}", {"noise" if name == CLEAN else name: 1.0}, base.severity, base.overrides)
        dataset = SyntheticDataset(data, single, crop=256, seed=1234, length=per_type, files=files)
        for i in range(len(dataset)):
            sample = dataset[i]
            probs = classifier.classify(sample["gt" if name == CLEAN else "lq"][None])
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


def benchmark_table(classifier, protocol: str, data_root: Path, cache: Path, limit: int | None) -> None:  # noqa: ANN001
    """Per set of a benchmark protocol: how often the top class of an input is the set's task, and, for sets with
    a clean reference and a classifier with a ``clean`` class, how often the reference is called clean. Like
    ``uir inspect``, the classifier sees the centre ``CROP_SIDE``² crop at full resolution."""
    from uir.benchmarks import get_protocol, iter_samples
    from uir.inspection import CROP_SIDE

    def top(image: torch.Tensor) -> str:
        h, w = image.shape[-2:]
        y, x = max(0, (h - CROP_SIDE) // 2), max(0, (w - CROP_SIDE) // 2)
        probs = classifier.classify(image[..., y : y + CROP_SIDE, x : x + CROP_SIDE])
        return max(probs, key=probs.get)

    print(f"\n| {protocol} set | images | top class = the set's task | reference called clean | most common answer |")
    print("|---|---|---|---|---|")
    for test_set in get_protocol(protocol).sets:
        root = test_set.locate(data_root)
        if root is None:
            print(f"| {test_set.name} | missing | | | |")
            continue
        answers, clean = [], []
        for sample in iter_samples(test_set, root, cache, limit):
            answers.append(top(sample.lq))
            if sample.gt is not None and CLEAN in classifier.labels:
                clean.append(top(sample.gt) == CLEAN)
        hit = sum(a == test_set.task for a in answers) / len(answers)
        common = max(set(answers), key=answers.count)
        called = f"{sum(clean) / len(clean):.2f}" if clean else "–"
        print(f"| {test_set.name} | {len(answers)} | {hit:.2f} | {called} | {common} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("classifier", help="a classifier file (export_classifier) or a MaskDCPT run folder")
    parser.add_argument("--data", type=Path, required=True, help="a folder of clean images")
    parser.add_argument("--files", type=int, nargs=2, default=(400, 432), metavar=("START", "STOP"))
    parser.add_argument("--per-type", type=int, default=16)
    parser.add_argument("--mix", default="all", help="the mix whose severity range and overrides draw each type")
    parser.add_argument("--out", type=Path, help="the confusion-matrix picture (.png)")
    parser.add_argument("--benchmark", help="also score the inputs of this `uir eval` protocol (e.g. uir-5d)")
    parser.add_argument("--data-root", type=Path, help="the benchmark's data root (as uir eval's)")
    parser.add_argument("--cache", type=Path, default=Path("runs/eval-cache"), help="where synthetic sets are cached")
    parser.add_argument("--limit", type=int, help="at most N images per benchmark set")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier)
    labels = list(classifier.labels)
    if args.benchmark:
        benchmark_table(classifier, args.benchmark, args.data_root, args.cache, args.limit)
    counts = confusion(classifier, labels, args.data, tuple(args.files), args.per_type, args.mix)
    rows = shown(labels)
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
