"""Can the analysis' features tell real camera grain from a clean photo? (issue 24: a negative result.)

    python benchmarks/analysis_grain_probe.py --data-root ../shared/data

A binary logistic layer (``uir.methods.analysis.fit_logistic``) on the shipped analysis' features
(``analysis_features`` of ``classifier-5d``: encoder statistics, logits, measured cues) is fitted on synthetic 320²
crops of CBSD432 (files 0-359; 360-399 choose the L2 penalty): *grain* is the engine's ``camera-noise`` with the
companion's training parameters (severity 0.2-0.55, on sharp and on softened photos) and white noise σ 3-12;
*not grain* is clean photos as they are, softened, or saved as JPEG (quality 70-95), motion blur, rain, haze and low
light (severity 0.2-1) and white noise σ 20-50. Prints the held-out accuracy per kind, then per test set the share of
photos it calls grainy (p >= 0.5 and >= 0.8; the analysis' centre crop): PolyU's real grain scores like clean CBSD68,
so the route decides by the grain the companion removes instead (``uir.api.route``, ``residual_grain``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from train_analysis import _jpeg, _soft  # noqa: E402  (the analysis' own clean variants)

from uir.benchmarks import pairs_protocol, sampled_sets  # noqa: E402
from uir.data.datasets import SyntheticDataset  # noqa: E402
from uir.degradations import DegradationRecord, Mix, apply  # noqa: E402
from uir.inspection import CROP_SIDE, center_crop  # noqa: E402
from uir.methods import load_classifier  # noqa: E402
from uir.methods.analysis import analysis_features, fit_logistic  # noqa: E402

CAMERA = (
    {"nr": 1.0, "quality": 75, "chroma_nr": 6.0},
    {"nr": 1.3, "quality": 90, "chroma_nr": 6.0},
    {"nr": 0.7, "quality": 0, "chroma_nr": 6.0},
)
CROP = 320


def draw(data: Path, files: tuple[int, int], n: int, seed: int) -> list[tuple[torch.Tensor, int, str]]:
    """``(crop, 1 if grain else 0, kind)``: ``n`` crops of each kind (3n of the clean ones)."""
    g = torch.Generator().manual_seed(seed)
    out: list[tuple[torch.Tensor, int, str]] = []

    def crops(name: str, severity: tuple[float, float], key: int, overrides: dict | None = None, count: int = n):
        mix = Mix(f"probe:{name}:{key}", {name: 1.0}, severity, overrides or {})
        dataset = SyntheticDataset(data, mix, crop=CROP, seed=seed * 100 + key, files=files)
        dataset.length = max(count, len(dataset))
        return [dataset[i] for i in torch.randperm(len(dataset), generator=g)[:count].tolist()]

    for k, params in enumerate(CAMERA):
        out += [
            (s["lq"], 1, f"camera noise {k}")
            for s in crops("camera-noise", (0.2, 0.55), k, {"camera-noise": {"camera-noise": params}})
        ]
    for s in crops("camera-noise", (0.2, 0.55), 7, {"camera-noise": {"camera-noise": CAMERA[0]}}):
        soft = _soft(s["gt"], g)[None]
        out.append((apply(soft, DegradationRecord.from_dict(s["record"]))[0], 1, "camera noise, soft photo"))
    for s in crops("noise", (0.0, 1.0), 8):
        sigma = 3 + 9 * float(torch.rand((), generator=g))
        out.append(((s["gt"] + torch.randn(s["gt"].shape, generator=g) * sigma / 255).clamp(0, 1), 1, "white σ 3-12"))
    for k, name in enumerate(("motion-blur", "rain-streaks", "haze", "low-light")):
        out += [(s["lq"], 0, name) for s in crops(name, (0.2, 1.0), 20 + k)]
    for j, s in enumerate(crops("noise", (0.0, 1.0), 30, count=4 * n)):
        if j % 4 == 0:
            sigma = 20 + 30 * float(torch.rand((), generator=g))
            noisy = (s["gt"] + torch.randn(s["gt"].shape, generator=g) * sigma / 255).clamp(0, 1)
            out.append((noisy, 0, "white σ 20-50"))
        elif j % 4 == 1:
            out.append((s["gt"], 0, "clean"))
        elif j % 4 == 2:
            out.append((_jpeg(s["gt"], int(torch.randint(70, 96, (1,), generator=g))), 0, "clean, JPEG"))
        else:
            out.append((_soft(s["gt"], g), 0, "clean, soft"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=os.environ.get("UIR_DATA_ROOT"))
    p.add_argument("--per-kind", type=int, default=60, help="fit crops per kind (the penalty's split: 40 %%)")
    p.add_argument("--dark", type=Path, nargs="*", default=[], help="pair folders of make_dark_photos.py to score too")
    p.add_argument("--cache", type=Path, default=Path("runs/tone-guard-cache"), help="synthetic sets' cache")
    args = p.parse_args(argv)
    if args.data_root is None or not (args.data_root / "train_clean/CBSD432").is_dir():
        raise SystemExit("analysis_grain_probe: say where the data is with --data-root (train_clean/CBSD432 in it)")
    torch.set_grad_enabled(False)
    classifier = load_classifier("classifier-5d")
    data = args.data_root / "train_clean/CBSD432"

    def features(samples: list) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        x = torch.cat([analysis_features(classifier, image[None]) for image, _, _ in samples])
        return x, torch.tensor([label for _, label, _ in samples]), [kind for _, _, kind in samples]

    fit = features(draw(data, (0, 360), args.per_kind, 1))
    held = features(draw(data, (360, 400), max(4, round(args.per_kind * 0.4)), 2))
    best = None
    for l2 in (1e-3, 1e-2, 1e-1):
        with torch.enable_grad():
            mean, std, weight, bias = fit_logistic(fit[0], fit[1], 2, l2=l2)
        p_grain = torch.softmax((held[0] - mean) / std @ weight.T + bias, 1)[:, 1]
        accuracy = float(((p_grain >= 0.5).long() == held[1]).double().mean())
        if best is None or accuracy > best[0]:
            best = (accuracy, l2, mean, std, weight, bias, p_grain)
    accuracy, l2, mean, std, weight, bias, p_grain = best
    print(f"held-out accuracy {accuracy:.3f} (L2 {l2:g}); called grainy, per kind:")
    for kind in dict.fromkeys(held[2]):
        chosen = torch.tensor([k == kind for k in held[2]])
        print(f"  {kind:<26} {float((p_grain[chosen] >= 0.5).double().mean()):.2f}")
    protocols = ["real-noise", "fidelity", "uir-5d", *(pairs_protocol(d / "lq", d / "gt") for d in args.dark)]
    print(f"{'set':<16} {'n':>4} {'p >= 0.5':>9} {'p >= 0.8':>9} {'median p':>9}")
    for test_set, samples in sampled_sets(protocols, args.data_root, args.cache):
        if samples is None:
            print(f"{test_set.name:<16} data missing")
            continue
        z = torch.cat(
            [(analysis_features(classifier, center_crop(lq, CROP_SIDE)) - mean) / std for _, _, lq in samples]
        )
        p = torch.softmax(z @ weight.T + bias, 1)[:, 1]
        shares = f"{float((p >= 0.5).double().mean()):9.2f} {float((p >= 0.8).double().mean()):9.2f}"
        print(f"{test_set.name:<16} {len(p):>4} {shares} {float(p.median()):9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
