"""The WORLD vocoder: parameters at the mel frame rate and synthesis (zoo.world), its loss and network, its DataModule
on the embedded corpus (natural and predicted inputs), and the trained model as the speech chain's vocoder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo.world import interpolate_lf0, world_dim, world_layout, world_parameters, world_synthesize

SR, HOP = 16000, 200


def _harmonic(f0: float = 150.0, seconds: float = 0.6, seed: int = 0) -> np.ndarray:
    """A voiced vowel-like signal: 20 harmonics of ``f0`` with a falling envelope, a little noise."""
    t = np.arange(int(SR * seconds)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 21))
    return 0.3 * x / np.abs(x).max() + 0.001 * np.random.default_rng(seed).standard_normal(len(t))


def test_layout_names_every_parameter_once():
    layout = world_layout(SR)
    assert layout["mcep"] == slice(0, 40) and layout["lf0"] == slice(40, 41) and layout["vuv"].stop == world_dim(SR)
    covered = sorted(i for s in layout.values() for i in range(s.start, s.stop))
    assert covered == list(range(world_dim(SR)))


def test_interpolate_lf0_by_hand():
    f0 = np.array([0.0, 100.0, 0.0, 0.0, 400.0, 0.0])
    lf0 = interpolate_lf0(f0)
    a, b = math.log(100.0), math.log(400.0)
    np.testing.assert_allclose(lf0, [a, a, a + (b - a) / 3, a + 2 * (b - a) / 3, b, b])
    assert (interpolate_lf0(np.zeros(4)) == 0).all()


def test_parameters_are_frame_aligned_with_the_mel_and_read_the_f0():
    wav = _harmonic(150.0)
    params = world_parameters(wav, SR, HOP, (80.0, 300.0))
    layout = world_layout(SR)
    assert params.shape == (1 + len(wav) // HOP, world_dim(SR)) and params.dtype == np.float32
    voiced = params[:, layout["vuv"]][:, 0] > 0.5
    assert voiced.mean() > 0.8
    f0 = np.exp(params[voiced, layout["lf0"]][:, 0])
    assert np.median(f0) == pytest.approx(150.0, rel=0.01)
    assert (np.abs(f0 / 150.0 - 1.0) < 0.03).mean() > 0.9  # all but Harvest's onset frames


def test_analysis_synthesis_round_trip_keeps_the_pitch_and_envelope():
    from zoo.metrics.mcd import objective_scores

    wav = _harmonic(150.0)
    y = world_synthesize(world_parameters(wav, SR, HOP, (80.0, 300.0)), SR, HOP)
    assert abs(len(y) - len(wav)) <= HOP and np.abs(y).max() <= 1.0
    scores = objective_scores(y, wav, SR, (80.0, 300.0))
    assert scores.f0_rmse_hz < 5.0
    assert scores.mcd_db < 4.0


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="non-empty finite"):
        world_parameters(np.zeros(0), SR, HOP, (80.0, 300.0))
    with pytest.raises(ValueError, match="non-empty finite"):
        world_parameters(np.full(1000, np.nan), SR, HOP, (80.0, 300.0))
    with pytest.raises(ValueError, match="f0_range"):
        world_parameters(_harmonic(), SR, HOP, (300.0, 80.0))
    with pytest.raises(ValueError, match="WORLD parameters"):
        world_synthesize(np.zeros((5, 7)), SR, HOP)


def test_world_parameter_loss_by_hand():
    from zoo.losses.world import world_parameter_loss

    pred = torch.tensor([[[1.0, 2.0, 0.0], [5.0, 5.0, 5.0]]])  # (1, 2, 3): the second frame is padding
    target = torch.tensor([[[0.0, 4.0, 1.0], [0.0, 0.0, 0.0]]])
    l1, bce = world_parameter_loss(pred, target, torch.tensor([[True, False]]))
    assert l1.item() == pytest.approx((1.0 + 2.0) / 2)
    assert bce.item() == pytest.approx(math.log(2.0))  # logit 0 against voiced
    weighted, _ = world_parameter_loss(pred, target, torch.tensor([[True, False]]), torch.tensor([3.0, 0.5]))
    assert weighted.item() == pytest.approx((3.0 * 1.0 + 0.5 * 2.0) / 2)
    with pytest.raises(ValueError, match="mask"):
        world_parameter_loss(pred, target, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-negative"):
        world_parameter_loss(pred, target, torch.tensor([[True, False]]), torch.tensor([1.0, -1.0]))


def test_frame_mcd_by_hand():
    from zoo.metrics.mcd import frame_mcd_db

    a = torch.zeros(2, 40)
    b = torch.zeros(2, 40)
    b[0, 3] = 1.0  # one frame off by 1 in one coefficient, the other identical
    assert frame_mcd_db(a, b).item() == pytest.approx(10.0 / math.log(10.0) * math.sqrt(2.0) / 2)
    assert frame_mcd_db(a, a).item() == 0.0


def test_net_shapes_scale_and_receptive_field():
    from zoo.nn.world_vocoder import MelToWorld, MelToWorldConfig

    net = MelToWorld(MelToWorldConfig(channels=16, layers=2, kernel_size=3), n_mels=8, world_dim=6).eval()
    assert net.receptive_field == 7
    out = net(torch.rand(2, 11, 8))
    assert out.shape == (2, 11, 6)
    net.set_scale(torch.arange(6.0), torch.full((6,), 2.0))
    params = net.parameters_from(torch.rand(1, 4, 8))
    assert ((params[..., -1] > 0) & (params[..., -1] < 1)).all()  # voicing as a probability
    with pytest.raises(ValueError, match="std"):
        net.set_scale(torch.zeros(6), torch.zeros(6))
    with pytest.raises(ValueError, match="odd"):
        MelToWorldConfig(kernel_size=4)
    # a frame's output depends on the receptive field's frames only
    x = torch.rand(1, 20, 8)
    y = x.clone()
    y[0, 0] += 1.0
    assert torch.equal(net(x)[0, 4:], net(y)[0, 4:])
    # dilated blocks: block i dilated by base ** i, the receptive field measured by a gradient
    wide = MelToWorld(MelToWorldConfig(channels=16, layers=3, kernel_size=3, dilation_base=2), n_mels=8, world_dim=6).eval()
    assert wide.receptive_field == 2 * (1 + 1 + 2 + 4) + 1
    x = torch.rand(1, 41, 8, requires_grad=True)
    wide(x)[0, 20].sum().backward()
    reached = (x.grad[0].abs().sum(-1) > 0).nonzero().flatten()
    assert int(reached.max() - reached.min()) + 1 == wide.receptive_field
    with pytest.raises(ValueError, match="dilation_base"):
        MelToWorldConfig(dilation_base=0)


def test_lf0_weight_reaches_the_loss():
    from zoo.audio import AudioConfig
    from zoo.models.world_vocoder import WorldVocoder, WorldVocoderTrainingConfig
    from zoo.world import world_layout

    audio = AudioConfig(sample_rate=16000, n_fft=1024, win_length=800, hop_length=200, n_mels=80)
    model = WorldVocoder(audio=audio, training=WorldVocoderTrainingConfig(lf0_weight=7.0))
    weights = model.channel_weights
    lf0 = world_layout(16000)["lf0"]
    assert weights[lf0].tolist() == [7.0] and float(weights.sum()) == pytest.approx(weights.numel() - 1 + 7.0)
    with pytest.raises(ValueError, match="lf0_weight"):
        WorldVocoderTrainingConfig(lf0_weight=-1.0)


@pytest.fixture(scope="module")
def vocoder_data(embedded_data: Path) -> Path:
    return embedded_data


def _datamodule(root: Path, **kwargs):
    from datamodules.world_vocoder import WorldVocoderDataModule

    from zoo.audio import AudioConfig

    audio = AudioConfig(sample_rate=16000, n_fft=1024, win_length=800, hop_length=200, n_mels=80, fmin=0.0,
                        fmax=8000.0, griffin_lim_power=1.0)
    args = {"source": "embedded", "root": str(root), "val_size": 10, "test_size": 10, "batch_size": 4,
            "progress": False, "audio": audio, **kwargs}
    return WorldVocoderDataModule(**args)


def test_datamodule_crops_and_whole_utterances(vocoder_data: Path):
    dm = _datamodule(vocoder_data, crop_frames=16)
    dm.prepare_data()
    dm.setup("fit")
    lo, hi = dm.f0_range()
    assert 0 < lo < hi
    batch = next(iter(dm.train_dataloader()))
    assert batch.mel.shape == (4, 16, 80) and batch.world.shape == (4, 16, world_dim(16000))
    assert not batch.predicted.any()
    from datamodules.sampling import EpochIndex

    crops = dm.datasets["train"]
    first, again, other = crops[EpochIndex(3, 0)], crops[EpochIndex(3, 0)], crops[EpochIndex(3, 1)]
    assert torch.equal(first["mel"], again["mel"]) and torch.equal(first["world"], again["world"])
    assert not torch.equal(first["world"], other["world"]) or first["mel"].shape[0] < 16
    val = dm.datasets["val"][0]
    assert val["mel"].shape[0] == val["world"].shape[0] > 16  # whole, frame-aligned
    mean, std = dm.world_stats()
    assert mean.shape == std.shape == (world_dim(16000),) and mean[-1] == 0 and std[-1] == 1


def test_predicted_inputs_must_fit_the_corpus(vocoder_data: Path, tmp_path: Path):
    from datamodules.postnet import write_pairs_index
    from zoo.errors import DatasetFormatError

    dm = _datamodule(vocoder_data)
    dm.prepare_data()
    dm.setup("fit")
    train_id = dm.datasets["val"].entries[0][0]  # a validation prompt listed as training: a leak, refused
    (tmp_path / "inputs").mkdir()
    np.save(tmp_path / "inputs" / "a.npy", np.zeros((5, 80), np.float32))
    write_pairs_index(tmp_path, [(train_id, "inputs/a.npy", "inputs/a.npy", "train")])
    with pytest.raises(DatasetFormatError, match="do not fit together"):
        _datamodule(vocoder_data, pairs_dir=str(tmp_path)).setup("fit")
    write_pairs_index(tmp_path, [(train_id, "inputs/a.npy", "inputs/a.npy")])
    with pytest.raises(DatasetFormatError, match="split column"):
        _datamodule(vocoder_data, pairs_dir=str(tmp_path)).setup("fit")
    # listed in its own split, a prediction joins the natural inputs, flagged
    write_pairs_index(tmp_path, [(train_id, "inputs/a.npy", "inputs/a.npy", "val")])
    dm2 = _datamodule(vocoder_data, pairs_dir=str(tmp_path))
    dm2.setup("fit")
    assert len(dm2.datasets["val"]) == len(dm.datasets["val"]) + 1
    item = dm2.datasets["val"][len(dm2.datasets["val"]) - 1]
    assert item["predicted"] and item["mel"].shape == (5, 80) and item["world"].shape[0] == 5


def test_trained_vocoder_in_the_speech_chain(vocoder_data: Path, tmp_path: Path):
    """Fitted through the CLI, loaded as the chain's vocoder: waveforms of hop x frames; a front end that does not
    match the upstream's is a StageMismatchError."""
    from zoo.audio import AudioConfig
    from zoo.cli import main
    from zoo.errors import StageMismatchError
    from zoo.pipeline import World, load_vocoder

    main(["fit", "--config", "configs/world_vocoder.yaml", "--data.init_args.root", str(vocoder_data),
          "--model.init_args.net.channels", "32", "--model.init_args.net.layers", "1", "--trainer.max_steps", "3",
          "--trainer.val_check_interval", "3", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
          "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"])
    ckpt = next(tmp_path.rglob("*.ckpt"))
    dm = _datamodule(vocoder_data)
    stage = load_vocoder(ckpt, "a test", dm.audio)
    assert isinstance(stage, World)
    mels = [torch.rand(7, 80), torch.rand(3, 80)]
    wavs = stage.vocode(mels)
    assert [w.shape[0] for w in wavs] == [7 * HOP, 3 * HOP] or all(abs(w.shape[0] - m.shape[0] * HOP) <= HOP
                                                                     for w, m in zip(wavs, mels))
    assert all(torch.isfinite(w).all() and w.abs().max() <= 1.0 for w in wavs)
    with pytest.raises(StageMismatchError, match="sample_rate"):
        load_vocoder(ckpt, "an 8 kHz model", AudioConfig(sample_rate=8000, n_fft=512, win_length=400, hop_length=100, fmax=4000.0))
    with pytest.raises(ValueError, match="mel"):
        stage.vocode([torch.rand(4, 40)])
