"""Mutation check of the test suite: break the code on purpose, one way at a time, and expect the tests to fail.

Each mutant below is a small, realistic bug (a tile blend lost, a random state not restored on resume, a cache key
that forgets the weights...) written as an exact text replacement in one source file, with the tests that guard
that behaviour. The script copies the work tree into a temporary folder (the checkout itself is never touched),
checks that the guarding tests pass on the unmutated copy, then applies each mutant in turn and runs its tests:
a mutant is *caught* when they fail (pytest exit code 1), *missed* when they pass. A mutant whose text is no longer
in its file is an error: the code moved and this list must follow it.

Usage:
    python scripts/mutants.py            # every mutant; exit 0 only if every one is caught
    python scripts/mutants.py --list     # what each mutant breaks
    python scripts/mutants.py tile-blend resume-rng   # some of them

``make mutants`` runs it (CI runs it after ``make test``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the copy leaves out: the environment, caches and outputs (tests build what they need in tmp folders).
IGNORE = shutil.ignore_patterns(".git", ".venv", "runs", "out", ".data", "__pycache__", ".pytest_cache", ".ruff_cache")


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: in ``file``, the text ``old`` (found exactly once) becomes ``new``; ``tests`` catch it."""

    name: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant(
        "tone-guard-both-ways",
        "the no-brightening guard also brightens outputs back up (so dehazing and deraining are undone)",
        "src/uir/restore.py",
        "    gain = ((1 + tolerance) * (in_luma + 1e-5) / (out_luma + 1e-5)).clamp(max=1.0)\n",
        "    gain = (in_luma + 1e-5) / (out_luma + 1e-5)\n",
        ("tests/test_tone.py::test_no_brightening_undoes_a_brightening_and_keeps_a_darkening",),
    ),
    Mutant(
        "strength-auto-ignores-task",
        "--strength auto leaves clean-looking photos untouched even when the user named what is wrong with them",
        "src/uir/api.py",
        'return plan.clean is not None and plan.clean >= confidence and plan.tone != "free"',
        'return (plan.clean or 1.0) >= confidence and plan.tone != "free"',
        ("tests/test_strength.py::test_auto_leaves_what_looks_clean_and_changes_little_as_it_is",),
    ),
    Mutant(
        "strength-auto-trusts-the-analysis-alone",
        "--strength auto leaves a clean-looking photo as it is even when the model changes it much (faint haze)",
        "src/uir/api.py",
        "    if change >= SMALL_CHANGE_DB:\n",
        "    if change >= 0:\n",
        ("tests/test_strength.py::test_auto_leaves_what_looks_clean_and_changes_little_as_it_is",),
    ),
    Mutant(
        "companion-takes-rain",
        "photos the analysis finds most likely rainy go to the fine-damage companion, which leaves the rain",
        "src/uir/api.py",
        '        return plan.tone != "free" and plan.hint not in FINE_ROUTE_KEEPS\n',
        '        return plan.tone != "free"\n',
        ("tests/test_companion.py::test_rain_named_coarse_damage_and_underexposed_photos_stay_with_the_model",),
    ),
    Mutant(
        "companion-tone-unguarded",
        "the companion's output comes back without the tone guard's keep (its exposure drift kept)",
        "src/uir/inspection.py",
        '    return guard_tone(restore_tensor(denoiser, image, **kwargs), image, "keep")\n',
        "    return restore_tensor(denoiser, image, **kwargs)\n",
        (
            "tests/test_companion.py::test_a_photo_the_model_changes_little_goes_to_the_companion_with_its_tone_kept",
            "tests/test_companion.py::"
            "test_the_grain_of_a_large_photo_is_read_on_its_centre_and_the_companion_runs_whole_only_if_chosen",
        ),
    ),
    Mutant(
        "grain-ignored",
        "a clean-looking photo with grain in its flat parts is left as it is (real noisy photos called clean)",
        "src/uir/api.py",
        "    return plan.hint == CLEAN and plan.grain is not None and GRAIN_FLOOR <= plan.grain <= GRAIN_CEILING\n",
        "    return False\n",
        (
            "tests/test_companion.py::"
            "test_a_clean_looking_photo_with_grain_goes_to_the_companion_however_much_the_model_changes_it",
        ),
    ),
    Mutant(
        "dark-clean-restored",
        "a dark photo that looks clean is restored when the model changes it much (taken for a hazy one)",
        "src/uir/api.py",
        "        dark = plan.mean_luminance is not None and plan.mean_luminance < DARK_CLEAN_MEAN\n",
        "        dark = False\n",
        (
            "tests/test_companion.py::"
            "test_a_dark_clean_looking_photo_is_left_as_it_is_however_much_the_model_changes_it",
        ),
    ),
    Mutant(
        "blur-change-as-any",
        "a soft photo called motion-blurred that the model sharpens by 30-35 dB stays with the model",
        "src/uir/api.py",
        "    return change >= (BLUR_SMALL_CHANGE_DB if blurred else SMALL_CHANGE_DB)\n",
        "    return change >= SMALL_CHANGE_DB\n",
        (
            "tests/test_companion.py::"
            "test_a_photo_called_motion_blurred_that_the_model_changes_by_less_than_35_db_goes_to_the_companion",
        ),
    ),
    Mutant(
        "weigh-own-rule",
        "the route benchmark decides when the companion runs by its own copy of the rule (the 35 dB bound only)",
        "benchmarks/fine_companion.py",
        "    ran = runs_companion(plan, change)  # as restore_planned runs it\n",
        "    ran = fine_route(plan) and (change >= SMALL_CHANGE_DB or plan.hint == CLEAN)\n",
        ("tests/test_companion.py::test_the_route_benchmark_weighs_a_csv_row_as_restore_planned_decides",),
    ),
    Mutant(
        "cascade-everywhere",
        "the route benchmark's cascade column replaces the companion's figure for grainy clean-looking photos too",
        "benchmarks/fine_companion.py",
        '                    if gate[0] == CASCADE and by == "companion" and not _grainy_clean(r):  # rule 3\n',
        '                    if gate[0] == CASCADE and by == "companion":\n',
        ("tests/test_companion.py::test_the_route_benchmark_weighs_the_cascade_and_other_clean_confidences",),
    ),
    Mutant(
        "cascade-for-the-left",
        "the route benchmark's cascade column replaces the figure of photos the route leaves as they are too",
        "benchmarks/fine_companion.py",
        '                    if gate[0] == CASCADE and by == "companion" and not _grainy_clean(r):  # rule 3\n',
        "                    if gate[0] == CASCADE and not _grainy_clean(r):  # rule 3\n",
        ("tests/test_companion.py::test_the_route_benchmark_weighs_the_cascade_and_other_clean_confidences",),
    ),
    Mutant(
        "weigh-confidence-ignored",
        "the route benchmark's --clean-confidence columns use the shipped threshold whatever is asked",
        "benchmarks/fine_companion.py",
        "                    out, by = api_route(r, path, gate[1])\n",
        "                    out, by = api_route(r, path)\n",
        ("tests/test_companion.py::test_the_route_benchmark_weighs_the_cascade_and_other_clean_confidences",),
    ),
    Mutant(
        "grain-no-ceiling",
        "heavy noise on a clean-looking photo goes to the companion, which is behind the model there",
        "src/uir/api.py",
        "    return plan.hint == CLEAN and plan.grain is not None and GRAIN_FLOOR <= plan.grain <= GRAIN_CEILING\n",
        "    return plan.hint == CLEAN and plan.grain is not None and GRAIN_FLOOR <= plan.grain\n",
        (
            "tests/test_companion.py::"
            "test_a_clean_looking_photo_with_grain_goes_to_the_companion_however_much_the_model_changes_it",
        ),
    ),
    Mutant(
        "grain-from-texture",
        "the grain is read where the image is most textured (fine texture taken for grain)",
        "src/uir/metrics/estimates.py",
        "        flattest = t.argsort()[: max(1, int(share * len(t)))]\n",
        "        flattest = t.argsort(descending=True)[: max(1, int(share * len(t)))]\n",
        ("tests/test_metrics.py::test_residual_grain_counts_what_is_taken_from_flat_parts_not_from_texture",),
    ),
    Mutant(
        "analysis-no-temperature",
        "the calibrated analysis forgets its temperature (probabilities no longer calibrated)",
        "src/uir/methods/analysis.py",
        "        return (z @ self.weight.T + self.bias) / self.temperature, severity\n",
        "        return z @ self.weight.T + self.bias, severity\n",
        ("tests/test_analysis.py",),
    ),
    Mutant(
        "underexposed-either-cue",
        "a photo is called underexposed on either cue (a dark photo, or a classifier's guess), not on both",
        "src/uir/inspection.py",
        "    return low_light_probability(probs) >= LOW_LIGHT_CONFIDENCE and luminance < LOW_LIGHT_MEAN\n",
        "    return low_light_probability(probs) >= LOW_LIGHT_CONFIDENCE or luminance < LOW_LIGHT_MEAN\n",
        (
            "tests/test_tone.py::test_underexposure_needs_both_cues",
            "tests/test_tone.py::test_auto_brightens_only_what_the_analysis_calls_underexposed",
        ),
    ),
    Mutant(
        "pairs-partial",
        "pairs without a partner are dropped silently, so a score is taken on part of the set",
        "src/uir/data/layouts.py",
        "    if unmatched:\n        names = ",
        "    if False:\n        names = ",
        ("tests/test_tone.py::test_pairs_that_do_not_pair_are_refused",),
    ),
    Mutant(
        "icnr-off",
        "ICNR initialisation leaves the pixel-shuffle convs as they were (four independent sub-pixel phases)",
        "src/uir/models/layers.py",
        "    conv.weight.copy_(base.weight.repeat_interleave(groups, dim=0))\n",
        "    pass\n",
        ("tests/test_backbones.py::test_icnr_starts_every_pixel_shuffle_as_nearest_neighbour_upsampling",),
    ),
    Mutant(
        "artifact-mean-of-ratios",
        "the artifact score averages per-image ratios, which one near-zero reference dominates",
        "src/uir/metrics/artifacts.py",
        '    return total_out / total_ref if total_ref > 0 else float("nan")',
        "    return sum(o / r for o, r in zip(outputs, references, strict=True)) / len(list(references))",
        ("tests/test_metrics.py::test_artifact_score_finds_a_faint_grid_and_nothing_else",),
    ),
    Mutant(
        "artifact-no-highpass",
        "the artifact score takes the phase means of the image itself, so smooth ramps leak into it",
        "src/uir/metrics/artifacts.py",
        "    high = x[..., : smooth.shape[-2], : smooth.shape[-1]] - smooth\n",
        "    high = x[..., : smooth.shape[-2], : smooth.shape[-1]]\n",
        ("tests/test_metrics.py::test_artifact_score_finds_a_faint_grid_and_nothing_else",),
    ),
    Mutant(
        "noise-all-patches",
        "the noise estimate keeps its first pass over every patch, texture included",
        "src/uir/metrics/estimates.py",
        "def noise_sigma(img: Tensor, patch: int = 7, iterations: int = 3) -> Tensor:",
        "def noise_sigma(img: Tensor, patch: int = 7, iterations: int = 0) -> Tensor:",
        ("tests/test_metrics.py::test_noise_sigma_reads_the_noise_added_to_a_photo",),
    ),
    Mutant(
        "jpeg-smallest-step",
        "the JPEG step reader keeps the first comb that fits (a divisor of the step) instead of the largest",
        "src/uir/metrics/estimates.py",
        "            found = q\n",
        "            found = q if found == 1 else found\n",
        ("tests/test_metrics.py::test_jpeg_quality_is_read_from_pixels_at_any_grid_offset_and_from_files",),
    ),
    Mutant(
        "worker-opencv-threads",
        "loader workers keep OpenCV's thread pool (one thread per core each)",
        "src/uir/build.py",
        "    cv2.setNumThreads(1)\n",
        "    pass\n",
        ("tests/test_train.py::test_a_loader_worker_runs_one_opencv_thread",),
    ),
    Mutant(
        "campaign-warm-step",
        "a campaign's warm restart starts again at step 0 instead of the fallback's step",
        "scripts/campaign.py",
        '    trainer.step = campaign["step"]\n',
        "    pass\n",
        ("tests/test_campaign.py",),
    ),
    Mutant(
        "tile-blend",
        "overlapping tiles are averaged plainly instead of blended with raised-cosine weights",
        "src/uir/restore.py",
        "        w[:n] = rise\n        w[length - n :] = rise.flip(0)\n",
        "        pass\n",
        ("tests/test_restore.py",),
    ),
    Mutant(
        "tile-no-overlap",
        "tiles are laid side by side: the overlap is ignored",
        "src/uir/restore.py",
        "stride = max(1, tile - overlap)",
        "stride = tile",
        ("tests/test_restore.py",),
    ),
    Mutant(
        "resume-rng",
        "a resumed run does not restore the random states it saved",
        "src/uir/train.py",
        "        set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])\n",
        "        del rngs\n",
        ("tests/test_resume.py", "tests/test_train.py"),
    ),
    Mutant(
        "resume-best",
        "a resumed run forgets the best validation PSNR so far",
        "src/uir/train.py",
        'self.step, self.best_psnr = int(state["step"]), float(state["best_psnr"])',
        'self.step = int(state["step"])',
        ("tests/test_resume.py", "tests/test_train.py"),
    ),
    Mutant(
        "onnx-cache-key",
        "the ONNX cache's name does not depend on the weights: new weights run the old export",
        "src/uir/export.py",
        "        digest.update(source.read_bytes())\n",
        "        pass\n",
        ("tests/test_export.py",),
    ),
    Mutant(
        "onnx-check-self",
        "the export check compares torch with torch instead of with onnxruntime",
        "src/uir/export.py",
        "onnx_time, restored = _median_time(lambda: session.restore(lq), runs)",
        "onnx_time, restored = _median_time(lambda: backbone(lq).clamp(0, 1), runs)",
        ("tests/test_export.py",),
    ),
    Mutant(
        "model-is-box-blur",
        "the shipped model's restore is a 3x3 box blur (a trivial filter must not pass the restoring tests)",
        "src/uir/pretrained.py",
        "        return (restored / len(dims)).clamp(0.0, 1.0).to(lq.device, lq.dtype)\n",
        "        return torch.nn.functional.avg_pool2d(lq, 3, 1, 1, count_include_pad=False)\n",
        ("tests/test_shipped.py", "tests/test_api.py"),
    ),
    Mutant(
        "model-is-stretch",
        "the shipped model's restore is a min-max contrast stretch",
        "src/uir/pretrained.py",
        "        return (restored / len(dims)).clamp(0.0, 1.0).to(lq.device, lq.dtype)\n",
        "        low, high = lq.amin((1, 2, 3), keepdim=True), lq.amax((1, 2, 3), keepdim=True)\n"
        "        return (lq - low) / (high - low).clamp_min(1e-6)\n",
        ("tests/test_shipped.py", "tests/test_api.py"),
    ),
    Mutant(
        "truncated-jpeg-accepted",
        "a JPEG cut short and closed by an end marker decodes as grey (a 776-byte file announcing 36 MP)",
        "src/uir/io.py",
        "            _check_jpeg_length(data)\n        pil = Image.open(",
        "            pass\n        pil = Image.open(",
        ("tests/test_io.py", "tests/test_serve.py"),
    ),
    Mutant(
        "jpeg-restart-ends-scan",
        "the JPEG length check takes a restart marker for the end of a scan (valid JPEGs refused as truncated)",
        "src/uir/io.py",
        '_JPEG_MARKER = re.compile(rb"\\xff[\\x01-\\xcf\\xd8-\\xfe]")',
        '_JPEG_MARKER = re.compile(rb"\\xff[\\x01-\\xfe]")',
        ("tests/test_io.py",),
    ),
    Mutant(
        "jpeg-segments-unbounded",
        "a JPEG of millions of empty segments is walked to its end (seconds of CPU in the server)",
        "src/uir/io.py",
        "        if segments > _MAX_JPEG_SEGMENTS:",
        "        if False:",
        ("tests/test_io.py", "tests/test_serve.py"),
    ),
    Mutant(
        "serve-reads-body-when-busy",
        "uir serve takes a pool place only after reading the upload (a busy server receives every upload)",
        "src/uir/serve/guards.py",
        'if scope["type"] != "http" or scope["method"] != "POST" or path not in self.paths:',
        "if True:",
        ("tests/test_serve.py",),
    ),
    Mutant(
        "tiles-ignore-stop",
        "a running restore is not stopped between tiles (time limit, client gone, Ctrl-C)",
        "src/uir/restore.py",
        "            check()\n            piece = fn(",
        "            piece = fn(",
        ("tests/test_serve.py",),
    ),
    Mutant(
        "serve-any-host",
        "uir serve on loopback answers to any Host name (DNS rebinding)",
        "src/uir/serve/guards.py",
        "if self.allowed is not None and host_name(host) not in self.allowed:",
        "if False:",
        ("tests/test_serve.py",),
    ),
    Mutant(
        "output-name-escapes",
        "an input named '..png' is written beside the output folder, not inside it",
        "src/uir/commands/_batch.py",
        'base = path.stem if path.stem.strip(". ") else "image"',
        "base = path.stem",
        ("tests/test_batch.py", "tests/test_restore.py"),
    ),
)


