"""The learned parts of an inspection as options, one wording for ``uir inspect``, ``uir serve`` and ``uir restore``."""

from __future__ import annotations

import argparse


def add_part_arguments(p: argparse.ArgumentParser, *, classifier_only: bool = False) -> None:
    """``--classifier`` (default: the shipped one), and unless ``classifier_only`` ``--tree`` and ``--perceiver``."""
    p.add_argument(
        "--classifier",
        default="default",
        help="a classifier or analysis file, or a MaskDCPT run folder (default: the shipped analysis; classifier-5d: "
        "its bare classifier; none: no classifier)",
    )
    if classifier_only:
        return
    p.add_argument("--tree", help="an AMIRNet model (nafnet-ftb-* weights): the image's path through its tree")
    p.add_argument("--perceiver", help="a quality perceiver file: the probabilities of the low, medium, high tiers")
