"""A voice converter of WORLD parameters (``target_features: world``): its network's output scale, the partial start
from a mel autoencoder, and the clear errors of what does not fit together. The trained path end to end (fit, distil,
dev report, conversion of files) is ``tests/test_vc.py::test_world_parameter_converters_from_training_to_dev_report``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zoo.audio import AudioConfig
from zoo.checkpoints import load_net_weights
from zoo.errors import CheckpointError
from zoo.nn.vc import PyramidalEncoderConfig, Seq2SeqVC, Seq2SeqVCConfig
from zoo.nn.tacotron import DecoderConfig
from zoo.nn.tacotron_blocks import PostnetConfig

SMALL = Seq2SeqVCConfig(encoder=PyramidalEncoderConfig(hidden=8, pyramid_layers=1),
                        decoder=DecoderConfig(reduction_factor=2, attention_rnn_dim=16, decoder_rnn_dims=(16,),
                                              prenet_sizes=(8, 8), attention_dim=8, attention_filters=4,
                                              attention_kernel_size=3),
                        postnet=PostnetConfig(channels=8))


def test_world_output_shapes_and_scale_round_trip():
    torch.manual_seed(0)
    net = Seq2SeqVC(16, SMALL, out_dim=7)
    src, tgt = torch.randn(2, 12, 16), torch.randn(2, 10, 7)
    out = net(src, torch.tensor([12, 9]), tgt, torch.tensor([10, 8]))
    assert out.mel.shape == out.mel_postnet.shape == (2, 10, 7)
    assert not bool(net.scale_set)
    mean, std = torch.arange(7.0), torch.full((7,), 2.0)
    net.set_output_scale(mean, std)
    features = torch.randn(3, 7) * 2 + 5
    assert torch.allclose(net.destandardise(net.standardise(features)), features, atol=1e-6)
    assert torch.allclose(net.standardise(mean.expand(4, -1)), torch.zeros(4, 7))  # the mean frame is 0
    # the scale travels with the weights
    other = Seq2SeqVC(16, SMALL, out_dim=7)
    other.load_state_dict(net.state_dict())
    assert bool(other.scale_set) and torch.equal(other.out_std, std)
    with pytest.raises(ValueError, match="positive std"):
        net.set_output_scale(mean, torch.zeros(7))
    with pytest.raises(ValueError, match=r"\(7,\) mean"):
        net.set_output_scale(torch.zeros(6), torch.ones(6))
    mel_net = Seq2SeqVC(16, SMALL)  # mels: no scale, the identity
    assert "out_mean" not in mel_net.state_dict() and torch.equal(mel_net.standardise(tgt), tgt)
    with pytest.raises(ValueError, match="no output scale"):
        mel_net.set_output_scale(mean, std)


def _ckpt(tmp_path: Path, net: torch.nn.Module, name: str) -> Path:
    path = tmp_path / name
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def test_partial_init_from_a_mel_autoencoder_loads_what_fits(tmp_path: Path):
    torch.manual_seed(0)
    mel = Seq2SeqVC(16, SMALL)
    world = Seq2SeqVC(16, SMALL, out_dim=7)
    before = {k: v.clone() for k, v in world.state_dict().items()}
    path = _ckpt(tmp_path, mel, "ae.ckpt")
    with pytest.raises(CheckpointError, match="different shapes"):  # strict by default
        load_net_weights(world, path)
    fresh = load_net_weights(world, path, partial=True)
    state = world.state_dict()
    # the input and output layers differ in shape and stay as initialised; everything else is the autoencoder's
    assert set(fresh) == {k for k, v in state.items() if k not in mel.state_dict() or v.shape != mel.state_dict()[k].shape}
    assert "decoder.frame_projection.weight" in fresh and "decoder.prenet.layers.0.weight" in fresh
    assert "out_mean" in fresh and "encoder.bottom.rnn.weight_ih_l0" not in fresh
    for k, v in state.items():
        assert torch.equal(v, before[k] if k in fresh else mel.state_dict()[k]), k
    # a checkpoint that shares nothing is still an error, naming what it was given as
    unrelated = _ckpt(tmp_path, torch.nn.Linear(3, 2), "other.ckpt")
    with pytest.raises(CheckpointError, match="init_from: .*shares no tensor"):
        load_net_weights(world, unrelated, partial=True)


def test_world_targets_are_refused_where_they_cannot_work(tmp_path: Path):
    from datamodules import CMUArcticDataModule
    from zoo.models.vc import VoiceConversion, _pair

    common = dict(root=str(tmp_path), source="embedded")
    with pytest.raises(ValueError, match="needs mode: parallel"):
        CMUArcticDataModule(mode="single", target_features="world", **common)
    with pytest.raises(ValueError, match="'mel' or 'world'"):
        CMUArcticDataModule(target_features="linear", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="world_workers must be >= 1"):
        CMUArcticDataModule(target_features="world", world_workers=0, **common)
    low = AudioConfig(sample_rate=8000, n_fft=512, win_length=400, hop_length=100, fmax=4000.0)
    with pytest.raises(ValueError, match="at least 12000 Hz"):
        CMUArcticDataModule(target_features="world", audio=low, **common)
    with pytest.raises(ValueError, match="needs target_features: world"):
        CMUArcticDataModule(**common).world_stats()
    with pytest.raises(ValueError, match="at least 12000 Hz"):
        VoiceConversion(audio=low, target_features="world")
    # a WORLD converter given batches without WORLD targets (an autoencoder's) says what it needs
    from datamodules.batches import SpeechBatch

    batch = SpeechBatch(ids=["a"], text=torch.zeros(1, 2, dtype=torch.long), text_lengths=torch.tensor([2]),
                        mel=torch.zeros(1, 5, 80), mel_lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match="target_features: world"):
        _pair(batch, "world")
    # fitting a WORLD converter on mel-only data: the scale cannot be set, and the message says which flag links them
    model = VoiceConversion(audio=AudioConfig(), target_features="world")
    model.trainer = type("T", (), {"datamodule": CMUArcticDataModule(**common)})()  # type: ignore[assignment]
    with pytest.raises(ValueError, match="--data.target_features"):
        model.setup("fit")


def test_the_mel_of_a_synthesised_wav_of_any_length():
    """A WORLD converter's wav is shown as its mel: one frame per hop, however short the conversion."""
    from zoo.audio import AudioFrontEnd

    front = AudioFrontEnd(AudioConfig(sample_rate=16000, n_fft=1024, win_length=800, hop_length=200, n_mels=80,
                                      fmax=8000.0))
    for samples in (200, 400, 16000):
        mel = front.frames_of(torch.randn(samples) * 0.1)
        assert mel.shape == (1 + samples // 200, 80) and 0.0 <= float(mel.min()) and float(mel.max()) <= 1.0
    long = torch.randn(16000) * 0.1
    assert torch.allclose(front.frames_of(long), front.mel(long).T)  # long enough: exactly the front end's mel


def test_lf0_weight_weights_the_log_f0_channel_of_every_frame_loss():
    from datamodules.batches import ParallelBatch
    from zoo.models.vc import VCTrainingConfig, VoiceConversion
    from zoo.world import world_dim, world_layout

    audio = AudioConfig(sample_rate=16000, n_mels=16, n_fft=256, win_length=256, hop_length=64)
    dim, lf0 = world_dim(16000), world_layout(16000)["lf0"].start
    models = {w: VoiceConversion(audio=audio, net=SMALL, target_features="world",
                                 training=VCTrainingConfig(lf0_weight=w)) for w in (1.0, 4.0)}
    assert models[1.0].frame_weights is None
    weights = models[4.0].frame_weights
    assert weights[lf0].item() == 4.0 and weights.sum().item() == dim - 1 + 4.0
    torch.manual_seed(0)
    for m in models.values():
        m.net.set_output_scale(torch.zeros(dim), torch.ones(dim))
    models[4.0].net.load_state_dict(models[1.0].net.state_dict())
    lengths = torch.tensor([10, 8])
    batch = ParallelBatch(ids=["a", "b"], src_mel=torch.randn(2, 12, 16), src_lengths=torch.tensor([12, 9]),
                          tgt_mel=torch.randn(2, 10, 16), tgt_lengths=lengths, text=torch.zeros(2, 1, dtype=torch.long),
                          text_lengths=torch.ones(2, dtype=torch.long), tgt_world=torch.randn(2, 10, dim))
    out = models[1.0].net(batch.src_mel, batch.src_lengths, batch.tgt_world, lengths)
    plain, weighted = (models[w]._losses(out, batch, "val") for w in (1.0, 4.0))
    # by hand: the weighted loss adds 3 x the log-F0 channel's error to the sum over the valid cells
    for key, pred in (("mel", out.mel), ("mel_postnet", out.mel_postnet)):
        extra = sum((pred[i, :n, lf0] - batch.tgt_world[i, :n, lf0]).abs().sum() for i, n in enumerate(lengths.tolist()))
        expected = plain[key] + 3.0 * extra / (int(lengths.sum()) * dim)
        assert weighted[key].item() == pytest.approx(expected.item(), rel=1e-5), key
    with pytest.raises(ValueError, match="lf0_weight 4.0 weights the log-F0 channel of WORLD targets"):
        VoiceConversion(audio=audio, net=SMALL, training=VCTrainingConfig(lf0_weight=4.0))
    with pytest.raises(ValueError, match="lf0_weight"):
        VCTrainingConfig(lf0_weight=-1.0)