def _run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[int, str, float]:
    """pytest on ``tests`` inside ``tree`` (its ``src`` first on the path); exit code, last line, seconds."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", "-n", "2", *tests]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, (lines[-1] if lines else done.stderr.strip()[-200:]), time.perf_counter() - start


def _apply(tree: Path, mutant: Mutant) -> str:
    """Write the mutant into ``tree``; returns the original text of its file."""
    path = tree / mutant.file
    text = path.read_text(encoding="utf-8")
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(
            f"mutants: {mutant.name}: its text occurs {count} times in {mutant.file} (expected once); "
            "the code moved: update scripts/mutants.py"
        )
    path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTANTS}
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:26s} {m.what}  [{m.file}; {' '.join(m.tests)}]")
        return 0
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"mutants: unknown {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[n] for n in args.names] if args.names else list(MUTANTS)
    with tempfile.TemporaryDirectory(prefix="uir-mutants-") as folder:
        tree = Path(folder) / "tree"
        shutil.copytree(ROOT, tree, ignore=IGNORE)
        guards = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, last, seconds = _run_tests(tree, guards)
        print(f"unmutated: {last} ({seconds:.0f} s)", flush=True)
        if code != 0:
            print("mutants: the guarding tests fail on the unmutated code; fix them first", file=sys.stderr)
            return 2
        missed = []
        for mutant in chosen:
            original = _apply(tree, mutant)
            try:
                code, last, seconds = _run_tests(tree, mutant.tests)
            finally:
                (tree / mutant.file).write_text(original, encoding="utf-8")
            verdict = "caught" if code == 1 else "MISSED" if code == 0 else f"ERROR (pytest exit {code})"
            print(f"{mutant.name:26s} {verdict:8s} {seconds:5.0f} s  {last}", flush=True)
            if code != 1:
                missed.append(mutant.name)
    if missed:
        print(f"mutants: {len(missed)} of {len(chosen)} not caught: {', '.join(missed)}", file=sys.stderr)
        return 1
    print(f"mutants: all {len(chosen)} caught")
    return 0


if __name__ == "__main__":
    sys.exit(main())
