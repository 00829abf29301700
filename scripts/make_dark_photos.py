"""Dark clean photos for issue 24's tone check: CBSD68 at a lower exposure, nothing to repair.

    python scripts/make_dark_photos.py --data-root ../shared/data --out runs/dark
    uir eval --model default --task auto --pairs runs/dark/x0.6/lq runs/dark/x0.6/gt --out runs/dark-eval

writes ``OUT/x<e>/lq/`` and ``OUT/x<e>/gt/`` for each exposure ``e`` (default 0.8 and 0.6), the same 8-bit PNG in
both: a restorer's PSNR against ``gt`` is its distance from its own input, and ``uir eval`` prints the
mean-luminance ratio of its outputs to their inputs. ``--space linear`` (the default) scales the light, as a
shorter exposure does (sRGB decoded to linear, scaled, encoded); ``--space srgb`` scales the pixel values, which
darkens more (CBSD68's mean luminance 0.43 -> 0.34 at linear x0.6, -> 0.26 at sRGB x0.6).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from uir import io
from uir.degradations.functional import scale_exposure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"), help="holds denoise/CBSD68")
    p.add_argument("--out", type=Path, required=True, help="where OUT/x<e>/{lq,gt}/ go")
    p.add_argument("--exposure", type=float, nargs="+", default=[0.8, 0.6], help="exposure factors (default 0.8 0.6)")
    p.add_argument("--space", choices=("linear", "srgb"), default="linear", help="scale the light or the pixel values")
    args = p.parse_args(argv)
    if args.data_root is None or not (args.data_root / "denoise" / "CBSD68").is_dir():
        raise SystemExit(f"make_dark_photos: no denoise/CBSD68 under {args.data_root} (--data-root)")
    for e in args.exposure:
        if not 0 < e <= 1:
            raise SystemExit(f"make_dark_photos: an exposure factor must be in (0, 1], got {e}")
    photos = io.list_images([args.data_root / "denoise" / "CBSD68"])
    for e in args.exposure:
        folder = args.out / f"x{e:g}"
        for path in photos:
            dark = scale_exposure(io.read_image(path).image, e, args.space)
            for side in ("lq", "gt"):
                io.write_image(folder / side / f"{path.stem}.png", dark, overwrite=True)
        print(f"{folder}: {len(photos)} photos at exposure x{e:g} ({args.space})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
