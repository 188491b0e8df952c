"""Tacotron / Tacotron 2: the shared decoder, the networks, their losses and figures, and the experiments.

Tiny sizes throughout; the one real training run on the embedded corpus is marked slow.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from datamodules.batches import SpeechBatch
from datamodules.text_prompts import TextPromptDataModule
from zoo.audio import AudioConfig
from zoo.losses.tacotron import masked_spectrogram_loss, stop_targets, stop_token_loss
from zoo.metrics.alignment import diagonality, focus_rate
from zoo.models.tacotron import Tacotron as TacotronExperiment
from zoo.models.tacotron import Tacotron2 as Tacotron2Experiment
from zoo.models.tacotron import TacotronTrainingConfig, cosine_lr_factor, scheduled_teacher_forcing_ratio
from zoo.nn.tacotron import (
    TACOTRON_DECODER, CBHGPostnetConfig, DecoderConfig, GlobalStyleTokens, GSTConfig, Tacotron, Tacotron2,
    Tacotron2Config, Tacotron2EncoderConfig, TacotronConfig, TacotronDecoder, TacotronEncoderConfig,
)
from zoo.nn.tacotron import _ContextShares
from zoo.nn.tacotron_blocks import PostnetConfig
from zoo.sequence import lengths_to_mask

B, T_ENC, D_MEM, N_MELS = 3, 7, 12, 6
MEM_LENGTHS = torch.tensor([7, 5, 3])
MEL_LENGTHS = torch.tensor([9, 6, 4])
VOCAB = 20


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _decoder(r: int = 2, kind: str = "location", dropout: float = 0.0, **kwargs) -> TacotronDecoder:
    options = {"location": {"attention_filters": 4, "attention_kernel_size": 3}, "content": {},
               "gmm": {"attention_components": 2}}[kind]
    return TacotronDecoder(D_MEM, N_MELS, DecoderConfig(
        r, prenet_sizes=(16, 8), prenet_dropout=dropout, attention_rnn_dim=16, decoder_rnn_dims=(16,),
        attention_kind=kind, attention_dim=8, attention_dropout=dropout, decoder_dropout=dropout, **options, **kwargs,
    ))


def _memory() -> torch.Tensor:
    memory = torch.randn(B, T_ENC, D_MEM)
    return memory.masked_fill(~lengths_to_mask(MEM_LENGTHS, T_ENC).unsqueeze(-1), 0.0)


def _targets(time: int = 9) -> torch.Tensor:
    return torch.rand(B, time, N_MELS)


def _coded_targets(time: int) -> torch.Tensor:
    """targets[b, t, c] = 1000 b + 10 t + c: any misplaced frame is visible."""
    b = torch.arange(B).view(-1, 1, 1)
    t = torch.arange(time).view(1, -1, 1)
    c = torch.arange(N_MELS).view(1, 1, -1)
    return (1000 * b + 10 * t + c).float()


# ------------------------------------------------------------------------------------------- the decoder


@pytest.mark.parametrize("kind", ["location", "content", "gmm"])
@pytest.mark.parametrize("rnn_kind,residual,dims", [("lstm", False, (16,)), ("gru", True, (16, 16))])
def test_decoder_shapes_masks_and_backward(kind: str, rnn_kind: str, residual: bool, dims: tuple) -> None:
    options = {"attention_components": 2} if kind == "gmm" else {}
    config = DecoderConfig(reduction_factor=2, prenet_sizes=(16, 8), prenet_dropout=0.5, rnn_kind=rnn_kind,
                           attention_rnn_dim=16, decoder_rnn_dims=dims, residual=residual, attention_kind=kind,
                           attention_dim=8, **options)
    dec = TacotronDecoder(D_MEM, N_MELS, config).train()
    memory = _memory().requires_grad_()
    out = dec(memory, MEM_LENGTHS, _targets(9))
    assert out.mel.shape == (B, 9, N_MELS)
    assert out.stop_logits.shape == (B, 9)
    assert out.alignments.shape == (B, 5, T_ENC)  # ceil(9 / 2) steps
    padded = ~lengths_to_mask(MEM_LENGTHS, T_ENC).unsqueeze(1).expand_as(out.alignments)
    assert (out.alignments[padded] == 0).all(), "padded encoder steps received attention"
    (out.mel.sum() + out.stop_logits.sum()).backward()
    for name, p in dec.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert memory.grad is not None and torch.isfinite(memory.grad).all()


def test_decoder_ignores_whatever_is_in_padded_memory() -> None:
    dec = _decoder().eval()
    memory, targets = _memory(), _targets()
    garbage = memory + 100.0 * torch.randn_like(memory) * (~lengths_to_mask(MEM_LENGTHS, T_ENC)).unsqueeze(-1)
    torch.testing.assert_close(dec(memory, MEM_LENGTHS, targets).mel, dec(garbage, MEM_LENGTHS, targets).mel)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_incremental_decoding_equals_the_batched_teacher_forced_run(r: int) -> None:
    """Step-by-step decoding fed the ground-truth last frame of each step == forward() (one batched pre-net)."""
    dec = _decoder(r=r).eval()
    memory, targets = _memory(), _targets(8)  # 8 is not a multiple of 3: the last step is cropped
    full = dec(memory, MEM_LENGTHS, targets)
    mask = lengths_to_mask(MEM_LENGTHS, T_ENC)
    processed = dec.attention.process_memory(memory)
    state = dec.initial_state(memory, mask)
    frame = dec.go_frame(memory)
    frames, stops, aligns = [], [], []
    for n in range(math.ceil(8 / r)):
        step_frames, stop, weights, state = dec.step(frame, memory, processed, mask, state)
        frames += list(step_frames.view(B, r, N_MELS).unbind(1))
        stops += list(stop.unbind(1))
        aligns.append(weights)
        frame = targets[:, min((n + 1) * r, 8) - 1]  # the last ground-truth frame of this step
    torch.testing.assert_close(full.mel, torch.stack(frames, 1)[:, :8], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(full.stop_logits, torch.stack(stops, 1)[:, :8], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(full.alignments, torch.stack(aligns, 1), atol=1e-6, rtol=1e-5)


def test_free_running_inference_equals_teacher_forcing_ratio_zero() -> None:
    dec = _decoder(r=2).eval()
    memory = _memory()
    inferred = dec.infer(memory, MEM_LENGTHS, max_frames=8, stop_threshold=0.999999)
    assert inferred.mel.shape == (B, 8, N_MELS) and not inferred.stopped.any()
    free = dec(memory, MEM_LENGTHS, _targets(8), teacher_forcing_ratio=0.0)  # targets are never fed back
    torch.testing.assert_close(free.mel, inferred.mel, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(free.alignments, inferred.alignments, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["location", "gmm"])
@pytest.mark.parametrize("rnn_kind,residual,dims,reads_context",
                         [("lstm", False, (16, 16), True), ("lstm", False, (16,), False), ("gru", True, (16, 16), False)])
def test_inference_from_the_memory_projected_once_equals_the_step_by_step_context(
        kind: str, rnn_kind: str, residual: bool, dims: tuple, reads_context: bool, monkeypatch) -> None:
    options = {"attention_components": 2} if kind == "gmm" else {"attention_filters": 4, "attention_kernel_size": 3}
    d_mem = 32  # B * T_enc = 21 < 32: where the context's shares read less than the weights' context columns
    dec = TacotronDecoder(d_mem, N_MELS, DecoderConfig(
        2, prenet_sizes=(16, 8), prenet_dropout=0.5, rnn_kind=rnn_kind, attention_rnn_dim=16, decoder_rnn_dims=dims,
        residual=residual, projection_reads_context=reads_context, attention_kind=kind, attention_dim=8, **options,
    )).double().eval()
    memory = torch.randn(B, T_ENC, d_mem, dtype=torch.float64).masked_fill(
        ~lengths_to_mask(MEM_LENGTHS, T_ENC).unsqueeze(-1), 0.0)
    outputs, steps, original = {}, [], _ContextShares.step
    monkeypatch.setattr(_ContextShares, "step", lambda self, *a: steps.append(1) or original(self, *a))
    for shares in (True, False):
        dec.context_shares = shares
        torch.manual_seed(3)  # the pre-net's dropout stays on at inference: the same draws on both paths
        outputs[shares] = dec.infer(memory, MEM_LENGTHS, max_frames=10, stop_threshold=0.6)
    assert len(steps) == outputs[True].alignments.shape[1] > 0  # the first run took the projected path throughout
    for a, b in zip(outputs[True], outputs[False]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # the projected memory pays only while it is smaller than the weights' context columns, and never under autograd
    with torch.no_grad():
        assert _ContextShares.pays(dec, memory[:, :5]) and not _ContextShares.pays(dec, torch.zeros(B, 11, d_mem))
    assert not _ContextShares.pays(dec, memory[:, :5])


def test_teacher_forcing_ratio_mixes_truth_and_predictions() -> None:
    dec = _decoder(r=2).eval()
    memory, targets = _memory(), _targets(10)
    truth = dec(memory, MEM_LENGTHS, targets, teacher_forcing_ratio=1.0).mel
    free = dec(memory, MEM_LENGTHS, targets, teacher_forcing_ratio=0.0).mel
    mixed = dec(memory, MEM_LENGTHS, targets, teacher_forcing_ratio=0.5).mel
    # the first step sees the go frame either way; later steps differ with the feedback
    torch.testing.assert_close(truth[:, :2], free[:, :2])
    assert not torch.allclose(truth[:, 2:], free[:, 2:])
    assert not torch.allclose(mixed, truth) and not torch.allclose(mixed, free)
    with pytest.raises(ValueError, match="1.5"):
        dec(memory, MEM_LENGTHS, targets, teacher_forcing_ratio=1.5)


def test_scheduled_teacher_forcing_ratio() -> None:
    assert scheduled_teacher_forcing_ratio(500, 1.0, None, 1000) == 1.0
    assert scheduled_teacher_forcing_ratio(500, 1.0, 0.5, 0) == 1.0
    assert scheduled_teacher_forcing_ratio(0, 1.0, 0.5, 1000) == 1.0
    assert scheduled_teacher_forcing_ratio(500, 1.0, 0.5, 1000) == pytest.approx(0.75)
    assert scheduled_teacher_forcing_ratio(5000, 1.0, 0.5, 1000) == pytest.approx(0.5)


def test_cosine_lr_factor_by_hand() -> None:
    # warm-up 10 of 110 steps: 1/10, 2/10, ... 1; then half a cosine over the 100 remaining steps down to `final`
    assert cosine_lr_factor(0, 110, 10) == pytest.approx(0.1)
    assert cosine_lr_factor(9, 110, 10) == pytest.approx(1.0)
    assert cosine_lr_factor(10, 110, 10) == pytest.approx(1.0)
    assert cosine_lr_factor(60, 110, 10) == pytest.approx(0.5)  # halfway: cos(pi / 2) = 0
    assert cosine_lr_factor(35, 110, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine_lr_factor(110, 110, 10) == pytest.approx(0.0)
    assert cosine_lr_factor(500, 110, 10, final=0.1) == pytest.approx(0.1)
    assert cosine_lr_factor(60, 110, 10, final=0.1) == pytest.approx(0.55)
    assert cosine_lr_factor(0, 100) == pytest.approx(1.0)  # no warm-up


def test_lr_schedule_config_is_checked_and_the_cosine_schedule_steps_the_rate() -> None:
    with pytest.raises(ValueError, match="lr_schedule"):
        TacotronTrainingConfig(lr_schedule="linear")
    with pytest.raises(ValueError, match="lr_final_fraction"):
        TacotronTrainingConfig(lr_final_fraction=1.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        TacotronTrainingConfig(warmup_steps=-1)
    from types import SimpleNamespace

    from zoo.models.tacotron import seq2seq_optimizer

    module = SimpleNamespace(trainer=SimpleNamespace(estimated_stepping_batches=20))
    params = [torch.nn.Parameter(torch.zeros(1))]
    hp = TacotronTrainingConfig(lr=0.01, lr_schedule="cosine", warmup_steps=0, lr_final_fraction=0.0)
    conf = seq2seq_optimizer(module, params, hp)
    opt, schedule = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(20):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.01) and rates[10] == pytest.approx(0.005)
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert isinstance(seq2seq_optimizer(module, params, TacotronTrainingConfig()), torch.optim.Adam)
    module.trainer.estimated_stepping_batches = float("inf")
    with pytest.raises(ValueError, match="finite"):
        seq2seq_optimizer(module, params, hp)


def _coded_projection(dec: TacotronDecoder) -> torch.Tensor:
    """Zero the frame projection and code its bias: frame k of a step, channel c = 100 k + c."""
    r = dec.reduction_factor
    code = (100 * torch.arange(r).view(-1, 1) + torch.arange(N_MELS).view(1, -1)).float().flatten()  # (r*C,)
    with torch.no_grad():
        dec.frame_projection.weight.zero_()
        dec.frame_projection.bias.copy_(code)
    return code.view(r, N_MELS)


def test_reduction_factor_reshape_keeps_time_order_inside_the_decoder() -> None:
    r, time = 3, 12
    dec = _decoder(r=r).eval()
    code = _coded_projection(dec)
    fed = []
    dec.prenet.register_forward_hook(lambda module, args, out: fed.append(args[0].detach().clone()))
    targets = _coded_targets(time)
    out = dec(_memory(), MEM_LENGTHS, targets)
    # every step's r frames land consecutively, in order, for every utterance
    for b in range(B):
        for n in range(time // r):
            for k in range(r):
                torch.testing.assert_close(out.mel[b, n * r + k], code[k])
    # teacher forcing feeds step n the last target frame of step n-1 (go frame first), never another utterance's
    (inputs,) = fed  # one batched pre-net call, (B, N, n_mels)
    torch.testing.assert_close(inputs[:, 0], torch.zeros(B, N_MELS))
    torch.testing.assert_close(inputs[:, 1:], targets[:, r - 1 : time - 1 : r])
    # free-running feeds back the last frame the decoder predicted
    fed.clear()
    dec.infer(_memory(), MEM_LENGTHS, max_frames=2 * r, stop_threshold=0.999999)
    torch.testing.assert_close(fed[1], code[r - 1].expand(B, N_MELS))


def test_stop_token_ends_inference_and_max_length_guard_holds() -> None:
    dec = _decoder(r=2).eval()
    with torch.no_grad():
        dec.stop_projection.weight.zero_()
        dec.stop_projection.bias.copy_(torch.tensor([-20.0, 20.0]))  # stop on the 2nd frame of the 1st step
    out = dec.infer(_memory(), MEM_LENGTHS, max_frames=50)
    assert out.lengths.tolist() == [2, 2, 2] and out.stopped.all()
    assert out.mel.shape == (B, 2, N_MELS) and out.alignments.shape == (B, 1, T_ENC)
    with torch.no_grad():
        dec.stop_projection.bias.fill_(-20.0)  # never stops
    out = dec.infer(_memory(), MEM_LENGTHS, max_frames=7)
    assert out.lengths.tolist() == [8, 8, 8] and not out.stopped.any()  # 7 frames rounded up to whole steps
    assert out.mel.shape == (B, 8, N_MELS)


def test_inference_zeroes_frames_after_each_stop() -> None:
    dec = _decoder(r=1).eval()
    with torch.no_grad():
        dec.stop_projection.weight.zero_()
        dec.stop_projection.bias.fill_(-20.0)
    # utterance 0 stops from the start: the stop weight reads a context entry only its memory sets
    memory = _memory()
    memory[:, :, 0] = 0.0
    memory[0, :, 0] = 1.0
    with torch.no_grad():
        dec.stop_projection.weight[0, -D_MEM] = 40.0  # the context is the last D_MEM inputs of the projection
    out = dec.infer(memory, MEM_LENGTHS, max_frames=5)
    assert out.lengths.tolist() == [1, 5, 5] and out.stopped.tolist() == [True, False, False]
    assert (out.mel[0, 1:] == 0).all()


def test_decoder_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rnn_kind"):
        _decoder(rnn_kind="transformer")
    with pytest.raises(ValueError, match="reduction_factor"):
        _decoder(r=0)
    with pytest.raises(ValueError, match="n_components"):
        TacotronDecoder(D_MEM, N_MELS, DecoderConfig(attention_kind="content", attention_components=3))
    with pytest.raises(ValueError, match="residual"):
        DecoderConfig(decoder_rnn_dims=(16, 8), residual=True)
    with pytest.raises(ValueError, match="decoder_dropout"):
        DecoderConfig(decoder_dropout=1.0)


# ------------------------------------------------------------------------------------------- the networks


def _text() -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([8, 6, 3])
    text = torch.randint(2, VOCAB, (B, 8)).masked_fill(~lengths_to_mask(lengths, 8), 0)
    return text, lengths


def _tiny_gst(enabled: bool = True) -> GSTConfig:
    return GSTConfig(enabled=enabled, tokens=4, heads=2, ref_channels=(4, 4), ref_gru_hidden=8)


def _tiny_tacotron2_config(use_gst: bool = False) -> Tacotron2Config:
    return Tacotron2Config(
        encoder=Tacotron2EncoderConfig(embedding_dim=16, conv_channels=16, lstm_hidden=8),
        decoder=DecoderConfig(prenet_sizes=(16, 16), attention_rnn_dim=24, decoder_rnn_dims=(24,), attention_dim=8,
                              attention_filters=4, attention_kernel_size=5),
        postnet=PostnetConfig(channels=16), gst=_tiny_gst(use_gst),
    )


def _tiny_tacotron_config(use_gst: bool = False) -> TacotronConfig:
    return TacotronConfig(
        encoder=TacotronEncoderConfig(embedding_dim=16, prenet_sizes=(16, 8), K=3, channels=8, gru_hidden=8),
        decoder=dataclasses.replace(TACOTRON_DECODER, prenet_sizes=(16, 8), attention_rnn_dim=16,
                                    decoder_rnn_dims=(16, 16), attention_dim=8),
        postnet=CBHGPostnetConfig(K=3, channels=8, projection=16, gru_hidden=8), gst=_tiny_gst(use_gst),
    )


def _tiny_tacotron2(use_gst: bool = False) -> Tacotron2:
    return Tacotron2(VOCAB, N_MELS, _tiny_tacotron2_config(use_gst))


def _tiny_tacotron(use_gst: bool = False) -> Tacotron:
    return Tacotron(VOCAB, N_MELS, 10, _tiny_tacotron_config(use_gst))


@pytest.mark.parametrize("use_gst", [False, True])
def test_tacotron2_shapes_masks_and_backward(use_gst: bool) -> None:
    net = _tiny_tacotron2(use_gst=use_gst).train()
    text, text_lengths = _text()
    mel = torch.rand(B, 9, N_MELS)
    out = net(text, text_lengths, mel, MEL_LENGTHS)
    assert out.mel.shape == out.mel_postnet.shape == (B, 9, N_MELS)
    assert out.stop_logits.shape == (B, 9) and out.alignments.shape == (B, 9, 8)
    assert (out.alignments[1, :, 6:] == 0).all() and (out.alignments[2, :, 3:] == 0).all()
    loss = masked_spectrogram_loss(out.mel_postnet, mel, MEL_LENGTHS, "mse") + stop_token_loss(out.stop_logits, MEL_LENGTHS)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert (net.gst is not None) == use_gst


@pytest.mark.parametrize("use_gst", [False, True])
def test_tacotron_shapes_masks_and_backward(use_gst: bool) -> None:
    net = _tiny_tacotron(use_gst=use_gst).train()
    text, text_lengths = _text()
    mel = torch.rand(B, 9, N_MELS)
    out = net(text, text_lengths, mel, MEL_LENGTHS)
    assert out.mel.shape == (B, 9, N_MELS) and out.linear.shape == (B, 9, 10)
    assert out.alignments.shape == (B, 5, 8)  # r = 2 by default
    assert (out.linear[2, 4:] == 0).all()  # padded frames of the linear output are zero
    (out.mel.sum() + out.linear.sum() + out.stop_logits.sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("make", [_tiny_tacotron2, _tiny_tacotron])
def test_networks_infer_within_the_guard(make) -> None:
    net = make().eval()
    text, text_lengths = _text()
    out = net.infer(text, text_lengths, max_frames=10)
    assert out.mel.shape[1] <= 10 and out.mel.shape[0] == B
    assert ((out.lengths >= 1) & (out.lengths <= out.mel.shape[1])).all()


def test_gst_on_changes_with_the_reference_and_off_ignores_it() -> None:
    text, text_lengths = _text()
    with_gst = _tiny_tacotron2(use_gst=True).eval()
    ref_a, ref_b = torch.rand(B, 9, N_MELS), torch.rand(B, 9, N_MELS)
    assert not torch.allclose(with_gst.encode(text, text_lengths, ref_a, MEL_LENGTHS),
                              with_gst.encode(text, text_lengths, ref_b, MEL_LENGTHS))
    without = _tiny_tacotron2(use_gst=False).eval()
    torch.testing.assert_close(without.encode(text, text_lengths, ref_a, MEL_LENGTHS),
                               without.encode(text, text_lengths, ref_b, MEL_LENGTHS))
    # the style is one vector per utterance, added to every encoder step
    style = with_gst.encode(text, text_lengths, ref_a, MEL_LENGTHS) - with_gst._encode_text(text, text_lengths)
    torch.testing.assert_close(style, style[:, :1].expand_as(style))


def test_tacotron_prenet_and_projection_follow_keithito_tacotron2_keeps_its_own() -> None:
    text, text_lengths = _text()
    taco, taco2 = _tiny_tacotron(), _tiny_tacotron2()
    # Tacotron: pre-net dropout in training only, so inference is deterministic; Tacotron 2 keeps it on by design.
    assert taco.eval().decoder.prenet.always_dropout is False and taco2.decoder.prenet.always_dropout is True
    torch.testing.assert_close(taco.infer(text, text_lengths, max_frames=6).mel,
                               taco.infer(text, text_lengths, max_frames=6).mel)
    taco2.eval()
    first = taco2.infer(text, text_lengths, max_frames=6).mel
    second = taco2.infer(text, text_lengths, max_frames=6).mel
    assert first.shape != second.shape or not torch.allclose(first, second)
    # Tacotron's output projection reads the last residual GRU's output, Tacotron 2's [decoder output, context].
    assert taco.decoder.frame_projection.in_features == taco.decoder.decoder_rnns[-1].hidden_size
    assert taco2.decoder.frame_projection.in_features == taco2.decoder.decoder_rnns[-1].hidden_size + taco2.decoder.memory_dim


def test_reference_encoder_statistics_ignore_how_much_padding_the_batch_has() -> None:
    gst = GlobalStyleTokens(N_MELS, 8, _tiny_gst()).train()
    mel = torch.rand(B, 9, N_MELS) * lengths_to_mask(MEL_LENGTHS, 9).unsqueeze(-1)
    more_padding = torch.cat([mel, torch.zeros(B, 16, N_MELS)], dim=1)  # the same batch, padded to 25 frames
    torch.testing.assert_close(gst(more_padding, MEL_LENGTHS), gst(mel, MEL_LENGTHS))


def test_gst_weights_padding_and_explicit_styles() -> None:
    gst = GlobalStyleTokens(N_MELS, 8, _tiny_gst()).eval()
    mel = torch.rand(B, 9, N_MELS)
    weights = gst.token_weights(mel, MEL_LENGTHS)
    assert weights.shape == (B, 2, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, 2))
    garbage = mel + 50.0 * (~lengths_to_mask(MEL_LENGTHS, 9)).unsqueeze(-1) * torch.rand_like(mel)
    torch.testing.assert_close(gst.token_weights(garbage, MEL_LENGTHS), weights)
    torch.testing.assert_close(gst.from_weights(weights), gst(mel, MEL_LENGTHS))
    assert gst.uniform(2, torch.device("cpu")).shape == (2, 8)
    with pytest.raises(ValueError, match="divisible"):
        GlobalStyleTokens(N_MELS, 7, GSTConfig(heads=2))


# ------------------------------------------------------------------------------------------- losses and figures


def test_masked_spectrogram_loss_by_hand() -> None:
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])  # (1, 3, 2), frame 2 is padding
    target = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    lengths = torch.tensor([2])
    assert masked_spectrogram_loss(pred, target, lengths, "l1").item() == pytest.approx((1 + 2 + 2 + 3) / 4)
    assert masked_spectrogram_loss(pred, target, lengths, "mse").item() == pytest.approx((1 + 4 + 4 + 9) / 4)
    with pytest.raises(ValueError, match="huber"):
        masked_spectrogram_loss(pred, target, lengths, "huber")  # type: ignore[arg-type]
    # channel weights multiply each channel's error; the divisor stays frames x channels
    w = torch.tensor([1.0, 3.0])
    assert masked_spectrogram_loss(pred, target, lengths, "l1", w).item() == pytest.approx((1 + 3 * 2 + 2 + 3 * 3) / 4)
    assert masked_spectrogram_loss(pred, target, lengths, "mse", w).item() == pytest.approx((1 + 3 * 4 + 4 + 3 * 9) / 4)
    for bad in (torch.tensor([1.0, -1.0]), torch.ones(3)):
        with pytest.raises(ValueError, match="channel_weights"):
            masked_spectrogram_loss(pred, target, lengths, "l1", bad)


def test_stop_token_loss_by_hand() -> None:
    assert stop_targets(torch.tensor([3, 1]), 4).tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]
    logits = torch.tensor([[0.0, -1.0, 2.0, 0.5]])
    lengths = torch.tensor([3])
    sig = torch.sigmoid(logits[0])
    manual = -(torch.log(1 - sig[0]) + torch.log(1 - sig[1]) + torch.log(sig[2]) + torch.log(sig[3])) / 4
    assert stop_token_loss(logits, lengths).item() == pytest.approx(manual.item(), rel=1e-5)
    weighted = -(torch.log(1 - sig[0]) + torch.log(1 - sig[1]) + 3 * torch.log(sig[2]) + 3 * torch.log(sig[3])) / 4
    assert stop_token_loss(logits, lengths, pos_weight=3.0).item() == pytest.approx(weighted.item(), rel=1e-5)


def test_focus_rate_and_diagonality() -> None:
    eye = torch.eye(10).unsqueeze(0)  # (1, 10, 10) one encoder step per decoder step, on the diagonal
    ten = torch.tensor([10])
    assert focus_rate(eye, ten, ten).item() == pytest.approx(1.0)
    assert diagonality(eye, ten, ten).item() == pytest.approx(1.0)
    uniform = torch.full((1, 10, 10), 0.1)
    assert focus_rate(uniform, ten, ten).item() == pytest.approx(0.1)
    assert diagonality(uniform, ten, ten).item() == pytest.approx(28 / 100)  # cells with |n - t| <= 1
    stuck = torch.zeros(1, 10, 10)
    stuck[:, :, 0] = 1.0  # attends to the first character forever
    assert focus_rate(stuck, ten, ten).item() == pytest.approx(1.0)
    assert diagonality(stuck, ten, ten).item() == pytest.approx(0.2)
    # padding of a shorter utterance is ignored: the same diagonal, padded into a bigger batch tensor
    padded = torch.zeros(2, 12, 14)
    padded[0, :10, :10] = torch.eye(10)
    padded[1] = torch.rand(12, 14)
    a = diagonality(padded[:1], ten, ten)
    assert a.item() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------- the experiments

AUDIO = AudioConfig(sample_rate=8000, n_fft=64, hop_length=16, win_length=64, n_mels=N_MELS, fmax=4000.0,
                    griffin_lim_iters=2)


def _batch(linear: bool = False) -> SpeechBatch:
    text, text_lengths = _text()
    mel = torch.rand(B, 9, N_MELS).masked_fill(~lengths_to_mask(MEL_LENGTHS, 9).unsqueeze(-1), 0.0)
    return SpeechBatch(ids=["a", "b", "c"], text=text, text_lengths=text_lengths, mel=mel, mel_lengths=MEL_LENGTHS,
                       linear=torch.rand(B, 9, AUDIO.n_freq) if linear else None)


def _experiment2(**training) -> Tacotron2Experiment:
    return Tacotron2Experiment(audio=AUDIO, vocab_size=VOCAB, net=_tiny_tacotron2_config(),
                               training=TacotronTrainingConfig(max_decoder_frames=12, **training))


def _experiment1(**training) -> TacotronExperiment:
    return TacotronExperiment(audio=AUDIO, vocab_size=VOCAB, net=_tiny_tacotron_config(),
                              training=TacotronTrainingConfig(weight_decay=0.0, max_decoder_frames=12, **training))


def test_experiment_losses_add_up() -> None:
    model = _experiment2(guided_attention_weight=2.0, stop_weight=0.5)
    batch = _batch()
    out = model._run(batch)
    losses = model._losses(out, batch)
    assert set(losses) == {"mel", "mel_postnet", "stop", "guided_attention", "loss"}
    expected = losses["mel"] + losses["mel_postnet"] + 0.5 * losses["stop"] + 2.0 * losses["guided_attention"]
    torch.testing.assert_close(losses["loss"], expected)
    model1 = _experiment1()
    with pytest.raises(ValueError, match="load_linear"):
        model1._losses(model1._run(batch), batch)
    losses1 = model1._losses(model1._run(_batch(linear=True)), _batch(linear=True))
    assert set(losses1) == {"mel", "linear", "stop", "loss"}


def test_experiment_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        _experiment2(teacher_forcing_ratio=1.2)
    with pytest.raises(ValueError, match="stop_threshold"):
        _experiment2(stop_threshold=1.0)


@pytest.mark.parametrize("make,linear", [(_experiment2, False), (_experiment1, True)])
def test_media_sample_and_predict_write_wav_and_alignment(make, linear: bool, tmp_path: Path) -> None:
    from zoo.media import write_prediction

    model = make().eval()
    batch = _batch(linear)
    sample = model.media_sample(batch)
    assert sample.alignments.shape[0] == B and sample.decoder_lengths.tolist() == [
        math.ceil(n / model.reduction_factor) for n in MEL_LENGTHS.tolist()]
    assert sample.mel_pred.shape == batch.mel.shape and sample.audio_config == AUDIO
    predictions = model.predict_step(batch, 0)
    assert not any(tmp_path.iterdir())  # predict_step writes nothing itself
    for utt_id, pred in zip(batch.ids, predictions):
        result = write_prediction(tmp_path, pred)
        assert (tmp_path / f"{utt_id}.wav").is_file() and (tmp_path / f"{utt_id}.png").is_file()
        assert (tmp_path / "mels" / f"{utt_id}.npy").is_file()
        assert 1 <= result["frames"] <= 12 and pred.alignment.shape[0] == math.ceil(result["frames"] / model.reduction_factor)


def test_text_prompt_datamodule(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello world.\n\nA second, longer sentence.\n")
    dm = TextPromptDataModule(text_file=str(prompts), batch_size=4)
    (batch,) = list(dm.predict_dataloader())
    assert batch.ids == ["prompt000", "prompt001"] and batch.mel is None
    assert batch.text.shape == (2, int(batch.text_lengths.max()))
    assert batch.text[0, int(batch.text_lengths[0]) - 1] == dm.symbols.eos_id
    with pytest.raises(ValueError, match="exactly one"):
        TextPromptDataModule()


@pytest.mark.slow
def test_tacotron2_loss_decreases_on_the_embedded_corpus(tmp_path: Path) -> None:
    """A small Tacotron 2 trained briefly on the embedded eSpeak corpus: the training loss goes down."""
    import lightning as L

    from datamodules import LJSpeechDataModule

    torch.set_num_threads(1)
    L.seed_everything(0)
    dm = LJSpeechDataModule(root=str(tmp_path), source="embedded", batch_size=8, max_frames=250, progress=False)
    net = Tacotron2Config(
        encoder=Tacotron2EncoderConfig(embedding_dim=64, conv_channels=64, lstm_hidden=32),
        decoder=DecoderConfig(reduction_factor=3, prenet_sizes=(64, 64), attention_rnn_dim=128, decoder_rnn_dims=(128,),
                              attention_dim=64),
        postnet=PostnetConfig(channels=64),
    )
    model = Tacotron2Experiment(audio=dm.audio, vocab_size=dm.vocab_size, net=net,
                                training=TacotronTrainingConfig(lr=2e-3))
    losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = L.Trainer(max_steps=24, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, callbacks=[Record()],
                        default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=dm)
    assert len(losses) == 24
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.7 * first, f"loss did not decrease: {losses}"


def test_partial_configs_keep_each_experiments_own_defaults() -> None:
    """A dict naming some fields (a hand-edited checkpoint, a Python caller) fills the rest from the experiment's own
    defaults: Tacotron's training has no weight decay, its decoder is keithito's GRU decoder."""
    model = TacotronExperiment(audio=AUDIO, vocab_size=VOCAB, net={"decoder": {"attention_dim": 8}},
                               training={"lr": 2e-3})
    assert model.training_config.lr == 2e-3 and model.training_config.weight_decay == 0.0
    assert model.net_config.decoder.attention_dim == 8 and model.net_config.decoder.rnn_kind == "gru"
