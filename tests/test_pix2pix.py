"""pix2pix spectrogram post-net: nets, losses, metrics, degradation, crops, data, and the manual-optimisation loop."""

from __future__ import annotations

import dataclasses

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datamodules.postnet import (
    PairedMelBatch,
    PairedMelDataModule,
    active_frames,
    choose_crop_start,
    collate_pairs,
    degrade_mel,
    random_crop_pair,
    write_pairs_index,
)
from tests.conftest import make_ljspeech_tree
from zoo.errors import DatasetFormatError
from zoo.losses.gan import discriminator_loss, generator_adversarial_loss
from zoo.metrics.spectral import global_variance, global_variance_ratio, masked_l1
from zoo.models.pix2pix import Pix2PixPostnet, Pix2PixTrainingConfig
from zoo.nn.pix2pix import PatchGANConfig, PatchGANDiscriminator, Pix2PixConfig, UNetConfig, UNetGenerator, check_unet_size

TINY = Pix2PixConfig(generator=UNetConfig(depth=4, channels=4, max_channels=16, dropout=0.0),
                     discriminator=PatchGANConfig(channels=4, layers=2))


def _postnet(norm: str = "batch", training: dict | None = None, **generator) -> Pix2PixPostnet:
    """The tiny post-net, its generator's fields (``depth``, ``residual``, ...) and its training config changed."""
    net = dataclasses.replace(TINY, norm=norm, generator=dataclasses.replace(TINY.generator, **generator))
    return Pix2PixPostnet(net=net, training=Pix2PixTrainingConfig(**(training or {})))


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    defaults = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                    "enable_model_summary": False, "default_root_dir": tmp_path}
    return L.Trainer(**{**defaults, **kwargs})


# --- networks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth,size", [(2, (64, 64)), (4, (64, 64)), (6, (64, 64)), (5, (32, 64)), (3, (8, 24))])
def test_unet_keeps_the_input_shape_and_backpropagates(depth, size):
    torch.manual_seed(0)
    net = UNetGenerator(UNetConfig(depth=depth, channels=4, max_channels=16))
    x = torch.randn(2, 1, *size, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 1, *size)
    assert y.abs().max() < 1  # tanh output
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unet_depth_is_checked_against_the_crop():
    check_unet_size(6, (64, 64))  # 64 -> 1 x 1
    with pytest.raises(ValueError, match=r"depth 7.*multiple of 2\*\*7 = 128.*64×64.*depth <= 6"):
        check_unet_size(7, (64, 64))
    with pytest.raises(ValueError, match=r"80×64.*depth <= 4"):
        check_unet_size(6, (80, 64))
    with pytest.raises(ValueError, match="multiple of"):
        UNetGenerator(UNetConfig(depth=3, channels=4, max_channels=16))(torch.zeros(1, 1, 12, 16))
    with pytest.raises(ValueError, match="depth must be >= 2"):
        UNetConfig(depth=1)


@pytest.mark.parametrize("shape", [(80, 37), (80, 1), (13, 100), (64, 64)])
def test_whole_utterance_inference_crops_back_to_the_input(shape):
    net = UNetGenerator(UNetConfig(depth=4, channels=4, max_channels=16)).eval()
    x = torch.randn(3, 1, *shape)
    with torch.no_grad():
        y = net.forward_any_size(x, pad_value=-1.0)
    assert y.shape == x.shape


def test_patchgan_is_conditioned_on_the_input():
    torch.manual_seed(0)
    d = PatchGANDiscriminator(PatchGANConfig(channels=8, layers=3)).eval()
    x, y = torch.randn(2, 1, 64, 64), torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        out = d(x, y)
        other = d(x + 1.0, y)  # same image, another condition
    assert out.shape == (2, 1, 6, 6)  # 64 / 2^3 - 2: 70x70 patches
    assert not torch.allclose(out, other)
    with pytest.raises(ValueError, match="same batch and spatial size"):
        d(x, y[..., :32])


# --- losses and metrics -----------------------------------------------------------------------------------------


