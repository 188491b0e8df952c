"""Every YAML in configs/ parses, and a fast_dev_run-sized fit of it passes on the embedded corpus (CPU).

Two training batches and one validation batch rather than ``fast_dev_run``: Lightning counts every optimiser's
step towards ``max_steps``, so ``fast_dev_run`` would stop a GAN inside its first batch, before validation and
its media callbacks ever run.
"""

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


# Published-size autoregressive speech models cost tens of seconds per step on a CPU (Tacotron 2's 1024-unit LSTMs
# run once per decoder frame). By default their YAML is fitted with these tiny sizes (data, links and callbacks
# as written); the published sizes run with ``-m slow``.
TINY = {
    "tacotron2": ["--data.init_args.batch_size", "4", "--model.init_args.net.encoder.embedding_dim", "16", "--model.init_args.net.encoder.conv_channels", "16",
                  "--model.init_args.net.encoder.lstm_hidden", "8", "--model.init_args.net.decoder.attention_rnn_dim", "32",
                  "--model.init_args.net.decoder.decoder_rnn_dims", "[32]", "--model.init_args.net.decoder.prenet_sizes", "[16, 16]",
                  "--model.init_args.net.decoder.attention_dim", "16", "--model.init_args.net.postnet.channels", "16"],
    "tacotron": ["--data.init_args.batch_size", "4", "--model.init_args.net.encoder.embedding_dim", "16", "--model.init_args.net.encoder.prenet_sizes", "[16, 16]",
                 "--model.init_args.net.encoder.channels", "16", "--model.init_args.net.encoder.gru_hidden", "8",
                 "--model.init_args.net.decoder.prenet_sizes", "[16, 16]", "--model.init_args.net.decoder.attention_rnn_dim", "32",
                 "--model.init_args.net.decoder.decoder_rnn_dims", "[32, 32]", "--model.init_args.net.decoder.attention_dim", "16",
                 "--model.init_args.net.postnet.channels", "16", "--model.init_args.net.postnet.projection", "32",
                 "--model.init_args.net.postnet.gru_hidden", "8"],
}
_VC_TINY = ["--data.init_args.batch_size", "4", "--model.init_args.net.encoder.hidden", "8", "--model.init_args.net.decoder.prenet_sizes", "[8, 8]",
            "--model.init_args.net.decoder.attention_rnn_dim", "16", "--model.init_args.net.decoder.decoder_rnn_dims", "[16]",
            "--model.init_args.net.decoder.attention_dim", "8", "--model.init_args.net.postnet.channels", "8", "--model.init_args.training.mcd_max_utterances", "2",
            "--model.init_args.training.max_decoder_frames", "20"]
# the VC configs use the standard ARCTIC split, whose dev and eval prompts (b0340-b0539) the 100-prompt embedded
# corpus does not have: the tests split it seeded
_SEEDED = ["--data.init_args.split", "seeded"]
TINY.update({"vc_teacher_pretrain": _VC_TINY, "vc_teacher": _VC_TINY + _SEEDED, "vc_distill": _VC_TINY + _SEEDED})
# Arguments a config cannot run without: vc_distill needs a trained teacher, so here it runs as its documented
# no-distillation baseline (the distillation path is fitted end to end by tests/test_vc.py's reproduce test).
REQUIRED = {"vc_distill": ["--model.init_args.training.teacher_checkpoint", "null", "--model.init_args.training.distill_weight", "0", *_SEEDED],
            "vc_teacher": _SEEDED}
CASES = [pytest.param(c, TINY.get(c.stem, []) + REQUIRED.get(c.stem, []), id=c.stem) for c in CONFIGS] + [
    pytest.param(c, REQUIRED.get(c.stem, []), id=f"{c.stem}-published", marks=pytest.mark.slow) for c in CONFIGS if c.stem in TINY
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
