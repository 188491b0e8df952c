"""Checkpoints from another experiment or config fail with one clear error naming both sides."""

from __future__ import annotations

import pytest
import torch

from zoo.checkpoints import check_checkpoint_matches
from zoo.errors import CheckpointError
from zoo.models.vae import VAE
from zoo.models.wgan import WGAN


def save(path, model) -> None:
    hp = {"_class_path": f"{type(model).__module__}.{type(model).__qualname__}", **model.hparams}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hp}, path)


def test_matching_checkpoint_passes(tmp_path):
    save(tmp_path / "a.ckpt", VAE(net={"latent_dim": 4, "channels": 4, "hidden": 8}))
    check_checkpoint_matches(tmp_path / "a.ckpt", VAE(net={"latent_dim": 4, "channels": 4, "hidden": 8}))


def test_other_experiment_and_other_sizes_are_named(tmp_path):
    save(tmp_path / "a.ckpt", VAE(net={"latent_dim": 4, "channels": 4, "hidden": 8}))
    with pytest.raises(CheckpointError, match=r"written by zoo\.models\.vae\.VAE.*zoo\.models\.wgan\.WGAN"):
        check_checkpoint_matches(tmp_path / "a.ckpt", WGAN())
    with pytest.raises(CheckpointError, match=r"3 different shapes \(encoder.*checkpoint \(8, 8\) vs model \(12, 8\)"):
        check_checkpoint_matches(tmp_path / "a.ckpt", VAE(net={"latent_dim": 6, "channels": 4, "hidden": 8}))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        check_checkpoint_matches(tmp_path / "none.ckpt", VAE())
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        check_checkpoint_matches(tmp_path / "bad.ckpt", VAE())
    check_checkpoint_matches("last", VAE())  # symbolic names are Lightning's to resolve


def test_checkpoints_from_before_the_prediction_writer_still_load(tmp_path):
    """Checkpoints written when models carried ``predict_dir`` (and the post-net ``griffin_lim_iters``) and took their
    hyper-parameters flat load through the zoo's loader: the flat names placed in the configs, the retired ones
    dropped, the weights restored."""
    from zoo.checkpoints import load_experiment, upgrade_flat_hyperparameters
    from zoo.models.pix2pix import Pix2PixPostnet

    flat = {"depth": 2, "generator_channels": 2, "generator_max_channels": 4, "discriminator_channels": 2,
            "discriminator_layers": 1, "norm": "instance", "residual": True, "lambda_gv": 2.0}
    model = Pix2PixPostnet(**upgrade_flat_hyperparameters(Pix2PixPostnet, flat))
    assert model.net_config.generator.max_channels == 4 and model.net_config.discriminator.layers == 1
    assert model.net_config.norm == "instance" and model.generator.residual and model.training_config.lambda_gv == 2.0
    path = tmp_path / "old.ckpt"
    # a checkpoint of that era: flat names, and the retired ones
    hparams = {**flat, "predict_dir": "somewhere", "griffin_lim_iters": 60, "_class_path": "zoo.models.pix2pix.Pix2PixPostnet"}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": "2.6.6"}, path)
    loaded = load_experiment(path, {"zoo.models.pix2pix.Pix2PixPostnet": "a post-net"}, "--postnet")
    assert "predict_dir" not in loaded.hparams and loaded.net_config == model.net_config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


# --- per-block configs: stored forms and checkpoints from before them ----------------------------------------------


def test_config_from_value_rebuilds_nested_configs_and_names_unknown_fields():
    from zoo.config import config_from_value
    from zoo.nn.vc import Seq2SeqVCConfig

    config = config_from_value(Seq2SeqVCConfig, {"encoder": {"hidden": 6}, "decoder": {"prenet_sizes": [8, 8]}})
    assert config.encoder.hidden == 6 and config.decoder.prenet_sizes == (8, 8)  # YAML/JSON lists become tuples
    assert config.decoder.reduction_factor == Seq2SeqVCConfig().decoder.reduction_factor  # the rest: defaults
    assert config_from_value(Seq2SeqVCConfig, config) is config
    with pytest.raises(ValueError, match=r"net\.decoder: DecoderConfig has no field\(s\) \['attention_size'\]"):
        config_from_value(Seq2SeqVCConfig, {"decoder": {"attention_size": 3}}, "net")