def test_bce_losses_match_hand_computation():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    # D: ½[log(1 + e^-2) + log(1 + e^-1)]; G (non-saturating): -log σ(-1) = log(1 + e^1)
    assert discriminator_loss(real, fake, "bce").item() == pytest.approx(0.5 * (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))))
    assert discriminator_loss(real, fake, "bce").item() == pytest.approx(0.2200948, abs=1e-6)
    assert generator_adversarial_loss(fake, "bce").item() == pytest.approx(1.3132617, abs=1e-6)


def test_lsgan_losses_match_hand_computation():
    real, fake = torch.tensor([[0.5, 1.5]]), torch.tensor([[0.2, -0.2]])
    assert discriminator_loss(real, fake, "lsgan").item() == pytest.approx(0.5 * (0.25 + 0.04))
    assert generator_adversarial_loss(fake, "lsgan").item() == pytest.approx((0.64 + 1.44) / 2)
    with pytest.raises(ValueError, match="'bce' or 'lsgan'"):
        generator_adversarial_loss(fake, "wgan")  # type: ignore[arg-type]


def test_masked_l1_and_global_variance_by_hand():
    target = torch.tensor([[0.0, 1.0, 0.0, 1.0, 9.0]]).T[None].repeat(1, 1, 2)  # (1, 5, 2); frame 4 is padding
    pred = torch.tensor([[0.25, 0.75, 0.25, 0.75, -9.0]]).T[None].repeat(1, 1, 2)
    lengths = torch.tensor([4])
    assert masked_l1(pred, target, lengths).item() == pytest.approx(0.25)
    assert torch.allclose(global_variance(target, lengths), torch.tensor([[0.25, 0.25]]))
    assert torch.allclose(global_variance(pred, lengths), torch.tensor([[0.0625, 0.0625]]))
    assert global_variance_ratio(pred, target, lengths).item() == pytest.approx(0.25, abs=1e-4)
    assert global_variance_ratio(target, target, lengths).item() == pytest.approx(1.0)


