"""The one CLI: subcommands, class listing, composition, interpolation, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo", *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=300)


def test_fit_help_lists_datamodules_and_models():
    proc = run_cli("fit", "--help")
    assert proc.returncode == 0, proc.stderr
    for name in ("LJSpeechDataModule", "CMUArcticDataModule", "MNISTDataModule", "VAE"):
        assert name in proc.stdout


def test_print_config_composes_configs_and_interpolates(tmp_path, capsys):
    override = tmp_path / "override.yaml"
    override.write_text(
        "data:\n  init_args:\n    batch_size: 7\n"
        "model:\n  init_args:\n    net:\n      latent_dim: ${data.init_args.batch_size}\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs" / "vae_mnist.yaml"), "--config", str(override),
              "--model.init_args.training.lr", "0.005", "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["init_args"]["batch_size"] == 7  # the second config overrides the first
    assert printed["model"]["init_args"]["net"]["latent_dim"] == 7  # OmegaConf interpolation
    assert printed["model"]["init_args"]["training"]["lr"] == 0.005  # command line overrides both
    assert printed["trainer"]["use_distributed_sampler"] is False  # the zoo's DataModules shard themselves


def test_unknown_key_and_wrong_type_fail_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  init_args:\n    latnet_dim: 3\n")
    proc = run_cli("fit", "--config", "configs/vae_mnist.yaml", "--config", str(bad))
    assert proc.returncode != 0
    assert "latnet_dim" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("fit", "--config", "configs/vae_mnist.yaml", "--data.init_args.batch_size", "many")
    assert proc.returncode != 0
    assert "batch_size" in proc.stderr and "Traceback" not in proc.stderr
    # a value of the right type that its block's config refuses: one line naming the config and the field
    proc = run_cli("fit", "--config", "configs/wavenet_mol.yaml", "--model.init_args.net.gate_channels", "7",
                   "--data.init_args.source", "embedded", "--data.init_args.root", str(tmp_path / "data"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: WaveNetConfig.gate_channels must be even" in proc.stderr


def test_missing_data_is_one_clear_line_naming_the_offline_switch(tmp_path):
    proc = run_cli("fit", "--config", str(ROOT / "configs" / "vae_mnist.yaml"), "--data.root", str(tmp_path / "none"),
                   "--data.download", "false", "--trainer.logger", "false", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--data.source embedded" in proc.stderr and "Traceback" not in proc.stderr
