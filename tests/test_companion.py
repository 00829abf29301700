"""Issue 24: a photo the model changes little goes to its fine-damage companion (real camera grain, compression), with
the exposure and colour kept; rain, named coarse damage and underexposed photos stay with the model."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import load_example, smooth_photo
from uir.api import (
    BLUR_SMALL_CHANGE_DB,
    DARK_CLEAN_MEAN,
    GRAIN_CEILING,
    GRAIN_FLOOR,
    GRAIN_SIDE,
    SMALL_CHANGE_DB,
    Model,
    Plan,
    change_db,
    changes_little,
    fine_route,
    load,
    plan_for_tasks,
    route,
)
from uir.cli import main
from uir.inspection import CLEAN_CONFIDENCE, Inspector

ROOT = Path(__file__).resolve().parent.parent


def photo(seed: int = 2, h: int = 40, w: int = 52) -> torch.Tensor:
    array = np.asarray(smooth_photo(np.random.default_rng(seed), h, w), np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


class Shift:
    """A fake restorer that adds ``amount`` everywhere (a brightening: the tone guard's ``keep`` takes it back) plus
    a seeded fine pattern of ``fine`` RMS (which the guard leaves); counts its calls."""

    def __init__(self, name: str, amount: float = 0.0, fine: float = 0.0) -> None:
        self.name, self.amount, self.fine, self.calls = name, amount, fine, 0
        self.labels: list[str] = []
        self.sizes: list[tuple[int, int]] = []

    def restore(self, lq: torch.Tensor, tasks: object = None) -> torch.Tensor:
        self.calls += 1
        self.sizes.append(tuple(lq.shape[-2:]))
        pattern = torch.randn(lq.shape, generator=torch.Generator().manual_seed(3))
        return (lq + self.amount + self.fine * pattern).clamp(0, 1)


class FixedClassifier:
    def __init__(self, probs: dict[str, float]) -> None:
        self.probs = probs

    def classify(self, lq: torch.Tensor) -> dict[str, float]:
        return dict(self.probs)


def rms(db: float) -> float:
    """The RMS change that is ``db`` dB of PSNR from the input."""
    return 10 ** (-db / 20)


def pair(probs: dict[str, float], model_change: float, companion: Shift) -> Model:
    """A model whose network darkens by an RMS of ``model_change`` dB, with ``companion`` and a fixed analysis."""
    model = Model(Shift("net", amount=-rms(model_change)), companion=companion)
    model.analysis = Inspector(classifier=FixedClassifier(probs))
    return model


def test_a_photo_the_model_changes_little_goes_to_the_companion_with_its_tone_kept() -> None:
    x = photo()
    fine = Shift("fine", amount=0.05, fine=rms(38))  # brightens (to be undone) and changes fine detail at ~38 dB
    model = pair({"noise": 0.6, "clean": 0.4}, SMALL_CHANGE_DB + 2, fine)
    ((out, plan),) = model.restore_planned(x)
    assert fine.calls == 1 and plan.restored_by == "fine" and plan.tone == "keep" and plan.strength == 1.0, plan
    assert "net would change it little" in plan.reason and "goes to fine, exposure and colour kept" in plan.reason
    assert abs(float(out.mean() - x.mean())) < 0.002  # the companion's +0.05 brightening taken back
    assert 30 < change_db(out, x) < 45  # its fine change kept
    # The model changes the photo much: the model's output, the companion not run.
    fine.calls = 0
    much = pair({"noise": 0.6, "clean": 0.4}, SMALL_CHANGE_DB - 2, fine)
    ((out, plan),) = much.restore_planned(x)
    assert fine.calls == 0 and plan.restored_by == "net" and torch.allclose(out, (x - rms(SMALL_CHANGE_DB - 2)))


def test_rain_named_coarse_damage_and_underexposed_photos_stay_with_the_model() -> None:
    assert fine_route(Plan(("auto",), "no-brightening", "", hint="clean"))
    assert not fine_route(Plan(("auto",), "no-brightening", "", hint="rain-streaks"))
    assert not fine_route(Plan(("auto",), "free", "", hint="low-light"))
    assert fine_route(plan_for_tasks(["camera-noise"])) and fine_route(plan_for_tasks(["noise", "jpeg"]))
    for names in (["haze"], ["noise", "motion-blur"], ["low-light"], ["rain-streaks"]):
        assert not fine_route(plan_for_tasks(names)), names
    x = photo()
    fine = Shift("fine", fine=rms(38))
    rainy = pair({"rain-streaks": 0.7, "clean": 0.3}, SMALL_CHANGE_DB + 2, fine)
    ((_, plan),) = rainy.restore_planned(x)
    assert fine.calls == 0 and plan.restored_by == "net"
    ((_, plan),) = rainy.restore_planned(x, task="haze")
    assert fine.calls == 0 and plan.restored_by == "net"
    ((_, plan),) = rainy.restore_planned(x, task=["camera-noise", "jpeg"])
    assert fine.calls == 1 and plan.restored_by == "fine"


def test_a_clean_looking_photo_is_left_when_the_companion_finds_no_grain_in_it() -> None:
    x = photo()
    fine = Shift("fine", fine=rms(50))  # about 0.8 of 255: under GRAIN_FLOOR
    model = pair({"clean": 0.95, "noise": 0.05}, SMALL_CHANGE_DB + 3, fine)
    ((out, plan),) = model.restore_planned(x)
    assert torch.equal(out, x) and plan.strength == 0.0 and plan.restored_by is None and fine.calls == 1, plan
    assert plan.grain is not None and 0.5 < plan.grain < GRAIN_FLOOR, plan
    assert plan.reason.endswith("and the model would change it little (38.0 dB from the input): left as it is")
    # The user asks for the full correction: the companion takes it.
    ((out, plan),) = model.restore_planned(x, strength=1)
    assert fine.calls == 2 and plan.restored_by == "fine" and not torch.equal(out, x), plan
    # A strength of 0 asked for: nothing runs.
    ((out, plan),) = model.restore_planned(x, strength=0)
    assert torch.equal(out, x) and plan.restored_by is None and fine.calls == 2


def test_a_clean_looking_photo_with_grain_goes_to_the_companion_however_much_the_model_changes_it() -> None:
    x = photo()
    fine = Shift("fine", fine=rms(40))  # white grain of about 2.5 of 255 taken out
    model = pair({"clean": 0.95, "noise": 0.05}, SMALL_CHANGE_DB + 3, fine)
    ((out, plan),) = model.restore_planned(x)
    assert plan.restored_by == "fine" and plan.strength == 1.0 and plan.tone == "keep", plan
    assert GRAIN_FLOOR <= plan.grain <= GRAIN_CEILING and "fine finds grain in its flat parts" in plan.reason
    assert 38 < change_db(out, x) < 42
    # The model would change it much (its grid on a soft photo): the companion still, the likeliest type being clean.
    much = pair({"clean": 0.6, "motion-blur": 0.4}, SMALL_CHANGE_DB - 5, fine)
    ((out, plan),) = much.restore_planned(x)
    assert plan.restored_by == "fine" and 38 < change_db(out, x) < 42, plan
    # Heavier noise than the companion is for: the model's output.
    heavy = Shift("heavy", fine=rms(25))
    ((out, plan),) = pair({"clean": 0.6, "noise": 0.4}, SMALL_CHANGE_DB - 5, heavy).restore_planned(x)
    assert heavy.calls == 1 and plan.grain > GRAIN_CEILING and plan.restored_by == "net", plan
    # Another likeliest type: no companion where the model changes the photo much.
    fine.calls = 0
    ((out, plan),) = pair({"haze": 0.6, "clean": 0.4}, SMALL_CHANGE_DB - 5, fine).restore_planned(x)
    assert fine.calls == 0 and plan.restored_by == "net" and plan.grain is None


def test_the_grain_of_a_large_photo_is_read_on_its_centre_and_the_companion_runs_whole_only_if_chosen() -> None:
    x = photo(h=40, w=GRAIN_SIDE + 88)
    clean = Shift("fine", fine=rms(50))  # no grain found: left as it is, the companion ran on the centre only
    ((out, plan),) = pair({"clean": 0.95, "noise": 0.05}, SMALL_CHANGE_DB + 3, clean).restore_planned(x, tile=0)
    assert plan.restored_by is None and clean.sizes == [(40, GRAIN_SIDE)] and torch.equal(out, x), plan
    grainy = Shift("fine", amount=0.05, fine=rms(40))  # grain (and a brightening to undo): then the whole photo
    ((out, plan),) = pair({"clean": 0.95, "noise": 0.05}, SMALL_CHANGE_DB + 3, grainy).restore_planned(x, tile=0)
    assert plan.restored_by == "fine" and grainy.sizes == [(40, GRAIN_SIDE), (40, GRAIN_SIDE + 88)], plan
    assert out.shape == x.shape and 38 < change_db(out, x) < 42
    assert abs(float(out.mean() - x.mean())) < 0.002  # the whole photo's output has its tone kept too


@pytest.mark.parametrize(("h", "w", "task"), [(16, 16, "auto"), (16, 40, "noise"), (12, 12, "auto"), (17, 17, "auto")])
def test_tiny_photos_go_through_the_grain_test(h: int, w: int, task: str) -> None:
    x = photo(h=h, w=w)
    fine = Shift("fine", fine=rms(40))
    ((out, plan),) = pair({"clean": 0.95, "noise": 0.05}, SMALL_CHANGE_DB + 3, fine).restore_planned(x, task=task)
    assert out.shape == x.shape and fine.calls == 1, plan
    assert (plan.grain is None) == (min(h, w) <= 16), plan


def test_a_dark_clean_looking_photo_is_left_as_it_is_however_much_the_model_changes_it() -> None:
    x = photo()
    dark = x * 0.4  # mean luminance about 0.2: under DARK_CLEAN_MEAN
    for companion in (Shift("fine", fine=rms(50)), None):  # no grain found, or no companion at all
        model = pair({"clean": 0.95, "noise": 0.05}, SMALL_CHANGE_DB - 5, companion)
        ((out, plan),) = model.restore_planned(dark)
        assert plan.restored_by is None and torch.equal(out, dark) and "take a dark photo for a hazy one" in plan.reason
        assert plan.mean_luminance < DARK_CLEAN_MEAN, plan
        ((out, plan),) = model.restore_planned(x)  # bright enough: the model's large change may be haze removed
        assert plan.restored_by == "net" and plan.strength == 1.0 and not torch.equal(out, x), plan
        ((out, plan),) = model.restore_planned(dark, strength=1)  # asked for: restored
        assert plan.restored_by == "net" and not torch.equal(out, dark), plan
        ((half, plan),) = model.restore_planned(dark, strength=0.5)
        assert plan.restored_by == "net" and plan.strength == 0.5 and torch.allclose(half - dark, 0.5 * (out - dark))
    # A dark photo with heavy noise (grain above GRAIN_CEILING, a night shot) is restored by the model.
    noisy = pair({"clean": 0.95, "noise": 0.05}, SMALL_CHANGE_DB - 5, Shift("heavy", fine=rms(25)))
    ((out, plan),) = noisy.restore_planned(dark)
    assert plan.restored_by == "net" and plan.grain > GRAIN_CEILING and plan.strength == 1.0, plan


def test_route_decides_from_the_change_and_the_grain() -> None:
    plan = Plan(("auto",), "keep", "looks clean", hint="clean", strength=0.0, clean=0.9)
    assert route(dataclasses.replace(plan, grain=3.0), 40.0, "fine").restored_by == "fine"
    assert route(dataclasses.replace(plan, grain=3.0), 40.0, None).restored_by is None  # the companion did not run
    assert route(dataclasses.replace(plan, grain=1.0), 40.0, "fine").restored_by is None
    assert route(dataclasses.replace(plan, grain=1.0, restored_by="net"), 30.0, "fine").restored_by == "net"
    assert route(dataclasses.replace(plan, grain=9.0, restored_by="net"), 30.0, "fine").restored_by == "net"
    noisy = Plan(("auto",), "no-brightening", "", hint="noise", restored_by="net")
    assert route(noisy, 36.0, "fine").restored_by == "fine" and route(noisy, 34.0, "fine").restored_by == "net"


def test_a_photo_called_motion_blurred_that_the_model_changes_by_less_than_35_db_goes_to_the_companion() -> None:
    # The model's deblurring changes a photo little and gains little; on a soft real photo it sharpens the grain.
    x = photo()
    between = (BLUR_SMALL_CHANGE_DB + SMALL_CHANGE_DB) / 2
    for hint, change, by in [
        ("motion-blur", between, "fine"),
        ("motion-blur", BLUR_SMALL_CHANGE_DB - 3, "net"),  # a change that large is the model's
        ("haze", between, "net"),  # other types keep SMALL_CHANGE_DB
        ("noise", between, "net"),
    ]:
        fine = Shift("fine", fine=rms(45))
        model = pair({hint: 0.6, "clean": 0.4}, change, fine)
        ((out, plan),) = model.restore_planned(x)
        assert plan.restored_by == by and fine.calls == (by == "fine"), (hint, change, plan)
        if by == "fine":
            assert plan.tone == "keep" and "would change it little" in plan.reason, plan
    blurred = Plan(("auto",), "no-brightening", "", hint="motion-blur")
    assert changes_little(blurred, BLUR_SMALL_CHANGE_DB) and not changes_little(blurred, BLUR_SMALL_CHANGE_DB - 0.1)
    assert changes_little(blurred, between)
    assert not changes_little(dataclasses.replace(blurred, hint="rain-streaks"), between)
    named = dataclasses.replace(plan_for_tasks(["camera-noise"]), hint="motion-blur")  # a named task: the 35 dB bound
    assert not changes_little(named, between) and changes_little(named, SMALL_CHANGE_DB)


def test_load_attaches_the_shipped_companion_to_the_default_only() -> None:
    model = load("default")
    assert model.companion is not None and model.companion.name == "nafnet-fr-fine2"
    assert model.as_restorer().name == "nafnet-fr-v2.1 + nafnet-fr-fine2 [auto]"
    assert "companion='nafnet-fr-fine2'" in repr(model)
    assert load("default", companion=None).companion is None and load("default", companion="none").companion is None
    assert load("nafnet-small-uir").companion is None and load("identity").companion is None
    assert load("identity", companion="identity").companion.name == "identity"


def test_a_number_for_strength_scales_the_companions_correction() -> None:
    x = photo()
    fine = Shift("fine", fine=rms(38))
    model = pair({"noise": 0.6, "clean": 0.4}, SMALL_CHANGE_DB + 2, fine)
    ((full, plan),) = model.restore_planned(x, strength=1)
    assert plan.restored_by == "fine" and plan.strength == 1.0
    ((half, plan),) = model.restore_planned(x, strength=0.5)
    assert plan.restored_by == "fine" and torch.allclose(half - x, 0.5 * (full - x), atol=1e-5)


def grain_photo(path: Path) -> None:
    """A photo crop with faint white grain (about 38.6 dB): the default network changes it little."""
    clean = load_example("coffee.png", (100, 100, 356, 292))
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    grainy = ((clean + 3 / 255 * noise).clamp(0, 1) * 255).round()
    Image.fromarray(grainy[0].permute(1, 2, 0).numpy().astype(np.uint8)).save(path)


def test_the_report_says_which_network_restored_the_photo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grain_photo(tmp_path / "grain.png")
    args = ["restore", str(tmp_path / "grain.png"), "--report", "--engine", "torch", "--task", "camera-noise"]
    assert main([*args, "-o", str(tmp_path / "pair")]) == 0
    plan = json.loads((tmp_path / "pair" / "grain.json").read_text())["plan"]
    assert plan["restored_by"] == "nafnet-fr-fine2" and plan["tone"] == "keep", plan
    assert "goes to nafnet-fr-fine2" in plan["reason"]
    assert "1 were restored by nafnet-fr-fine2 (fine damage: grain, compression)" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "alone"), "--companion", "none"]) == 0
    plan = json.loads((tmp_path / "alone" / "grain.json").read_text())["plan"]
    assert plan["restored_by"] == "nafnet-fr-v2.1", plan
    assert main([*args, "-o", str(tmp_path / "bad"), "--companion", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_the_default_pair_restores_grain_without_changing_the_exposure() -> None:
    clean = load_example("coffee.png", (100, 100, 356, 292))  # 192x256
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    grainy = ((clean + 3 / 255 * noise).clamp(0, 1) * 255).round() / 255
    model = load("default")
    for task in ("auto", "camera-noise"):  # under auto it looks clean (1.00), but the companion finds grain (1.68)
        ((out, plan),) = model.restore_planned(grainy, task=task)
        assert plan.restored_by == "nafnet-fr-fine2" and plan.strength == 1.0 and abs(plan.grain - 1.68) < 0.05, plan
        assert change_db(out, clean) > change_db(grainy, clean) + 1.0  # measured: 38.67 -> 40.66 dB
        assert abs(float(out.mean() / grainy.mean()) - 1) < 0.001
    ((out, plan),) = model.restore_planned(clean, task="auto")  # the clean crop: left as it is
    assert plan.restored_by is None and plan.grain < GRAIN_FLOOR and torch.equal(out, clean), plan


def _route_benchmark():  # noqa: ANN202  (benchmarks/fine_companion.py, a script, as a module)
    spec = importlib.util.spec_from_file_location("fine_companion", ROOT / "benchmarks" / "fine_companion.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_route_benchmark_weighs_a_csv_row_as_restore_planned_decides() -> None:
    # benchmarks/fine_companion.py --weigh replays the API's route from per-image figures: it must call the same rules.
    bench = _route_benchmark()
    row = {"set": "s", "index": "0", "input": "36.0", "model": "31.0", "companion": "36.5", "companion_change": "50.0"}
    row |= {"grain": "0.3", "clean": "0.1", "luminance": "0.3", "tone": "no-brightening"}
    between = (BLUR_SMALL_CHANGE_DB + SMALL_CHANGE_DB) / 2
    for hint, change, by in [("motion-blur", between, "companion"), ("motion-blur", 28.0, "model")]:
        assert bench.api_route(row | {"hint": hint, "model_change": str(change)}, Path("x.csv"))[1] == by, hint
    assert bench.api_route(row | {"hint": "haze", "model_change": str(between)}, Path("x.csv")) == (31.0, "model")
    assert bench.api_route(row | {"hint": "noise", "model_change": "36.0"}, Path("x.csv")) == (36.5, "companion")


def test_the_route_benchmark_weighs_the_cascade_and_other_clean_confidences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --weigh's "api, cascade" puts the model-after-companion figure where the third rule (a small change) sends a
    # photo to the companion, not where the first (grain on a clean-looking photo) does; --clean-confidence moves
    # the gate: a photo called clean at 0.8 that the model changes little is left at 0.7 and routed at 0.9.
    bench = _route_benchmark()
    row = {"set": "s", "input": "36.0", "model": "37.0", "companion": "36.5", "companion_change": "50.0"}
    row |= {"luminance": "0.5", "tone": "no-brightening", "model_change": "40.0", "cascade": "38.25"}
    small = row | {"index": "0", "grain": "0.3", "clean": "0.1", "hint": "clean"}  # third rule
    grainy = row | {"index": "1", "grain": "3.0", "clean": "0.9", "hint": "clean", "cascade": "99.0"}  # first rule
    gated = row | {"index": "2", "grain": "0.3", "clean": "0.8", "hint": "clean"}
    assert bench.api_route(small, Path("x.csv"))[1] == "companion"
    assert bench.api_route(grainy, Path("x.csv"))[1] == "companion"
    assert bench.api_route(gated, Path("x.csv")) == (36.0, None)
    assert bench.api_route(gated, Path("x.csv"), 0.9) == (36.5, "companion")
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(small))
        writer.writeheader()
        writer.writerows([small, grainy, gated])
    assert bench.weigh(path, [], [0.95]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("s "))
    # input, the model alone, the gate alone (the grainy and the gated photos left: they look clean and change
    # little), the API's route (the companion's for the small change and the grainy photo, the gated one left), the
    # cascade (the model-after-companion figure for the small change only), the route at 0.95 (the gated photo no
    # longer looks clean: the companion's; the first rule does not ask how clean a photo looks)
    expected = ["36.00", "37.00", "36.33", "36.33", "36.92", "36.50"]
    assert re.findall(r"\d+\.\d+", line) == expected, line
    for clean, tone in itertools.product(("0.0", "0.69", "0.7", "0.71", "1.0"), ("no-brightening", "keep", "free")):
        one = small | {"clean": clean, "tone": tone}  # its own copy of looks_clean's rule agrees with uir.api's
        assert bench._looks_clean(one) == bench._looks_clean(one, CLEAN_CONFIDENCE), (clean, tone)