def _sharp_mel(frames: int = 120, n_mels: int = 80, seed: int = 0) -> torch.Tensor:
    """A speech-like (T, n_mels) pattern in [0, 1]: harmonic stripes whose pitch moves, gated on and off."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)[:, None]
    f = torch.arange(n_mels, dtype=torch.float32)[None, :]
    pitch = 4.0 + 1.5 * torch.sin(t / 9.0)
    stripes = 0.5 + 0.5 * torch.cos(2 * math.pi * f / pitch)
    gate = (torch.sin(t / 5.0) > -0.3).float()
    return (0.2 + 0.6 * stripes * gate + 0.05 * torch.rand(frames, n_mels, generator=g)).clamp(0, 1)


def test_degradation_lowers_global_variance_and_is_seeded():
    mel = _sharp_mel()
    before = mel.clone()
    blurry = degrade_mel(mel, seed=3)
    assert torch.equal(mel, before)  # pure
    assert blurry.shape == mel.shape
    assert blurry.min() >= mel.min() and blurry.max() <= mel.max()
    lengths = torch.tensor([mel.shape[0]])
    ratio = global_variance_ratio(blurry[None], mel[None], lengths).item()
    assert ratio < 0.8, ratio
    assert torch.equal(degrade_mel(mel, seed=3), blurry)
    assert not torch.equal(degrade_mel(mel, seed=4), blurry)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        degrade_mel(mel, rank=0)


# --- crops -------------------------------------------------------------------------------------------------------


def test_crops_avoid_silence_and_never_reach_padding():
    # 40 silent frames, 60 speech frames, 50 silent frames; the batch would pad after frame 150.
    mel = torch.zeros(150, 80)
    mel[40:100] = 0.4
    active = active_frames(mel, 0.15)
    assert active.sum() == 60
    g = torch.Generator().manual_seed(0)
    starts = {choose_crop_start(active, 32, 0.5, g) for _ in range(300)}
    assert min(starts) >= 40 - 16 and max(starts) <= 100 - 16  # at least half of every window is speech
    assert len(starts) > 10  # and the start is random among the qualifying ones
    for _ in range(50):
        inp, tgt = random_crop_pair(mel + 0.01, mel, 32, 64, 0.15, 0.5, g)
        assert inp.shape == tgt.shape == (32, 64)
        assert (tgt.mean(dim=1) >= 0.15).float().mean() >= 0.5
    # an all-silent utterance still gives a crop (the best window), a short one is padded at the end
    assert choose_crop_start(torch.zeros(100, dtype=torch.bool), 32, 0.5, g) == 0
    inp, tgt = random_crop_pair(mel[:20] + 0.5, mel[:20] + 0.5, 32, 64, 0.15, 0.5, g)
    assert tgt.shape == (32, 64) and tgt[20:].abs().sum() == 0


# --- data -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lj_tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lj")
    make_ljspeech_tree(root, n=12)
    return root


def _datamodule(root: Path, **kwargs) -> PairedMelDataModule:
    args = {"root": str(root), "source": "real", "crop_frames": 16, "crop_bins": 16, "batch_size": 4, "val_size": 2, "test_size": 2,
                "progress": False}
    return PairedMelDataModule(**{**args, **kwargs})


def test_datamodule_gives_crops_for_training_and_whole_utterances_elsewhere(lj_tiny):
    dm = _datamodule(lj_tiny, crops_per_utterance=2)
    dm.prepare_data()
    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    assert isinstance(train, PairedMelBatch) and train.mel_input.shape == (4, 16, 16)
    assert len(dm.datasets["train"]) == 2 * len(dm.pairs["train"])
    val = dm.media_batch(2)
    assert val.mel_input.shape == val.mel_target.shape and val.mel_input.shape[2] == 80
    assert val.mel_input.shape[1] == int(val.mel_lengths.max())
    low, high = dm.mel_range()
    assert 0.0 <= low < high <= 1.0


def test_pairs_dir_index(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(10):
        target = rng.random((20 + i, 8), dtype=np.float32)
        for kind, arr in (("in", target * 0.5), ("tgt", target)):
            (tmp_path / kind).mkdir(exist_ok=True)
            np.save(tmp_path / kind / f"u{i}.npy", arr)
        rows.append((f"u{i}", f"in/u{i}.npy", f"tgt/u{i}.npy"))
    write_pairs_index(tmp_path, rows)
    from zoo.audio import AudioConfig

    dm = PairedMelDataModule(pairs_dir=str(tmp_path), audio=AudioConfig(n_mels=8), crop_frames=8, crop_bins=8,
                             batch_size=2, val_size=1, test_size=1)
    dm.setup("fit")
    assert sum(len(dm.pairs[s]) for s in ("train", "val", "test")) == 10
    assert next(iter(dm.train_dataloader())).mel_input.shape == (2, 8, 8)
    (tmp_path / "index.tsv").write_text("name\tin\tout\nu0\tin/u0.npy\ttgt/u0.npy\n")
    with pytest.raises(DatasetFormatError, match="header"):
        PairedMelDataModule(pairs_dir=str(tmp_path), audio=AudioConfig(n_mels=8), crop_frames=8, crop_bins=8).setup()


# --- the LightningModule -------------------------------------------------------------------------------------------


def test_scale_from_training_data_round_trips_through_a_checkpoint(lj_tiny, tmp_path):
    torch.manual_seed(0)
    dm = _datamodule(lj_tiny)
    model = _postnet()
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    low, high = dm.mel_range()
    assert (low, high) != (0.0, 1.0)
    assert model.mel_low.item() == pytest.approx(low) and model.mel_high.item() == pytest.approx(high)
    assert int(model.batches_seen) == 2 and trainer.global_step == 4  # global_step counts both optimisers' steps
    for key in ("val/l1_input", "val/l1_output", "val/gv_ratio_input", "val/gv_ratio_output", "val/gv_ratio_target"):
        assert torch.isfinite(trainer.callback_metrics[key])
    assert trainer.callback_metrics["val/gv_ratio_target"].item() == pytest.approx(1.0)
    ckpt = tmp_path / "p2p.ckpt"
    trainer.save_checkpoint(ckpt)

    restored = Pix2PixPostnet.load_from_checkpoint(ckpt)
    assert restored.mel_low.item() == pytest.approx(low) and restored.mel_high.item() == pytest.approx(high)
    assert bool(restored.scale_fitted) and int(restored.batches_seen) == 2
    # a loaded model keeps its own scale even with data whose range differs
    fresh = _postnet()
    fresh.set_mel_range(0.1, 0.2)
    fresh.load_state_dict(torch.load(ckpt, weights_only=False)["state_dict"])
    assert fresh.mel_high.item() == pytest.approx(high)

    restored.eval()
    mel, lengths = torch.rand(2, 37, 80), torch.tensor([37, 20])
    out = restored.polish(mel, lengths)
    assert out.shape == mel.shape and out[1, 20:].abs().sum() == 0 and 0 <= out.min() and out.max() <= 1


def test_polish_in_eval_mode_is_deterministic_and_per_utterance_with_instance_norm():
    # The documented inference mode: eval() means running statistics and no dropout, so the same input always gives
    # the same output (the paper keeps dropout and test-batch statistics); with instance norm an utterance's
    # output does not depend on what else is in its batch.
    torch.manual_seed(0)
    mel, lengths = torch.rand(2, 32, 80), torch.tensor([32, 32])
    model = _postnet(dropout=0.5, depth=6).eval()  # depth 6: dropout on one up-block
    torch.testing.assert_close(model.polish(mel, lengths), model.polish(mel, lengths))
    model.train()
    assert not torch.allclose(model.polish(mel, lengths), model.polish(mel, lengths))
    inst = _postnet(norm="instance").eval()
    torch.testing.assert_close(inst.polish(mel, lengths)[:1], inst.polish(mel[:1], lengths[:1]))


def test_depth_too_deep_for_the_crop_fails_before_training(lj_tiny, tmp_path):
    model = _postnet(depth=5)  # 16 x 16 crops take depth <= 4
    with pytest.raises(ValueError, match=r"depth 5.*16×16"):
        _trainer(tmp_path, max_steps=1).fit(model, datamodule=_datamodule(lj_tiny))


def _one_batch_fit(model: Pix2PixPostnet, tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(4, 16, 16, generator=g)
    items = [{"id": str(i), "mel_input": target[i] * 0.5, "mel_target": target[i]} for i in range(4)]
    loader = DataLoader(items, batch_size=4, collate_fn=collate_pairs)
    _trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(model, loader)


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before))


@pytest.mark.parametrize("update", ["generator", "discriminator", "both"])
def test_each_optimiser_changes_only_its_own_network(update, tmp_path):
    torch.manual_seed(0)
    # batch number 1 of the schedule: `every: 2` skips a network on it, `every: 1` updates it
    every = {"generator": (1, 2), "discriminator": (2, 1), "both": (1, 1)}[update]
    model = _postnet(training={"generator_every": every[0], "discriminator_every": every[1]})
    model.set_mel_range(0.0, 1.0)
    model.batches_seen.fill_(1)
    g0, d0 = _snapshot(model.generator), _snapshot(model.discriminator)
    _one_batch_fit(model, tmp_path)
    assert _changed(model.generator, g0) == (update in ("generator", "both"))
    assert _changed(model.discriminator, d0) == (update in ("discriminator", "both"))
    if update == "generator":  # the adversarial term backpropagated through D without leaving gradients on it
        assert all(p.grad is None or not p.grad.any() for p in model.discriminator.parameters())
    assert int(model.batches_seen) == 2


def test_predict_writes_polished_mels_audio_and_a_pairs_index(lj_tiny, tmp_path):
    from datamodules.postnet import read_pairs_index

    from callbacks.prediction import PredictionWriter

    dm = _datamodule(lj_tiny)
    model = _postnet()
    writer = PredictionWriter(str(tmp_path / "pred"))
    batches = _trainer(tmp_path, callbacks=[writer]).predict(model, datamodule=dm)
    ids = [p.id for batch in batches for p in batch]
    assert len(ids) == len(dm.pairs["test"]) >= 1 and [r["id"] for r in writer.records] == ids
    rows = read_pairs_index(tmp_path / "pred")
    assert [r[0] for r in rows] == ids
    for utt_id, polished, target in rows:
        mel, truth = np.load(tmp_path / "pred" / polished), np.load(tmp_path / "pred" / target)
        assert mel.shape == truth.shape and mel.shape[1] == 80
        assert (tmp_path / "pred" / f"{utt_id}.wav").is_file()


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_matches_the_gradient_support(n_layers):
    from zoo.nn.pix2pix import patchgan_receptive_field

    d = PatchGANDiscriminator(PatchGANConfig(channels=2, layers=n_layers), norm="batch").eval()  # running stats: local
    with torch.no_grad():
        for m in d.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(0.01)  # all-positive weights: every input in the field has a nonzero gradient
    size = 160
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = torch.zeros(1, 1, size, size)
    out = d(x, y)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    out[0, 0, i, j].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert int(rows.max() - rows.min()) + 1 == patchgan_receptive_field(n_layers) == d.receptive_field


def test_residual_generator_starts_as_the_identity_and_learns(tmp_path):
    torch.manual_seed(0)
    model = _postnet(residual=True)
    model.set_mel_range(0.0, 1.0)
    mel = torch.rand(2, 40, 32) * 0.8 + 0.1  # (B, T, n_mels) in [0, 1], away from the clamp
    lengths = torch.tensor([40, 33])
    out = model.eval().polish(mel, lengths)
    assert torch.allclose(out[0], mel[0], atol=1e-6)  # x + 0: the identity on every frame
    assert torch.allclose(out[1, :33], mel[1, :33], atol=1e-6) and not out[1, 33:].any()
    g0 = _snapshot(model.generator)
    _one_batch_fit(model.train(), tmp_path)
    assert _changed(model.generator, g0)  # the zeroed output layer still receives a gradient
    assert model.generator.ups[0].block[1].weight.abs().sum() > 0
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        UNetGenerator(UNetConfig(depth=4, channels=4, max_channels=16, residual=True), in_channels=1, out_channels=2)


def test_global_variance_loss_by_hand():
    from zoo.losses.spectral import global_variance_loss

    # one crop, one channel, 2 bins x 4 frames; population variance over frames, per bin
    target = torch.tensor([[[[0.0, 2.0, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0]]]])  # GV 1.0 and 0.0
    pred = torch.tensor([[[[0.5, 1.5, 0.5, 1.5], [1.0, 3.0, 1.0, 3.0]]]])  # GV 0.25 and 1.0
    eps = 1e-3
    expected = 0.5 * (abs(math.log(0.25 + eps) - math.log(1.0 + eps)) + abs(math.log(1.0 + eps) - math.log(eps)))
    assert global_variance_loss(pred, target, eps) == pytest.approx(expected, rel=1e-6)
    assert global_variance_loss(target, target) == 0
    with pytest.raises(ValueError, match="same shape"):
        global_variance_loss(pred, target[..., :3])
    with pytest.raises(ValueError, match=r"\(B, C, F, T\)"):
        global_variance_loss(pred[0], target[0])


def test_global_variance_term_raises_the_variance_of_a_blurry_output(tmp_path):
    """Trained on the GV term alone (λ_L1 = λ_adv = 0), a residual post-net fed blurred crops raises their variance."""
    from zoo.losses.spectral import global_variance_loss

    torch.manual_seed(0)
    model = _postnet(residual=True, training={"lambda_l1": 0.0, "lambda_adversarial": 0.0, "lambda_gv": 1.0,
                                              "generator_lr": 1e-2})
    model.set_mel_range(0.0, 1.0)
    target = torch.rand(8, 16, 16) * 0.8 + 0.1
    blurry = 0.5 + 0.3 * (target - 0.5)  # same pattern, a tenth of the variance
    items = [{"id": str(i), "mel_input": blurry[i], "mel_target": target[i]} for i in range(8)]
    loader = DataLoader(items, batch_size=8, collate_fn=collate_pairs)
    x, y = model._image(blurry), model._image(target)
    with torch.no_grad():
        before = float(global_variance_loss(model.eval().generator(x), y))
    _trainer(tmp_path, max_epochs=30, limit_val_batches=0).fit(model.train(), loader)
    with torch.no_grad():
        after = float(global_variance_loss(model.eval().generator(x), y))
    assert after < 0.5 * before
    with pytest.raises(ValueError, match="lambda_gv"):
        Pix2PixTrainingConfig(lambda_gv=-1.0)
