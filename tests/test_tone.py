"""Issue 24: restoring keeps the exposure and colour unless brightening is asked for or the photo is underexposed;
``--task`` says what is wrong; any folder of pairs can be scored; the camera-noise type models a camera."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import smooth_photo
from uir import degradations as D
from uir.api import AUTO, Model, check_task, plan_for_tasks
from uir.cli import main
from uir.data import pair_dirs
from uir.degradations.noise import add_camera_noise, inverse_tone_curve, tone_curve
from uir.errors import UirError
from uir.inspection import LOW_LIGHT_CONFIDENCE, LOW_LIGHT_MEAN, Inspector, is_underexposed
from uir.metrics import colour_shift, luminance_ratio
from uir.restore import TONE_TOLERANCE, guard_tone


def smooth(seed: int, h: int = 67, w: int = 83) -> torch.Tensor:
    array = np.asarray(smooth_photo(np.random.default_rng(seed), h, w), np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


class Brightener:
    """A fake restorer that brightens 1.6x (as a low-light model does) and removes a little noise."""

    name = "brightener"
    labels: list[str] = []

    def restore(self, lq: torch.Tensor, tasks: object = None) -> torch.Tensor:
        return (lq * 1.6).clamp(0, 1)


class FixedClassifier:
    def __init__(self, probs: dict[str, float]) -> None:
        self.probs = probs

    def classify(self, lq: torch.Tensor) -> dict[str, float]:
        return dict(self.probs)


def model_seeing(probs: dict[str, float]) -> Model:
    model = Model(Brightener())
    model.analysis = Inspector(classifier=FixedClassifier(probs))
    return model


# --------------------------------------------------------------------------- the guard and the figures


def test_no_brightening_undoes_a_brightening_and_keeps_a_darkening() -> None:
    x = smooth(0) * 0.5
    back = guard_tone((x * 1.6).clamp(0, 1), x, "no-brightening")
    ratio = float(luminance_ratio(back, x)[0])
    assert 1.0 <= ratio <= 1 + TONE_TOLERANCE + 0.005, ratio
    darker = x * 0.7  # dehazing darkens: allowed
    assert torch.equal(guard_tone(darker, x, "no-brightening"), darker)
    assert torch.equal(guard_tone(x * 1.6, x, "free"), x * 1.6)
    with pytest.raises(UirError, match="unknown tone policy"):
        guard_tone(x, x, "brighter")
    with pytest.raises(UirError, match="differ in shape"):
        guard_tone(x[..., 1:], x, "keep")


def test_keep_takes_the_inputs_large_scale_and_the_outputs_detail() -> None:
    clean = smooth(1)
    noise = 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = (clean + noise).clamp(0, 1)
    cast = (clean * torch.tensor([1.2, 1.0, 0.8]).view(1, 3, 1, 1)).clamp(0, 1)  # denoised, with a colour cast
    kept = guard_tone(cast, noisy, "keep")
    assert float(colour_shift(cast, noisy)[0]) > 0.1
    assert float(colour_shift(kept, noisy)[0]) < 0.02
    assert (kept - clean).abs().mean() < 0.5 * (noisy - clean).abs().mean()  # the denoising stays


def test_tone_figures() -> None:
    x = smooth(2) * 0.5
    assert float(luminance_ratio(x * 1.5, x)[0]) == pytest.approx(1.5, rel=1e-6)
    assert float(colour_shift(x * 1.5, x)[0]) == pytest.approx(0.0, abs=1e-9)
    warm = x * torch.tensor([1.1, 1.0, 1.0]).view(1, 3, 1, 1)
    assert float(colour_shift(warm, x)[0]) > 0.05


# --------------------------------------------------------------------------- tasks and plans


def test_tasks_are_checked_in_one_line() -> None:
    assert check_task("auto") == (AUTO,)
    assert check_task(["noise", "jpeg", "noise"]) == ("noise", "jpeg")
    for bad, said in ((["nois"], "unknown task 'nois'"), ([], "unknown task none"), (["auto", "haze"], "cannot")):
        with pytest.raises(UirError, match=said) as err:
            check_task(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(UirError, match="low-light"):  # the valid names are listed
        check_task("dark")


def test_named_tasks_decide_the_tone() -> None:
    assert plan_for_tasks(["noise", "jpeg"]).tone == "keep"
    assert plan_for_tasks(["downsample-noise-blur-jpeg"]).tone == "keep"
    assert plan_for_tasks(["moire"]).tone == "no-brightening"  # fringes up to 40 px: keep would put them back
    assert plan_for_tasks(["noise", "motion-blur"]).tone == "no-brightening"
    assert plan_for_tasks(["haze"]).tone == "no-brightening"
    assert plan_for_tasks(["haze"]).hint == "haze" and plan_for_tasks(["haze", "noise"]).hint is None
    assert plan_for_tasks(["noise", "rain-streaks"]).tone == "no-brightening"
    assert plan_for_tasks(["low-light"]).tone == "free"
    assert plan_for_tasks(["lowlight-blur-noise"]).tone == "free"  # a mixture holding low light


def test_auto_brightens_only_what_the_analysis_calls_underexposed() -> None:
    dark = smooth(3) * 0.15  # mean luminance below LOW_LIGHT_MEAN
    assert float(dark.mean()) < LOW_LIGHT_MEAN
    sure = model_seeing({"low-light": 0.97, "clean": 0.03})
    plan = sure.plan(dark)
    assert plan.tone == "free" and plan.reason.startswith("underexposed") and plan.hint == "low-light"
    assert float(luminance_ratio(sure.restore_tensor(dark), dark)[0]) > 1.5
    unsure = model_seeing({"low-light": LOW_LIGHT_CONFIDENCE - 0.1, "clean": 0.2})
    assert unsure.plan(dark).tone == "no-brightening"
    assert "low light below" in unsure.plan(dark).reason
    assert float(luminance_ratio(unsure.restore_tensor(dark), dark)[0]) <= 1 + TONE_TOLERANCE + 0.005
    bright = smooth(3) * 0.9
    assert sure.plan(bright).tone == "no-brightening"  # dark-looking to the classifier, but not dark
    assert "bright enough" in sure.plan(bright).reason
    asked = model_seeing({"clean": 1.0})
    assert float(luminance_ratio(asked.restore_tensor(dark, task="low-light"), dark)[0]) > 1.5
    # The same through restore(): a NumPy photo keeps its exposure unless asked.
    photo = (dark[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert abs(asked.restore(photo).mean() / photo.mean() - 1) < 0.03
    assert asked.restore(photo, task=["low-light"]).mean() > 1.5 * photo.mean()
    with pytest.raises(UirError, match="unknown task"):
        asked.restore(photo, task="night")


def test_underexposure_needs_both_cues() -> None:
    assert is_underexposed({"low-light": 0.9}, 0.1)
    assert is_underexposed({"low-light": 0.5, "lowlight-blur-noise": 0.4}, 0.1)  # summed over types holding it
    assert not is_underexposed({"low-light": 0.9}, LOW_LIGHT_MEAN + 0.01)
    assert not is_underexposed({"low-light": 0.5, "clean": 0.5}, 0.05)


def test_inspection_reports_the_exposure() -> None:
    report = Inspector(classifier=FixedClassifier({"low-light": 0.95, "clean": 0.05})).inspect(smooth(4) * 0.1)
    assert report.underexposed is True and report.mean_luminance < 0.1
    assert "exposure: mean luminance" in report.to_text() and "underexposed" in report.to_text()
    plain = Inspector().inspect(smooth(4))
    assert plain.underexposed is None and "not judged" in plain.to_text()


# --------------------------------------------------------------------------- the command line


def test_restore_task_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "dusk.png"
    Image.fromarray((np.asarray(smooth_photo(np.random.default_rng(5), 48, 64)) * 0.3).astype(np.uint8)).save(photo)
    out = tmp_path / "out"
    assert main(["restore", str(photo), "-o", str(out), "--model", "identity", "--task", "noise", "--report"]) == 0
    report = json.loads((out / "dusk.json").read_text())
    assert report["plan"]["task"] == ["noise"] and report["plan"]["tone"] == "keep"
    assert np.array_equal(np.asarray(Image.open(out / "dusk.png")), np.asarray(Image.open(photo)))
    assert main(["restore", str(photo), "-o", str(out), "--model", "identity", "--task", "noise", "dusk"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("uir: error: unknown task 'dusk'"), err
    assert main(["restore", "-o", str(out), "--model", "identity", "--task", "noise", str(photo)]) == 2
    assert "put --task after the inputs" in capsys.readouterr().err


# --------------------------------------------------------------------------- scoring any pairs


def pairs(tmp_path: Path, n: int = 3) -> tuple[Path, Path]:
    lq, gt = tmp_path / "mine" / "noisy", tmp_path / "mine" / "clean"
    lq.mkdir(parents=True), gt.mkdir(parents=True)
    rng = np.random.default_rng(6)
    for i in range(n):
        clean = np.asarray(smooth_photo(rng, 40, 56), np.int16)
        Image.fromarray(clean.astype(np.uint8)).save(gt / f"{i}.png")
        noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(lq / f"{i}.jpg", quality=95)
    return lq, gt


def test_eval_scores_any_pairs_with_tone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lq, gt = pairs(tmp_path)
    out = tmp_path / "eval"
    assert main(["eval", "--model", "identity", "nlm", "--pairs", str(lq), str(gt), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "noisy (3)" in text and "Tone (output over input" in text
    result = json.loads((out / "results.json").read_text())
    nlm = result["sets"][0]["models"]["nlm"]
    assert nlm["mean"]["psnr"] > result["sets"][0]["models"]["input"]["mean"]["psnr"]
    assert result["sets"][0]["models"]["identity"]["tone"]["luminance_ratio"] == pytest.approx(1.0)
    assert 0.9 < nlm["tone"]["luminance_ratio"] < 1.1


def test_pairs_that_do_not_pair_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lq, gt = pairs(tmp_path)
    (gt / "2.png").unlink()
    with pytest.raises(UirError, match=r"1 image\(s\) without a partner.*2\.jpg"):
        pair_dirs(lq, gt)
    with pytest.raises(UirError, match="same folder"):
        pair_dirs(lq, lq)
    with pytest.raises(UirError, match="no such folder"):
        pair_dirs(lq, tmp_path / "nowhere")
    assert main(["eval", "--model", "identity", "--pairs", str(lq), str(gt), "--out", str(tmp_path / "e")]) == 2
    assert capsys.readouterr().err.strip().startswith("uir: error: 1 image(s) without a partner")
    Image.new("RGB", (30, 20)).save(gt / "2.png")  # a partner of another size
    assert main(["eval", "--model", "identity", "--pairs", str(lq), str(gt), "--out", str(tmp_path / "e")]) == 2
    assert "differ in size" in capsys.readouterr().err


def test_eval_scores_the_pipeline_with_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lq, gt = pairs(tmp_path, n=2)
    out = tmp_path / "eval"
    args = ["eval", "--model", "identity", "--pairs", str(lq), str(gt), "--out", str(out), "--task", "noise"]
    assert main(args) == 0
    assert "identity [noise]" in capsys.readouterr().out
    both = ["eval", "--model", "identity", "--pairs", str(lq), str(gt), "--benchmark", "uir-5d", "--out", str(out)]
    assert main(both) == 2
    assert "not both" in capsys.readouterr().err


# --------------------------------------------------------------------------- the camera's noise


def test_camera_noise_models_the_camera() -> None:
    clean = smooth(7, 96, 96) * 0.8 + 0.1

    def grain(nr: float) -> float:
        noisy = add_camera_noise(clean, 0.012 * 0.3**2, 0.004, torch.Generator().manual_seed(0), nr=nr)
        r = noisy - clean
        r = r - r.mean()
        return float((r[..., 1:] * r[..., :-1]).mean() / (r**2).mean())

    assert grain(1.0) > grain(0.0) + 0.2  # in-camera noise reduction makes the grain blotchy
    lq, record = D.degrade(clean, "camera-noise", 0.3, 123)
    (step,) = json.loads(record.to_json())["steps"]
    assert 0 <= step["params"]["ccm"] <= 1 and 0 <= step["params"]["nr"] <= 1.5, step
    assert step["params"]["quality"] == 0 or 88 <= step["params"]["quality"] <= 98
    assert 0 <= step["params"]["tone"] <= 0.8 and 3 <= step["params"]["chroma_nr"] <= 6, step
    assert torch.equal(lq, D.degrade(clean, "camera-noise", 0.3, 123)[0])  # reproducible


def test_the_cameras_tone_curve_moves_the_grain_from_the_shadows_to_the_mid_tones() -> None:
    ramp = torch.linspace(0.02, 0.98, 96).view(1, 1, 1, 96).expand(1, 3, 96, 96).contiguous()
    assert torch.allclose(inverse_tone_curve(tone_curve(ramp, 0.8), 0.8), ramp, atol=1e-5)
    assert torch.equal(tone_curve(ramp[..., :1] * 0, 0.8), ramp[..., :1] * 0)  # black and white stay put

    def shadows_over_mid_tones(tone: float) -> float:
        noisy = add_camera_noise(ramp, 0.012 * 0.3**2, 0.004, torch.Generator().manual_seed(0), tone=tone)
        r = noisy - ramp
        return float(r[..., 4:20].std() / r[..., 40:56].std())

    assert shadows_over_mid_tones(0.8) < 0.75 * shadows_over_mid_tones(0.0)
    clean = add_camera_noise(ramp, 0.0, 0.0, torch.Generator().manual_seed(0), tone=0.8)
    assert torch.equal(clean, ramp)  # no noise: the photo is not touched by the curve's round trip
