"""What every ``python -m zoo reproduce NAME`` shares: one training stage through the zoo CLI, its CSV metrics,
its W&B run ids."""

from __future__ import annotations

import argparse
import copy
import csv
import sys
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
PRESET_DIR = CONFIG_DIR / "presets"


def preset_names(config_name: str) -> list[str]:
    """The presets of ``configs/<config_name>.yaml``: the files ``configs/presets/<config_name>/*.yaml``."""
    return sorted(p.stem for p in (PRESET_DIR / config_name).glob("*.yaml"))


def load_preset(config_name: str, preset: str) -> dict:
    """``configs/presets/<config_name>/<preset>.yaml``: an override config (trainer, model and data blocks) that
    ``python -m zoo fit --config configs/<config_name>.yaml --config <it>`` also accepts."""
    path = PRESET_DIR / config_name / f"{preset}.yaml"
    if not path.is_file():
        raise ValueError(f"preset must be one of {preset_names(config_name)} for {config_name}, but got {preset!r}")
    return yaml.safe_load(path.read_text()) or {}


def reproduce_parser(name: str, doc: str | None, presets: Sequence[str], out_help: str) -> argparse.ArgumentParser:
    """The options every ``python -m zoo reproduce NAME`` takes: ``--preset`` (one of ``presets``, default demo) and
    ``--out`` (the report folder); a command adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m zoo reproduce {name}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(presets), default="demo",
                        help=f"configs/presets/...: {', '.join(presets)} (default: demo)")
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    return parser


def merge_configs(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` the way the CLI composes ``--config`` files: dicts key by key, anything else
    (lists, values) replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge_configs(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else (
            copy.deepcopy(value))
    return out


def set_aside_previous_run(run_dir: Path) -> Path | None:
    """Move a previous run of a stage out of the way (to ``RUN_DIR.replaced-<time>``) before it is trained again, and
    say so; returns where it went, or None if there was none.

    Trained again in place, the old ``checkpoints/last.ckpt`` would stay and the new one be written as
    ``last-v1.ckpt``, so the chain would go on from, and score, the old run's weights. Nothing is deleted."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, suffix = run_dir.with_name(f"{run_dir.name}.replaced-{stamp}"), 1
    while aside.exists():
        aside, suffix = run_dir.with_name(f"{run_dir.name}.replaced-{stamp}-{suffix}"), suffix + 1
    run_dir.rename(aside)
    print(f"{run_dir} held a previous run of this stage; it is now {aside}", file=sys.stderr)
    return aside


def fit_stage(config: Path, overrides: dict, run_dir: Path, extra_args: Sequence[str] = ()) -> float:
    """One training stage: the zoo CLI built over ``--config CONFIG --config RUN_DIR/overrides.yaml [EXTRA_ARGS]``
    (``ZooCLI(run=False)``, so exactly what ``python -m zoo fit`` with those files would build), then
    ``trainer.fit``; returns the seconds.

    The override file, written beside the stage's results, holds the stage's settings, and the CLI saves the whole
    resolved config (``config.yaml``) in its log folder. A WandbLogger's run is finished afterwards, else the next
    stage's logger would reuse it."""
    from zoo.cli import build_cli, user_errors

    set_aside_previous_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    override_file = run_dir / "overrides.yaml"
    override_file.write_text(yaml.safe_dump(overrides, sort_keys=False))
    start = time.perf_counter()
    with user_errors():
        cli = build_cli(["--config", str(config), "--config", str(override_file), *extra_args], run=False)
        cli.before_fit()
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    loggers = overrides.get("trainer", {}).get("logger") or []
    if any("WandbLogger" in lg.get("class_path", "") for lg in (loggers if isinstance(loggers, list) else [loggers])):
        import wandb

        wandb.finish()
    return seconds


def _fit_stage_in_worker(config: Path, overrides: dict, run_dir: Path, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    try:
        return fit_stage(config, overrides, run_dir)
    except SystemExit as err:  # a user error, already printed in one line by this process: name the stage
        raise RuntimeError(f"stage {run_dir.name} stopped (exit status {err.code}): its error is printed above") from None


def fit_stages_side_by_side(jobs: Sequence[tuple[Path, dict, Path]]) -> list[float]:
    """Independent stages (``fit_stage``'s ``(config, overrides, run_dir)`` each) trained at the same time, one
    process per stage with an equal share of the CPU's threads; returns each stage's seconds. Small recurrent models
    keep about one core busy whatever their thread count, so on a CPU two of them side by side take about the time
    of one (``docs/results/attention-distillation/cpu-budget.md``). Every stage runs to its end; then the first failure
    is raised."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // len(jobs))
    with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_fit_stage_in_worker, config, overrides, run_dir, threads)
                   for config, overrides, run_dir in jobs]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


def stage_datamodule(config: Path, overrides: dict, prepare: bool = False, **fixed: Any) -> Any:
    """The DataModule a stage trained on, for its evaluation: the ``data:`` block of ``config`` (class and arguments)
    with the stage's override ``data:`` merged over it, as ``fit_stage`` gives them to the CLI, then ``fixed``
    arguments; an ``audio`` dict becomes an ``AudioConfig``. Set up for fit (its data prepared first) with
    ``prepare``, else not set up."""
    import importlib

    from zoo.audio import AudioConfig

    spec = yaml.safe_load(Path(config).read_text()).get("data") or {}
    override = overrides.get("data") or {}
    class_path = override.get("class_path") or spec.get("class_path")
    if not class_path:
        raise ValueError(f"{config} names no data class_path, and the overrides give none")
    # the config's arguments belong to its own class: a stage that swaps the class (WaveNet on ARCTIC) gives its own
    base = (spec.get("init_args") or {}) if class_path == spec.get("class_path") else {}
    args = {**copy.deepcopy(base), **copy.deepcopy(override.get("init_args") or {}), **fixed}
    if isinstance(args.get("audio"), dict):
        args["audio"] = AudioConfig(**args["audio"])
    module, name = class_path.rsplit(".", 1)
    dm = getattr(importlib.import_module(module), name)(**args)
    if prepare:
        dm.prepare_data()
        dm.setup("fit")
    return dm


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``RUN_DIR/csv/metrics.csv`` (the CSVLogger of a stage), empty cells left out."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def wandb_ids(run_dir: Path) -> list[str]:
    """The ids of the W&B runs (offline or online) a stage left under ``RUN_DIR/wandb``."""
    return sorted(p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("*run-*") if p.is_dir())


def stage_loggers(run_dir: Path, wandb_name: str, wandb: bool) -> list[dict]:
    """A stage's loggers as override config: CSV under ``RUN_DIR/csv`` (what the report reads), plus W&B (offline
    unless credentials are configured) under ``RUN_DIR/wandb`` when ``wandb``."""
    loggers: list[dict] = [{"class_path": "lightning.pytorch.loggers.CSVLogger",
                            "init_args": {"save_dir": str(run_dir), "name": "csv", "version": ""}}]
    if wandb:
        loggers.append({"class_path": "lightning.pytorch.loggers.WandbLogger",
                        "init_args": {"project": "zoo", "name": wandb_name, "save_dir": str(run_dir)}})
    return loggers


def natural_16k(path: Path, sample_rate: int):
    """A natural recording band-limited to ``sample_rate`` (resampled down and back up to the scorer's 16 kHz)."""
    import librosa

    from zoo.audio import load_wav
    from zoo.evaluation import SAMPLE_RATE

    wav = load_wav(path, sample_rate).double().numpy()
    return wav if sample_rate == SAMPLE_RATE else librosa.resample(wav, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
