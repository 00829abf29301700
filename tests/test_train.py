"""Training end to end on a tiny data root made here: strict configs, the run folder, exact resume, exports, DDP."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

import uir.pretrained  # noqa: F401  (registers the model-file loader)
from conftest import load_script
from uir.checkpoint import load_weights
from uir.config import Config, config_from_dict, expand_path, load_config, to_dict
from uir.data.mixing import MixSampler
from uir.distributed import Distributed
from uir.errors import UirError
from uir.methods.supervised import Supervised, psnr_loss
from uir.metrics.reference import psnr
from uir.restorers import load_restorer
from uir.train import Trainer, train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny_test.yaml"
TOTAL = 8  # optim.total_iters of tiny_test.yaml


@pytest.fixture
def cfg(tiny_data: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("UIR_DATA_ROOT", str(tiny_data))
    return load_config(CONFIG)


@pytest.fixture(scope="module")
def full_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run of tiny_test.yaml, the reference of the resume tests."""
    run_dir = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UIR_DATA_ROOT", str(tiny_data))
        result = train(load_config(CONFIG), run_dir, progress=False)
    assert result.finished and result.step == TOTAL and result.stopped is None
    return run_dir


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _assert_same_training_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for part in ("backbone", "ema"):
        assert a[part].keys() == b[part].keys()
        for name in a[part]:
            assert torch.equal(a[part][name], b[part][name]), f"{part}.{name} differs"
    for index, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][index][key]), f"optimizer {index}.{key} differs"
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("raw", "overrides", "message"),
    [
        ({"optim": {"lrr": 1e-3}}, [], r"unknown key 'optim\.lrr' \(optim takes: lr, "),
        ({"bogus": {}}, [], r"unknown key 'bogus'"),
        ({"optim": {"lr": "fast"}}, [], r"optim\.lr: expected number, got string 'fast'"),
        ({"train": {"log_every": 2.5}}, [], r"train\.log_every: expected integer, got number 2\.5"),
        ({"data": {"flip": 1}}, [], r"data\.flip: expected boolean, got integer 1"),
        ({"data": {"sources": [{"kind": "pairs", "root": "x"}]}}, [], r"sources\.0\.kind: expected one of 'paired'"),
        ({"data": {"sources": [{"kind": "noisy"}]}}, [], r"data\.sources\.0\.root: missing \(required\)"),
        ({"data": {"sources": [{"kind": "noisy", "root": "x"}]}}, [], r"a noisy source needs sigma"),
        ({}, ["optim.lr=abc"], r"^--set optim\.lr=abc: expected number, got string 'abc'"),
        ({}, ["optim.betas=[0.9]"], r"^--set optim\.betas=\[0\.9\]: expected a list \[number, number\]"),
        ({}, ["train.nope=1"], r"^--set train\.nope=1: unknown key 'train\.nope'"),
        ({}, ["optim.lr"], r"--set takes KEY=VALUE"),
        ({}, ["method.name=foo"], r"unknown method 'foo'; known: ([\w-]+, )*supervised"),
        ({}, ["method.loss=l2"], r"method\.loss=l2: expected one of 'l1', 'charbonnier', 'psnr'"),
        ({}, ["method.l1_weight=200"], r"l1_weight adds L1 to the psnr or charbonnier loss"),
        ({"data": {"sources": [{"kind": "noisy", "root": "x", "sigma": 5}]}}, ["data.sources.2.repeat=1"], r"0\.\.0"),
        (
            {"data": {"sources": [{"kind": "noisy", "root": "x", "sigma": 5, "files": [4, 2]}]}},
            [],
            r"0 <= start < stop",
        ),
        ({"data": {"sources": [{"kind": "noisy", "root": "x", "sigma": 5, "files": [4]}]}}, [], r"files: expected a"),
        (
            {"data": {"sources": [{"kind": "noisy", "root": "x", "sigma": 5, "types": ["haze"]}]}},
            [],
            r"mix, types, severity, length and params are for synthetic sources, not noisy",
        ),
        ({"data": {"sources": [{"kind": "synthetic", "root": "x", "mix": "5d", "types": []}]}}, [], r"at least one"),
        (
            {"data": {"sources": [{"kind": "synthetic", "root": "x", "mix": "5d", "severity": [0.6, 0.2]}]}},
            [],
            r"severity must be \[low, high\] with 0 <= low <= high <= 1, got \[0\.6, 0\.2\]",
        ),
    ],
)
def test_config_errors_are_one_line_and_name_the_key(raw: dict, overrides: list[str], message: str) -> None:
    with pytest.raises(UirError, match=message) as err:
        config_from_dict(raw, overrides)
    assert "\n" not in str(err.value)


