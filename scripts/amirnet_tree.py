"""Draw the degradation tree an AMIRNet run has grown, from its ``last.ckpt``, into a PNG.

One row per level, one panel per node under its parent: a few of the node's reservoir patches (degraded), how
many images it holds and the share of each true degradation type among them; each level's title gives its
purity (the share of images whose node's most common type is theirs). The true types only measure the tree:
it was grown without them. Patches whose type is unknown (``-1``) count in the sizes, not in the shares.

Usage:
    PYTHONPATH=src python scripts/amirnet_tree.py runs/nafnet_amirnet [--out tree.png] [--samples 3]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from uir import io
from uir.checkpoint import load_checkpoint
from uir.config import config_from_dict
from uir.errors import UirError
from uir.methods import build_method
from uir.methods.amirnet import AMIRNet, purity
from uir.models.backbones import create_backbone
from uir.models.backbones.amirnet import LEVEL_NODES

THUMB, GAP, TEXT_LINES, FONT = 56, 8, 5, 12
BACKGROUND, INK, EDGE = (255, 255, 255), (20, 20, 20), (150, 150, 150)


@dataclass
class Node:
    """One node of the tree: its level and index, its members' patches and true-type counts."""

    level: int
    index: int
    patches: list[torch.Tensor]
    size: int
    shares: list[tuple[str, float]]


def load_method(run_dir: Path) -> tuple[AMIRNet, list[str]]:
    """The run's AMIRNet method with its checkpointed weights and tree, and the run's class names."""
    state = load_checkpoint(run_dir / "last.ckpt")
    cfg = config_from_dict(state["config"], where=f"{run_dir}/last.ckpt")
    if cfg.method.name != "amirnet":
        raise UirError(f"{run_dir} is a {cfg.method.name!r} run; this script draws AMIRNet trees")
    backbone = create_backbone(cfg.model.backbone, **cfg.model.overrides)
    method = build_method(backbone, cfg.method)
    method.load_state_dict({**{f"backbone.{k}": v for k, v in state["backbone"].items()}, **state["method"]})
    return method, list(state["labels"])


def tree_nodes(method: AMIRNet, names: list[str], samples: int) -> list[list[Node]]:
    """Per grown level, its nodes (see :class:`Node`), from the reservoir's pseudo-labels."""
    count = method.filled
    nodes_per_level, truth = method.tree_labels[:count], method.true_labels[:count]
    levels = []
    for level in range(method.depth):
        row = []
        for index in range(LEVEL_NODES[level]):
            members = (nodes_per_level[:, level] == index).nonzero().flatten()
            known = truth[members][truth[members] >= 0]
            counts = known.bincount(minlength=len(names)).tolist() if len(known) else []
            shares = sorted(((names[i], c / len(known)) for i, c in enumerate(counts) if c), key=lambda s: -s[1])
            patches = [method.reservoir_lq[i].float() for i in members[:samples].tolist()]
            row.append(Node(level, index, patches, len(members), shares))
        levels.append(row)
    return levels


def draw_tree(levels: list[list[Node]], purities: list[float], samples: int) -> Image.Image:
    """The picture: levels top to bottom, each node centred under its parent, edges parent → child."""
    font = ImageFont.load_default(size=FONT)
    panel_w = max(samples * (THUMB + 2) + GAP, 150)
    panel_h = THUMB + GAP + TEXT_LINES * (FONT + 3)
    title_h = FONT + 2 * GAP
    row_h = title_h + panel_h + 2 * GAP
    width = max(len(row) for row in levels) * (panel_w + GAP) + GAP
    sheet = Image.new("RGB", (width, row_h * len(levels) + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    centres: dict[tuple[int, int], tuple[int, int]] = {}
    for level, row in enumerate(levels):
        top = level * row_h + GAP
        score = "n/a" if purities[level] != purities[level] else f"{purities[level]:.2f}"
        draw.text((GAP, top), f"level {level}: {len(row)} node(s), purity {score}", fill=INK, font=font)
        for node in row:
            x_centre = int((node.index + 0.5) * width / len(row))
            left, y = x_centre - panel_w // 2, top + title_h
            centres[(level, node.index)] = (x_centre, y)
            if level:
                px, py = centres[(level - 1, node.index // 2)]
                draw.line([(px, py + panel_h), (x_centre, y)], fill=EDGE, width=2)
            draw.rectangle([left, y, left + panel_w, y + panel_h], outline=EDGE)
            for k, patch in enumerate(node.patches):
                thumb = io.to_pil(patch.clamp(0, 1)).resize((THUMB, THUMB), Image.Resampling.BICUBIC)
                sheet.paste(thumb, (left + GAP // 2 + k * (THUMB + 2), y + GAP // 2))
            lines = [f"node {level}.{node.index}: {node.size} image(s)"]
            lines += [f"{name} {share:.0%}" for name, share in node.shares[: TEXT_LINES - 1]]
            draw.multiline_text((left + GAP // 2, y + THUMB + GAP), "\n".join(lines), fill=INK, font=font)
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run folder (holds last.ckpt)")
    parser.add_argument("--out", type=Path, help="the PNG (default: RUN/tree.png)")
    parser.add_argument("--samples", type=int, default=3, help="patches shown per node")
    args = parser.parse_args(argv)
    try:
        method, names = load_method(args.run)
    except UirError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    levels = tree_nodes(method, names, args.samples)
    count = method.filled
    purities = [purity(method.tree_labels[:count, level], method.true_labels[:count]) for level in range(len(levels))]
    out = args.out or args.run / "tree.png"
    draw_tree(levels, purities, args.samples).save(out)
    print(f"{out}: {len(levels)} level(s), purity per level " + ", ".join(f"{p:.2f}" for p in purities))
    return 0


if __name__ == "__main__":
    sys.exit(main())
