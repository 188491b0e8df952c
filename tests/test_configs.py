"""Every YAML in configs/ parses, and a fast_dev_run-sized fit of it passes on the embedded corpus (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS, "configs/ holds no YAML"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")  # shared, so each embedded corpus is generated once


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_fast_dev_run(config: Path, data_root: Path, tmp_path: Path):
    main(["fit", "--config", str(config), "--data.init_args.source", "embedded", "--data.init_args.root", str(data_root),
          "--trainer.fast_dev_run", "2", "--trainer.logger", "false", "--trainer.accelerator", "cpu",
          "--trainer.default_root_dir", str(tmp_path)])