def test_config_file_overrides_and_round_trip(cfg: Config, tmp_path: Path) -> None:
    changed = load_config(CONFIG, ["optim.lr=1e-4", "data.sources.1.sigma=[25]", "method.loss=charbonnier"])
    assert changed.optim.lr == 1e-4 and changed.data.sources[1].sigma == [25.0]
    assert changed.method.loss == "charbonnier" and changed.data.crop == cfg.data.crop
    assert config_from_dict(to_dict(changed)) == changed
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: 1\n  lr: 2\n")
    with pytest.raises(UirError, match=r"bad\.yaml: invalid YAML \(line 3\): duplicate key 'lr'"):
        load_config(bad)


def test_psnr_loss_is_minus_the_benchmarks_psnr_and_weighs_faint_damage() -> None:
    gt = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    # one image faintly wrong (a clean photo to keep), one badly (haze): under L1 the faint one hardly counts
    wrong = torch.stack([torch.full((3, 16, 16), 0.002), torch.full((3, 16, 16), 0.08)])
    restored = (gt + wrong).requires_grad_()
    expected = -sum(float(psnr(restored[i : i + 1].detach(), gt[i : i + 1])) for i in range(2)) / 2
    assert float(psnr_loss(restored, gt, eps=1e-12)) == pytest.approx(expected, abs=1e-3)
    for loss, expected_ratio in (("l1", 1.0), ("psnr", 0.08 / 0.002)):
        method = Supervised(torch.nn.Identity(), loss=loss)
        value, logs = method({"lq": restored, "gt": gt})
        (grad,) = torch.autograd.grad(value, restored)
        # the faint image's gradient against the bad one's: equal under L1, 40x under PSNR (d log mse ∝ 1 / error)
        ratio = float(grad[0].abs().mean() / grad[1].abs().mean())
        assert ratio == pytest.approx(expected_ratio, rel=1e-2), (loss, ratio)
        assert sorted(logs) == (["l1"] if loss == "l1" else ["l1", "psnr"])
    mixed = Supervised(torch.nn.Identity(), loss="psnr", l1_weight=200.0)
    value, _ = mixed({"lq": restored, "gt": gt})
    assert float(value) == pytest.approx(float(psnr_loss(restored, gt) + 200.0 * (restored - gt).abs().mean()))


def test_env_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UIR_TEST_ROOT", "/data")
    assert expand_path("${UIR_TEST_ROOT}/x") == Path("/data/x")
    monkeypatch.delenv("UIR_TEST_ROOT")
    assert expand_path("${UIR_TEST_ROOT:-here}/x") == Path("here/x")
    with pytest.raises(UirError, match=r"root: \$\{UIR_TEST_ROOT\} is not set"):
        expand_path("${UIR_TEST_ROOT}/x", "root")


