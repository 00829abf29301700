"""Write docs/degradations.md from the registry, so the documented severity mapping is the implemented one.

Usage: python scripts/make_degradation_docs.py docs/degradations.md   (or `make docs`)
A test checks that the committed file equals what this script writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from uir import degradations as D

INTRO = """# The degradation space

uir synthesizes the 19 degradation types of the UIR-2.5M data set: 14 single and 5 mixed. Every type takes a
severity `s` in [0, 1]: `s = 0` is (near) identity and damage grows monotonically with `s` (tested for every type:
PSNR to the clean image falls over s = 0.2, 0.5, 0.9). Parameters that set the *strength* follow `s` by the
mapping below; parameters that set the *look* (angles, kernel shapes, positions, colours) are drawn at random from
the seed. Discrete "levels" are severities 0.0, 0.1, ..., 1.0: 11 per type, 209 in all.

Every application returns a record — type (the label), severity, seed and every drawn parameter — that
serializes to JSON and replays to the same pixels on the same device:

```python
import torch
from uir import degradations as D

clean = torch.rand(1, 3, 256, 256)                       # (B, 3, H, W) in [0, 1], any device
lq, record = D.degrade(clean, "haze", severity=0.6, seed=1)
record.to_json()                                          # the label of this sample
D.apply(clean, D.draw("haze", 0.6, seed=1))               # draw parameters, then apply them: the same pixels
D.draw("noise", 0.3, seed=0, overrides={"noise": {"kind": "gaussian", "sigma": 25.0}})
```

The same seed gives byte-identical output on the same device (the CPU and a GPU draw different random
streams). Each record's seed feeds two streams: a CPU one that draws the parameters and one on the tensor's
device for per-pixel randomness (noise, rain seeds).

From the command line: `uir degrade --list` prints this table; `uir degrade IMAGE -t TYPE -s S -o OUT` applies
one type and writes the record beside the output; `uir degrade --sheet IMAGE -o sheet.png` draws the contact
sheet below (`make docs` regenerates it and this page).

![every type at severities 0.1 to 0.9](degradation-sheet.jpg)
"""


def op_table(op: D.Op) -> list[str]:
    rows = [f"| `{r.name}` | {r.at_zero} | {r.at_one} | {r.unit} | {r.mapping} |" for r in op.ranges]
    return ["| parameter | s = 0 | s = 1 | unit | mapping |", "|---|---|---|---|---|", *rows]


def render() -> str:
    lines = [
        INTRO,
        "## The 19 types",
        "",
        "| type | family | ops (in order) | what it models |",
        "|---|---|---|---|",
    ]
    for name, kind in D.TYPES.items():
        ops = " → ".join(f"{o} ×{v:g}" if v != 1 else o for o, v in zip(kind.ops, kind.op_severities(1.0), strict=True))
        lines.append(f"| `{name}` | {kind.family} | {ops} | {kind.summary} |")
    lines += [
        "",
        "Mixed types apply their ops in order; `op ×f` means that op runs at severity `f·s`, so that the mixture",
        "at s = 1 is hard but recoverable (noise after under-exposure, for one, would otherwise drown the image).",
        "",
    ]
    lines += ["## Severity mapping of every op", ""]
    for op in D.OPS.values():
        lines += [f"### `{op.name}` ({op.family})", "", op.summary, "", *op_table(op), ""]
    lines += [
        "## Mixes",
        "",
        "Named distributions for `uir degrade -t random --mix NAME` and synthetic training data.",
        "",
    ]
    lines += ["| mix | types | severity range | fixed parameters |", "|---|---|---|---|"]
    for mix in D.MIXES.values():
        fixed = "; ".join(f"{t}: {dict(v)}" for t, v in mix.overrides.items()) or "–"
        lo, hi = mix.severity
        lines.append(f"| `{mix.name}` | {', '.join(mix.weights)} | {lo:g}–{hi:g} | {fixed} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the markdown file to write")
    args = parser.parse_args()
    args.out.write_text(render())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