def _tiny_vc_flat() -> dict:
    """The hyper-parameters a voice-conversion checkpoint of the flat signature (before the configs) recorded."""
    from zoo.audio import AudioConfig

    return {"_class_path": "zoo.models.vc.VoiceConversion",
            "audio": AudioConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=128, n_mels=6, fmax=4000.0),
            "encoder_hidden": 4, "encoder_pyramid_layers": 2, "prenet_sizes": [8, 8], "attention_rnn_dim": 8,
            "decoder_rnn_dims": [8], "attention_dim": 8, "attention_filters": 2, "attention_kernel_size": 3,
            "reduction_factor": 2, "postnet_channels": 0, "lr": 5e-4, "distill_weight": 0.0, "mel_loss": "mse"}


def test_a_flat_voice_conversion_checkpoint_loads_through_the_converter(tmp_path):
    from zoo.checkpoints import constructor_arguments, load_experiment
    from zoo.models.vc import VoiceConversion

    flat = _tiny_vc_flat()
    kwargs = constructor_arguments(VoiceConversion, flat)
    net, training = kwargs["net"], kwargs["training"]
    assert (net.encoder.hidden, net.encoder.pyramid_layers, net.decoder.prenet_sizes) == (4, 2, (8, 8))
    assert (net.decoder.attention_dim, net.decoder.reduction_factor, net.postnet.channels) == (8, 2, 0)
    assert (training.lr, training.mel_loss) == (5e-4, "mse")
    # a checkpoint of that era, with weights of exactly that shape, loads as a model and converts
    model = VoiceConversion(**kwargs)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": flat}, tmp_path / "old.ckpt")
    loaded = load_experiment(tmp_path / "old.ckpt", {"zoo.models.vc.VoiceConversion": "a converter"}, "--vc")
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    # a flat name no config has is refused, naming the file
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {**flat, "encoder_width": 3}}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=r"bad\.ckpt.*encoder_width"):
        load_experiment(tmp_path / "bad.ckpt", {"zoo.models.vc.VoiceConversion": "a converter"}, "--vc")


def test_flat_tacotron_names_find_their_blocks():
    from zoo.checkpoints import upgrade_flat_hyperparameters
    from zoo.models.tacotron import Tacotron

    kwargs = upgrade_flat_hyperparameters(Tacotron, {
        "encoder_prenet_sizes": (16, 8), "prenet_sizes": (32, 16), "postnet_K": 3, "use_gst": True, "gst_heads": 2,
        "teacher_forcing_ratio": 0.5, "vocab_size": 30})
    net, training = kwargs["net"], kwargs["training"]
    assert net.encoder.prenet_sizes == (16, 8) and net.decoder.prenet_sizes == (32, 16)  # the bare name: decoder's
    assert net.postnet.K == 3 and net.gst.enabled and net.gst.heads == 2
    assert net.decoder.rnn_kind == "gru"  # the rest of Tacotron's own decoder, not Tacotron 2's defaults
    assert training.teacher_forcing_ratio == 0.5 and training.weight_decay == 0.0 and kwargs["vocab_size"] == 30
    nested = {"net": {"decoder": {"attention_dim": 4}}, "vocab_size": 30}
    assert upgrade_flat_hyperparameters(Tacotron, nested) == nested  # already in the configs' layout: unchanged