@pytest.mark.parametrize("path", sorted(CONFIG.parent.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_its_mixes_exist(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from uir.build import source_mix

    monkeypatch.setenv("UIR_DATA_ROOT", "/data")
    cfg = load_config(path)
    for source in [*cfg.data.sources, *cfg.val.sources]:
        if source.kind == "synthetic":
            assert source_mix(source).weights


def test_a_synthetic_source_narrowed_to_types_and_severities() -> None:
    from uir.build import source_mix
    from uir.config import SourceConfig

    narrowed = SourceConfig("synthetic", "x", mix="5d", types=["motion-blur", "haze"], severity=(0.2, 0.3))
    mix = source_mix(narrowed)
    assert mix.name == "5d:motion-blur+haze" and dict(mix.weights) == {"motion-blur": 1.0, "haze": 1.0}
    generator = torch.Generator().manual_seed(0)
    draws = [mix.draw(generator) for _ in range(200)]
    assert {d.type for d in draws} == {"motion-blur", "haze"}
    assert all(0.2 <= d.severity <= 0.3 for d in draws)
    assert source_mix(SourceConfig("synthetic", "x", mix="5d")).severity == (0.1, 1.0)
    with pytest.raises(
        UirError, match=r"types snow are not in mix '5d' \(noise, haze, rain-streaks, motion-blur, low-light\)"
    ):
        source_mix(SourceConfig("synthetic", "x", mix="5d", types=["snow"]))


def test_a_synthetic_source_fixes_op_parameters_in_every_type_having_the_op() -> None:
    from uir.build import source_mix
    from uir.config import SourceConfig

    grain = SourceConfig("synthetic", "x", mix="all", params={"camera-noise": {"quality": 0, "nr": 1.0}})
    generator = torch.Generator().manual_seed(0)
    draws = [source_mix(grain).draw(generator) for _ in range(300)]
    camera = [s.params for d in draws for s in d.steps if s.op == "camera-noise"]
    assert camera and all(p["quality"] == 0 and p["nr"] == 1.0 for p in camera)
    assert len({p["shot"] for p in camera}) == len(camera)  # the rest is still drawn
    # the mix's own overrides stay beneath (5d's noise is Gaussian)
    sigma = source_mix(SourceConfig("synthetic", "x", mix="5d", params={"noise": {"sigma": 10.0}})).overrides
    assert sigma["noise"]["noise"] == {"kind": "gaussian", "gray": 0, "sigma": 10.0}
    with pytest.raises(UirError, match=r"params: no type of the mix \(noise, .*\) has an op 'camera-noise'"):
        source_mix(SourceConfig("synthetic", "x", mix="5d", params={"camera-noise": {"quality": 0}}))
    with pytest.raises(UirError, match=r"params: op 'noise' has no parameter\(s\) qualty; it has amount, gray"):
        source_mix(SourceConfig("synthetic", "x", mix="5d", params={"noise": {"qualty": 0}}))
    with pytest.raises(ValueError, match="mix, types, severity, length and params are for synthetic sources"):
        SourceConfig("noisy", "x", sigma=5.0, params={"noise": {"sigma": 1.0}}).check()


# --------------------------------------------------------------------------- data order


def test_sampler_shards_cover_each_global_batch_and_repeat_sources() -> None:
    sizes, repeats = [5, 3], [1.0, 2.0]
    alone = MixSampler(sizes, repeats, batch_size=4, seed=3)
    ranks = [MixSampler(sizes, repeats, batch_size=2, seed=3, rank=r, world_size=2) for r in (0, 1)]
    assert alone.epoch_size == 11 and alone.steps_per_epoch == 2
    for step in range(5):
        assert alone.batch(step) == ranks[0].batch(step) + ranks[1].batch(step)
    keys = alone.epoch_keys(0)
    assert sorted(k for k in keys if k[0] == 1) == [(1, i, d) for i in range(3) for d in (0, 1)]
    assert keys == MixSampler(sizes, repeats, batch_size=4, seed=3).epoch_keys(0) != alone.epoch_keys(1)
    resumed = MixSampler(sizes, repeats, batch_size=4, seed=3, start_step=3)
    assert next(iter(resumed)) == alone.batch(3)


# --------------------------------------------------------------------------- training


def _cli(argv: list[str]) -> int:
    from uir.commands import train as command

    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(), argparse.RawDescriptionHelpFormatter)
    args = parser.parse_args(["train", *argv])
    return args.run(args)


def test_cli_writes_the_run_folder(cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert _cli([str(CONFIG), "--out", str(out), "--no-progress", "--set", "optim.total_iters=4"]) == 0
    assert "trained 4 steps" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "log.csv", "curves.png", "last.ckpt", "best.safetensors", "final.safetensors"} <= names
    assert load_config(out / "config.yaml").optim.total_iters == 4
    header, *rows = (out / "log.csv").read_text().splitlines()
    assert header.startswith("step,epoch,loss,lr,it_per_s,data_s,psnr/noise,psnr/rain-streaks,psnr/mean")
    assert [r.split(",")[0] for r in rows] == ["2", "4"] and rows[-1].split(",")[8] != ""
    assert Image.open(out / "curves.png").size == (1200, 450)
    state = _load(out / "last.ckpt")  # weights_only: no pickled code
    assert state["step"] == 4 and state["labels"] == ["noise", "haze", "rain-streaks"]
    assert state["config"]["optim"]["total_iters"] == 4 and state["backbone_name"] == "nafnet-tiny"
    with pytest.raises(UirError, match="already holds a run; add --resume"):
        _cli([str(CONFIG), "--out", str(out)])
    # A run folder as CONFIG resumes with its own config; finished, nothing more to do.
    assert _cli([str(out), "--resume", "--no-progress"]) == 0


@pytest.mark.parametrize("stop", [3, 6])
def test_resume_after_stop_is_bit_exact(cfg: Config, full_run: Path, tmp_path: Path, stop: int) -> None:
    stopped = train(cfg, tmp_path, stop_at=stop, progress=False)
    assert stopped.step == stop and not stopped.finished
    assert not (tmp_path / "final.safetensors").exists()
    resumed = train(cfg, tmp_path, resume=True, progress=False)
    assert resumed.finished and resumed.step == TOTAL
    _assert_same_training_state(_load(full_run / "last.ckpt"), _load(tmp_path / "last.ckpt"))


def test_sigterm_saves_then_resume_is_bit_exact(cfg: Config, full_run: Path, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    trainer = Trainer(cfg, tmp_path, Distributed())
    calls = []

    def send_sigterm(*_: object) -> None:
        calls.append(1)
        if len(calls) == 5:  # during step 5: the loop finishes it, saves, and stops
            signal.raise_signal(signal.SIGTERM)

    trainer.backbone.register_forward_hook(send_sigterm)
    result = trainer.run(progress=False)
    assert result.stopped == "SIGTERM" and result.step == 5 and _load(tmp_path / "last.ckpt")["step"] == 5
    assert signal.getsignal(signal.SIGTERM) == before
    train(cfg, tmp_path, resume=True, progress=False)
    _assert_same_training_state(_load(full_run / "last.ckpt"), _load(tmp_path / "last.ckpt"))


def test_sigterm_to_the_whole_process_group_still_saves(cfg: Config, tmp_path: Path) -> None:
    """Ctrl-C, ``kill -- -PGID`` and schedulers signal the loader workers too: they must not die and crash the step."""
    cfg.data.num_workers = 1
    trainer = Trainer(cfg, tmp_path, Distributed())
    calls = []

    def signal_every_process(*_: object) -> None:
        calls.append(1)
        if len(calls) == 5:
            workers = multiprocessing.active_children()
            assert workers, "the loader has no worker processes"
            # From another process: torch's workers exit quietly on a SIGTERM from their parent, but die of one
            # from anyone else (a terminal, kill, a scheduler).
            subprocess.run(["kill", "-TERM", *(str(w.pid) for w in workers)], check=True)
            time.sleep(0.5)  # a worker that died of it would be reported (SIGCHLD) by now
            signal.raise_signal(signal.SIGTERM)

    trainer.backbone.register_forward_hook(signal_every_process)
    result = trainer.run(progress=False)
    assert result.stopped == "SIGTERM" and result.step == 5 and _load(tmp_path / "last.ckpt")["step"] == 5
    assert not multiprocessing.active_children()  # the workers that ignored the signal left with the loader


def test_exports_load_as_restorers(full_run: Path, odd_photo: torch.Tensor) -> None:
    weights = load_weights(full_run / "final.safetensors")
    assert weights.backbone == "nafnet-tiny" and weights.labels == ["noise", "haze", "rain-streaks"]
    assert weights.config is not None and weights.config["optim"]["total_iters"] == TOTAL
    ckpt = _load(full_run / "last.ckpt")
    assert all(torch.equal(weights.state[k], ckpt["ema"][k]) for k in ckpt["ema"])
    for name in ("final.safetensors", "best.safetensors", "last.ckpt"):
        restorer = load_restorer(str(full_run / name))
        restored = restorer.restore(odd_photo)
        assert restored.shape == odd_photo.shape and restored.min() >= 0 and restored.max() <= 1
    assert restorer.name == "last"


def test_ddp_two_processes_on_cpu(tiny_data: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import pathlib, sys\nfrom uir.config import load_config\nfrom uir.train import train\n"
        "result = train(load_config(sys.argv[1]), sys.argv[2], progress=False)\n"
        "pathlib.Path(sys.argv[3], f'rank{result.rank}').write_text(str(result.step))\n"
    )
    env = {**os.environ, "UIR_DATA_ROOT": str(tiny_data), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [*command, str(script), str(CONFIG), str(run_dir), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == [str(TOTAL)] * 2
    state = _load(run_dir / "last.ckpt")
    assert state["step"] == TOTAL and state["sampler"]["world_size"] == 2 and len(state["rng"]) == 2
    assert (run_dir / "final.safetensors").is_file()


def test_a_loader_worker_runs_one_opencv_thread() -> None:
    """OpenCV's default pool (one thread per core) in each of N loader workers oversubscribes the machine N-fold
    (issue 19: it starved a 16-core GPU host); the worker init sets one thread. Run in a child process: the init
    also makes its process ignore SIGTERM and Ctrl-C."""
    code = (
        "import cv2; from uir.build import _leave_stop_signals_to_the_main_process as init; "
        "cv2.setNumThreads(4); init(0); print(cv2.getNumThreads())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "1"


def test_ema_moves_floating_tensors_by_one_minus_decay_and_copies_the_rest() -> None:
    from uir.train import update_ema

    ema, model = torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    for module, value in ((ema, 0.0), (model, 1.0)):
        for tensor in module.state_dict().values():
            tensor.fill_(value) if tensor.is_floating_point() else tensor.fill_(int(value * 7))
    update_ema(ema, model, 0.9)
    for key, tensor in ema.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, torch.full_like(tensor, 0.1)), key
        else:
            assert int(tensor) == 7, key  # num_batches_tracked: copied


def test_val_curves_puts_runs_side_by_side_with_their_gaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curves = load_script("val_curves")
    header = "step,loss,psnr/noise,psnr/mean\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "log.csv").write_text(header + "50,0.1,,\n100,0.1,20,21.5\n200,0.1,21,22\n200,0.1,21,22.25\n")
    (tmp_path / "b.csv").write_text(header + "100,0.1,19,21\n300,0.1,22,23\n")
    curves.main([str(tmp_path / "a"), f"{tmp_path / 'b.csv'}:scratch"])
    lines = capsys.readouterr().out.splitlines()
    name = f"{tmp_path.name}/a"
    assert lines[0] == f"| step | {name} | scratch | {name} − scratch |"
    assert lines[2:] == ["| 100 | 21.50 | 21.00 | +0.50 |", "| 200 | 22.25 |  |  |", "| 300 |  | 23.00 |  |"]
    with pytest.raises(SystemExit, match=r"no column 'psnr/haze' \(validation columns: psnr/noise, psnr/mean\)"):
        curves.main([str(tmp_path / "a"), "--key", "psnr/haze"])
    with pytest.raises(SystemExit, match="no such file"):
        curves.main([str(tmp_path / "missing")])


def test_train_hours_sums_the_logged_speeds_and_rejects_what_is_not_a_log(tmp_path: Path) -> None:
    from uir.runlog import median_rate, read_log, train_seconds

    hours = load_script("train_hours")
    log = tmp_path / "log.csv"
    log.write_text("step,loss,it_per_s\n100,0.1,2\n200,0.1,\n400,0.1,4\n")
    assert hours.hours(log) == (400, (50 + 50) / 3600)  # the row without a speed adds no time
    assert read_log(tmp_path) == read_log(log)
    assert train_seconds(read_log(log)) == 100
    assert median_rate(read_log(log)) == 4.0  # the first row with a speed (start-up) is left out
    assert median_rate([{"it_per_s": "1"}, {"it_per_s": "5"}, {"it_per_s": "2"}, {"it_per_s": "3"}]) == 3.0
    assert median_rate([{"it_per_s": "1"}]) is None
    assert hours.hours(log, median=True) == (400, 400 / 4.0 / 3600)  # steps at the median speed
    (tmp_path / "one.csv").write_text("step,it_per_s\n100,2\n")
    with pytest.raises(SystemExit, match="too few logged speeds"):
        hours.hours(tmp_path / "one.csv", median=True)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="not a uir training log"):
        hours.hours(tmp_path / "other.csv")
    (tmp_path / "header.csv").write_text("step,it_per_s\n")
    with pytest.raises(UirError, match="no rows logged yet"):
        read_log(tmp_path / "header.csv")
