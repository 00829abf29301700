"""uir inspect: grades, verdicts from each learned part, the CLI's text and JSON, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from uir import io
from uir.cli import main
from uir.errors import UirError
from uir.inspection import GRAIN_FLOOR, Inspector, piqe_grade
from uir.metrics import niqe, piqe
from uir.models.backbones import create_backbone


class FixedClassifier:
    def __init__(self, probs: dict[str, float]) -> None:
        self.probs, self.seen = probs, []

    def classify(self, lq: torch.Tensor) -> dict[str, float]:
        self.seen.append(tuple(lq.shape))
        return self.probs


class FixedPerceiver:
    def __init__(self, high: float) -> None:
        self.tiers = {"low": (1 - high) / 2, "medium": (1 - high) / 2, "high": high}

    def perceive(self, lq: torch.Tensor) -> dict[str, float]:
        return self.tiers


@pytest.mark.parametrize(("score", "grade"), [(0, "excellent"), (20, "excellent"), (20.5, "good"), (50, "fair")])
def test_piqe_grades_follow_the_authors_scale(score: float, grade: str) -> None:
    assert piqe_grade(score) == grade
    assert piqe_grade(80.1) == "bad"


def test_scores_alone_say_that_no_classifier_was_given(photo: torch.Tensor) -> None:
    report = Inspector().inspect(photo, "cat.png")
    assert report.degradations is None and report.tree_path is None and report.quality_tiers is None
    assert report.niqe == pytest.approx(float(niqe(photo)[0])) and report.piqe == pytest.approx(float(piqe(photo)[0]))
    assert "no degradation classifier was given" in report.verdict and report.piqe_grade in report.verdict
    assert report.to_text().startswith("cat.png (128×96): ")


def test_the_verdict_follows_the_learned_parts(photo: torch.Tensor) -> None:
    sure = FixedClassifier({"haze": 0.1, "noise": 0.65, "rain-streaks": 0.25})
    report = Inspector(classifier=sure).inspect(photo)
    assert list(report.degradations) == ["noise", "rain-streaks", "haze"]  # most likely first
    assert report.verdict.startswith("looks degraded by noise (65%), maybe also rain-streaks (25%), noise σ about ")
    assert "  degradations: noise 65%, rain-streaks 25%, haze 10%\n" in report.to_text() + "\n"
    unsure = Inspector(classifier=FixedClassifier({"noise": 0.34, "haze": 0.33, "snow": 0.33})).inspect(photo)
    assert unsure.verdict.startswith("unsure what is wrong") and "does not know" in unsure.verdict
    clean = Inspector(classifier=sure, perceiver=FixedPerceiver(0.8)).inspect(photo)
    assert clean.verdict == "looks clean (quality tier high, 80%)" and clean.quality_tiers["high"] == 0.8
    classed = Inspector(classifier=FixedClassifier({"clean": 0.7, "noise": 0.25, "haze": 0.05})).inspect(photo)
    assert classed.verdict == "looks clean (70%), though maybe noise (25%)"


def test_learned_parts_see_a_full_resolution_centre_crop() -> None:
    classifier = FixedClassifier({"noise": 1.0})
    tree = create_backbone("nafnet-ftb-tiny").eval()
    report = Inspector(classifier=classifier, tree=tree).inspect(torch.rand(1, 3, 600, 700))
    assert classifier.seen == [(1, 3, 512, 512)]
    assert report.tree_path == [0] and (report.width, report.height) == (700, 600)


def test_cli_text_json_and_one_line_errors(tmp_path: Path, photo: torch.Tensor, capsys: pytest.CaptureFixture) -> None:
    io.write_image(tmp_path / "a.png", photo)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["inspect", str(tmp_path / "a.png"), "--classifier", "none"]) == 0
    assert "a.png (128×96): PIQE rates it" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "a.png")]) == 0  # the shipped classifier names what it sees
    assert "  degradations: " in capsys.readouterr().out
    assert main(["inspect", str(tmp_path), "--json"]) == 1  # the broken file fails, the other is reported
    captured = capsys.readouterr()
    reports = json.loads(captured.out)
    assert [Path(r["path"]).name for r in reports] == ["a.png"]
    assert reports[0]["niqe"] == pytest.approx(float(niqe(io.read_image(tmp_path / "a.png").image)[0]))
    assert "broken.png" in captured.err and "1 of 2 file(s) failed" in captured.err
    with pytest.raises(UirError, match="not an AMIRNet model") as err:
        Inspector.from_files(tree="identity")
    assert "\n" not in str(err.value)
    with pytest.raises(UirError, match="not a readable safetensors file"):
        Inspector.from_files(classifier=tmp_path / "broken.safetensors")


def test_the_api_inspects_arrays_and_pil_images(photo: torch.Tensor) -> None:
    import numpy as np

    import uir
    from uir.io import to_numpy, to_pil

    from_array = uir.inspect_image(to_numpy(photo))
    from_pil = uir.inspect_image(to_pil(photo))
    assert from_array.piqe == pytest.approx(from_pil.piqe) and (from_array.width, from_array.height) == (128, 96)
    assert from_array.degradations == pytest.approx(from_pil.degradations)  # the shipped classifier, by default
    assert uir.inspect_image(to_numpy(photo), classifier=None).degradations is None
    with pytest.raises(UirError, match=r"cannot read the image: expected an HxW") as err:
        uir.inspect_image(np.zeros((4, 4, 5), np.uint8))
    assert "\n" not in str(err.value)


def test_the_verdict_says_how_badly(tmp_path: Path, photo: torch.Tensor) -> None:
    from PIL import Image

    noisy = (photo + 0.1 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    report = Inspector(classifier=FixedClassifier({"noise": 0.9, "clean": 0.1})).inspect(noisy)
    sigma = float(report.verdict.rsplit("σ about ", 1)[1].split(" ")[0])
    assert 20 <= sigma <= 30 and report.noise_sigma == pytest.approx(sigma, abs=0.5)  # added σ 25.5 (of 255)
    path = tmp_path / "q40.jpg"
    Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(path, quality=40)
    saved = Inspector(classifier=FixedClassifier({"clean": 0.95, "noise": 0.05})).inspect(photo, str(path))
    assert saved.verdict == "looks clean (95%); saved as JPEG at quality about 40" and saved.jpeg_quality == 40
    assert "severity: noise σ about" in saved.to_text() and "JPEG quality about 40" in saved.to_text()


def test_the_verdict_says_the_estimated_severity_in_the_engines_units(photo: torch.Tensor) -> None:
    from uir.degradations.blur import sample_motion_blur
    from uir.degradations.light import sample_low_light
    from uir.inspection import LOW_LIGHT_STOPS, describe_severity

    class Assessing(FixedClassifier):
        def assess(self, lq: torch.Tensor) -> tuple[dict[str, float], dict[str, float]]:
            return self.classify(lq), {"motion-blur": 0.6, "haze": 0.1}

    report = Inspector(classifier=Assessing({"motion-blur": 0.9, "clean": 0.1})).inspect(photo)
    length = sample_motion_blur(0.6, torch.Generator().manual_seed(5)).length
    assert report.verdict.endswith(f"severity about 0.60 of 1: a blur trail about {length:.0f} px long")
    assert report.severity == {"motion-blur": 0.6} and "estimated severity (0-1): motion-blur 0.60" in report.to_text()
    both = Inspector(classifier=Assessing({"motion-blur": 0.7, "haze": 0.25, "clean": 0.05})).inspect(photo)
    assert both.severity == {"motion-blur": 0.6, "haze": 0.1}  # only the types at least SEVERITY_SHOWN likely
    clean = Inspector(classifier=Assessing({"clean": 0.95, "haze": 0.05})).inspect(photo)
    assert "severity about" not in clean.verdict  # said only for the type the verdict names
    ends = [sample_low_light(1.0, torch.Generator().manual_seed(i)).ev for i in range(200)]
    assert min(ends) >= 4.5 and max(ends) <= 5.5 and abs(sum(ends) / len(ends) - LOW_LIGHT_STOPS) < 0.1
    assert describe_severity("low-light", 0.5) == "severity about 0.50 of 1: about 2.5 stops underexposed"
    assert describe_severity("rain-streaks", 0.5) == "severity about 0.50 of 1"


class WhiteRemover:
    """A fake denoiser that takes a fixed white pattern of ``rms`` (0-1 units) out of whatever it is given."""

    name, labels = "white-remover", []

    def __init__(self, rms: float) -> None:
        self.rms, self.calls = rms, 0

    def restore(self, lq: torch.Tensor, tasks: object = None) -> torch.Tensor:
        self.calls += 1
        return lq - self.rms * torch.randn(lq.shape, generator=torch.Generator().manual_seed(5))


def test_a_photo_the_classifier_calls_clean_is_called_grainy_when_the_denoiser_finds_grain(photo: torch.Tensor) -> None:
    clean = FixedClassifier({"clean": 0.95, "noise": 0.05})
    grainy = Inspector(classifier=clean, denoiser=WhiteRemover(4 / 255)).inspect(photo)
    assert grainy.verdict.startswith("grainy: 4.") and grainy.verdict.endswith("the analysis alone: looks clean (95%)")
    assert 3.5 < grainy.grain < 4.5 and "grain: 4." in grainy.to_text() and grainy.to_dict()["grain"] == grainy.grain
    heavy = Inspector(classifier=clean, denoiser=WhiteRemover(12 / 255)).inspect(photo)  # above GRAIN_CEILING
    assert heavy.verdict.startswith("noisy: 1") and heavy.grain > 8, heavy.verdict
    with_tiers = Inspector(classifier=clean, perceiver=FixedPerceiver(0.8), denoiser=WhiteRemover(4 / 255))
    assert with_tiers.inspect(photo).verdict.endswith("the analysis alone: looks clean (quality tier high, 80%)")
    no_classifier = WhiteRemover(4 / 255)  # nothing calls it clean: not measured
    assert Inspector(denoiser=no_classifier).inspect(photo).grain is None and no_classifier.calls == 0
    faint = Inspector(classifier=clean, denoiser=WhiteRemover(0.5 / 255)).inspect(photo)
    assert faint.verdict == "looks clean (95%)" and faint.grain < 1.0
    remover = WhiteRemover(4 / 255)  # a photo the classifier calls damaged: no grain measured
    noisy = Inspector(classifier=FixedClassifier({"noise": 0.9, "clean": 0.1}), denoiser=remover).inspect(photo)
    assert remover.calls == 0 and noisy.grain is None and noisy.verdict.startswith("looks degraded by noise")


def test_uir_inspect_measures_grain_with_the_default_companion(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from conftest import load_example

    clean = load_example("coffee.png", (100, 100, 356, 292))
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    io.write_image(tmp_path / "grainy.png", ((clean + 3 / 255 * noise).clamp(0, 1) * 255).round() / 255)
    io.write_image(tmp_path / "clean.png", clean)
    assert main(["inspect", str(tmp_path), "--json"]) == 0
    reports = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert reports["grainy.png"]["verdict"].startswith("grainy: ") and reports["grainy.png"]["grain"] >= GRAIN_FLOOR
    assert reports["clean.png"]["verdict"].startswith("looks clean") and reports["clean.png"]["grain"] < GRAIN_FLOOR
    assert main(["inspect", str(tmp_path / "grainy.png"), "--json", "--denoiser", "none"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["grain"] is None and report["verdict"].startswith("looks clean")