def test_a_flat_voice_conversion_checkpoints_linked_vocab_size_is_dropped():
    from zoo.checkpoints import upgrade_flat_hyperparameters
    from zoo.models.vc import VoiceConversion

    kwargs = upgrade_flat_hyperparameters(VoiceConversion, {"vocab_size": 42, "encoder_hidden": 8, "lr": 0.002})
    assert "vocab_size" not in kwargs and kwargs["net"].encoder.hidden == 8 and kwargs["training"].lr == 0.002
    VoiceConversion(**kwargs)


def test_a_module_built_in_python_saves_configs_the_safe_unpickler_reads(tmp_path):
    from zoo.checkpoints import load_weights_only
    from zoo.models.vc import VoiceConversion

    model = VoiceConversion()
    torch.save({"state_dict": {}, "hyper_parameters": dict(model.hparams)}, tmp_path / "m.ckpt")
    hp = load_weights_only(tmp_path / "m.ckpt")["hyper_parameters"]
    assert hp["net"] == model.net_config and hp["training"] == model.training_config


def test_flat_wavenet_names_find_the_body_the_output_and_training():
    from zoo.checkpoints import upgrade_flat_hyperparameters
    from zoo.models.wavenet import WaveNetVocoder

    kwargs = upgrade_flat_hyperparameters(WaveNetVocoder, {
        "output": "gaussian", "log_scale_min": -9.0, "layers": 4, "stacks": 2, "upsample_scales": (4, 4, 4, 4),
        "window_frames": 3, "lr_decay_steps": 10, "media_seconds": 0.5, "predict_dir": "retired"})
    net, training = kwargs["net"], kwargs["training"]
    assert (net.output.kind, net.output.log_scale_min, net.output.num_mixtures) == ("gaussian", -9.0, 10)
    assert (net.layers, net.stacks, net.residual_channels) == (4, 2, 512)
    assert (training.window_frames, training.lr_decay_steps, training.media_seconds) == (3, 10, 0.5)
    model = WaveNetVocoder(**kwargs)
    assert model.dist.out_channels == 2 and len(model.net.blocks) == 4


def test_flat_mnist_checkpoints_find_their_net_and_training_configs(tmp_path):
    from zoo.checkpoints import load_experiment, upgrade_flat_hyperparameters
    from zoo.models.wae import WAEGAN
    from zoo.models.wgan import WGANGP

    kwargs = upgrade_flat_hyperparameters(WAEGAN, {"image_shape": (1, 28, 28), "latent_dim": 4, "channels": 4,
                                                   "hidden": 8, "adversary_layers": 2, "adversary_lr": 1e-4})
    assert kwargs["net"].adversary_layers == 2 and kwargs["net"].adversary_hidden == 512
    assert kwargs["training"].adversary_lr == 1e-4 and kwargs["training"].divergence_weight == 1.0  # WAE-GAN's λ
    flat = {"latent_dim": 4, "channels": 4, "hidden": 8, "n_critic": 2, "gp_weight": 5.0}
    model = WGANGP(**upgrade_flat_hyperparameters(WGANGP, flat))
    assert not model.net_config.critic_batch_norm and model.n_critic == 2  # WGAN-GP's own net defaults kept
    hparams = {**flat, "_class_path": "zoo.models.wgan.WGANGP"}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, tmp_path / "old.ckpt")
    loaded = load_experiment(tmp_path / "old.ckpt", {"zoo.models.wgan.WGANGP": "a WGAN-GP"}, "--ckpt")
    assert loaded.training_config.gp_weight == 5.0
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_config_checks_name_the_config_the_field_and_the_value():
    from zoo.config import check_fraction, check_non_negative, check_positive

    check_positive("C", a=1, b=0.5)
    check_non_negative("C", a=0, b=2.0)
    check_fraction("C", p=0.0, q=0.99)
    for check, value, message in ((check_positive, 0, r"C\.x must be positive, but got 0"),
                                  (check_non_negative, -1, r"C\.x must be >= 0, but got -1"),
                                  (check_fraction, 1.0, r"C\.x must be in \[0, 1\), but got 1.0")):
        with pytest.raises(ValueError, match=message):
            check(**{"owner": "C", "x": value})
