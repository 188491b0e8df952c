"""Every YAML in configs/ parses, and a fast_dev_run-sized fit of it passes on the embedded corpus (CPU).

Two training batches and one validation batch rather than ``fast_dev_run``: Lightning counts every optimiser's
step towards ``max_steps``, so ``fast_dev_run`` would stop a GAN inside its first batch, before validation and
its media callbacks ever run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.families import REQUIRED, fit_args, has_tiny
from zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS, "configs/ holds no YAML"


@pytest.fixture
def data_root(embedded_data: Path) -> Path:
    return embedded_data  # the session's embedded corpora (tests/conftest.py), built once


# Published-size autoregressive speech models cost tens of seconds per step on a CPU (Tacotron 2's 1024-unit LSTMs
# run once per decoder frame). By default a config with a test size (tests/tiny/<config>.yaml, the registry of
# tests/families.py) is fitted at it (data, links and callbacks as written); the sizes as written run with ``-m slow``.
CASES = [pytest.param(c, fit_args(c.stem), id=c.stem) for c in CONFIGS] + [
    pytest.param(c, REQUIRED.get(c.stem, []), id=f"{c.stem}-published", marks=pytest.mark.slow)
    for c in CONFIGS if has_tiny(c.stem)
]


@pytest.mark.parametrize(("config", "overrides"), CASES)
def test_config_fast_dev_run(config: Path, overrides: list[str], data_root: Path, tmp_path: Path):
    main(["fit", "--config", str(config), *overrides, "--data.init_args.source", "embedded", "--data.init_args.root", str(data_root),
          "--trainer.max_epochs", "1", "--trainer.max_steps", "-1", "--trainer.max_time", "null",
          "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
          "--trainer.logger", "false", "--trainer.accelerator", "cpu",
          "--trainer.devices", "1", "--trainer.default_root_dir", str(tmp_path)])


# --- reproduce presets -------------------------------------------------------------------------------------------
# Every preset is an override config that `python -m zoo fit --config <config> --config <preset>` accepts: the config
# its folder names (configs/presets/<config>/<preset>.yaml), or for folders shared by several configs, these.
PRESET_CONFIGS = {"wavenet": ["wavenet_mol", "wavenet_gaussian"], "vc_teacher_pretrain_lj": ["vc_teacher_pretrain"],
                  "postnet_pix2pix_upstream": ["postnet_pix2pix"],
                  "mnist": sorted(c.stem for c in CONFIGS if c.stem.endswith("_mnist"))}
PRESET_FILES = sorted((ROOT / "configs" / "presets").glob("*/*.yaml"))


def test_there_are_presets_and_no_python_preset_tables():
    import importlib

    assert {p.parent.name for p in PRESET_FILES} >= {"tacotron", "tacotron2", "wavenet", "postnet_pix2pix", "vc_distill", "mnist"}
    for module in ("zoo.reproduce_vc", "zoo.reproduce_wavenet", "zoo.reproduce_postnet", "zoo.reproduce_tacotron",
                   "zoo.reproduce_mnist"):
        assert not isinstance(getattr(importlib.import_module(module), "PRESETS"), dict), module  # names of YAML files


@pytest.mark.parametrize("preset", PRESET_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_preset_is_a_config_fit_accepts(preset: Path, capsys):
    import yaml

    for config in PRESET_CONFIGS.get(preset.parent.name, [preset.parent.name]):
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), "--config", str(preset), "--print_config"])
        assert exit_info.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        written = yaml.safe_load(preset.read_text())
        # every model and data value the preset sets is what fit would run
        for block in ("model", "data"):
            for path, value in _leaves(written.get(block, {}).get("init_args") or {}):
                found = printed[block]["init_args"]
                for key in path:
                    found = found[key]
                assert found == value, (config, block, path)


def _leaves(tree: dict, path: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def test_every_test_size_belongs_to_a_config():
    from tests.families import TINY_DIR

    stems = {c.stem for c in CONFIGS}
    sizes = sorted(p.stem for p in TINY_DIR.glob("*.yaml"))
    assert sizes and set(sizes) <= stems, set(sizes) - stems
