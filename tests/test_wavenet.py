"""WaveNet vocoder: output-distribution losses vs brute force, samplers' statistics, the net, fast generation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, stats

from datamodules.vocoder import cut_windows
from zoo.losses.mixture import (
    bits_per_sample,
    categorical_nll,
    discretized_mix_logistic_log_prob,
    discretized_mix_logistic_nll,
    gaussian_nll,
    sample_categorical,
    sample_discretized_mix_logistic,
    sample_gaussian,
)
from zoo.losses.output_distribution import OutputConfig, make_output_distribution
import zoo.nn.wavenet as wavenet_module
from zoo.nn.wavenet import (
    ConditionUpsampler,
    WaveNet,
    WaveNetConfig,
    receptive_field,
    shift_right,
)

# ---------------------------------------------------------------------------------------------------------------
# Discretised mixture of logistics vs brute force
# ---------------------------------------------------------------------------------------------------------------


def _logistic_pdf(x: np.ndarray | float, mean: float, scale: float) -> np.ndarray:
    z = -np.abs((np.asarray(x) - mean) / scale)  # the density is symmetric; exp of a non-positive number is stable
    return np.exp(z) / (scale * (1.0 + np.exp(z)) ** 2)


def _brute_force_log_prob(y: float, w: np.ndarray, means: np.ndarray, scales: np.ndarray, k: int) -> float:
    """log of the mixture density integrated numerically over y's bin (the edge bins extend to -inf / +inf)."""
    half = 1.0 / (k - 1)
    lo = y - half if y > -1 + half else means.min() - 200 * scales.max() - 2.0  # the whole lower tail
    hi = y + half if y < 1 - half else means.max() + 200 * scales.max() + 2.0  # the whole upper tail
    total = 0.0
    for wi, mi, si in zip(w, means, scales):
        # quad with the component's peak and a few scales around it as break points, so tiny scales are not missed
        pts = [p for p in (mi - 5 * si, mi, mi + 5 * si) if lo < p < hi]
        val, _ = integrate.quad(_logistic_pdf, lo, hi, args=(mi, si), points=pts or None, limit=500,
                                epsabs=0.0, epsrel=1e-12)
        if val == 0.0:  # far tail: quad underflows; integrate on a fine grid in log space instead
            grid = np.linspace(lo, hi, 20001)
            logpdf = -np.abs((grid - mi) / si) - np.log(si) - 2 * np.log1p(np.exp(-np.abs((grid - mi) / si)))
            m = logpdf.max()
            val = np.exp(m) * np.trapezoid(np.exp(logpdf - m), grid)
        total += wi * val
    return math.log(total)


def _mol_params(logits, means, log_scales) -> torch.Tensor:
    """(M,) each -> y_hat (1, 3M, 1) float64."""
    return torch.tensor(np.concatenate([logits, means, log_scales]), dtype=torch.float64)[None, :, None]


MOL_CASES = {
    # name: (logits, means, log_scales, targets)
    "interior": ([0.3, -1.0, 1.2], [-0.3, 0.1, 0.5], [-3.0, -2.0, -4.0], [-0.31, 0.0, 0.1, 0.52, 0.9]),
    "edges": ([0.0, 0.5], [-0.98, 0.97], [-3.5, -3.0], [-1.0, 1.0]),
    "means_outside": ([1.0, -0.5], [-1.4, 1.3], [-2.0, -2.5], [-1.0, 1.0, 0.0]),
    "tiny_scale": ([0.0, 0.0], [0.2, -0.4], [-7.0, -6.5], [0.2, 0.2003, -0.4, -0.3999]),
    "low_probability": ([0.0], [0.0], [-5.0], [0.05, 0.08, -0.1]),  # cdf_delta < 1e-5: density x bin width
}


@pytest.mark.parametrize("num_classes", [256, 2**16])
@pytest.mark.parametrize("case", list(MOL_CASES))
def test_mol_log_prob_matches_brute_force(case: str, num_classes: int):
    logits, means, log_scales, targets = (np.asarray(v, dtype=np.float64) for v in MOL_CASES[case])
    # targets on the quantisation grid, as 16-bit (or 8-bit) audio is
    targets = np.round((targets + 1) / 2 * (num_classes - 1)) / (num_classes - 1) * 2 - 1
    y_hat = _mol_params(logits, means, log_scales).expand(len(targets), -1, -1)  # (N, 3M, 1)
    got = discretized_mix_logistic_log_prob(y_hat, torch.tensor(targets)[:, None], num_classes).squeeze(1).numpy()
    w = np.exp(logits - logits.max())
    w /= w.sum()
    want = [_brute_force_log_prob(t, w, means, np.exp(log_scales), num_classes) for t in targets]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("num_classes", [256, 2**16])
def test_mol_bin_probabilities_sum_to_one(num_classes: int):
    levels = torch.linspace(-1, 1, num_classes, dtype=torch.float64)  # every bin centre
    y_hat = _mol_params([0.5, -0.3, 0.0], [-0.95, 0.2, 0.99], [-4.0, -2.0, -6.0])  # mass near both edges
    log_p = discretized_mix_logistic_log_prob(y_hat.expand(num_classes, -1, -1), levels[:, None], num_classes)
    assert abs(log_p.exp().sum().item() - 1.0) < 1e-3


def test_mol_nll_reduce_and_bits():
    torch.manual_seed(0)
    y_hat = torch.randn(2, 30, 7)
    y = torch.rand(2, 7) * 2 - 1
    per_sample = discretized_mix_logistic_nll(y_hat, y, reduce=False)
    assert per_sample.shape == (2, 7)
    torch.testing.assert_close(discretized_mix_logistic_nll(y_hat, y), per_sample.mean())
    assert bits_per_sample(math.log(2.0)) == pytest.approx(1.0)


def test_mol_gradients_finite_for_extreme_inputs():
    m, t = 10, 6
    logits = torch.tensor([1e4, -1e4] * (m // 2), dtype=torch.float32)[None, :, None].expand(1, m, t)
    means = torch.tensor([50.0, -50.0, 1e3, -1e3, 0.0, 1.0, -1.0, 3.0, -3.0, 0.5])[None, :, None].expand(1, m, t)
    log_scales = torch.full((1, m, t), -7.0)
    log_scales[..., :2] = -30.0  # below the bound: clamped
    y_hat = torch.cat([logits, means, log_scales], 1).clone().requires_grad_(True)
    y = torch.tensor([[-1.0, 1.0, 0.0, 0.5, -0.999, 0.999]])
    loss = discretized_mix_logistic_nll(y_hat, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(y_hat.grad).all()


# ---------------------------------------------------------------------------------------------------------------
# Gaussian and categorical
# ---------------------------------------------------------------------------------------------------------------


def test_gaussian_nll_matches_scipy_and_goes_negative():
    mean, log_scale = 0.1, -3.0
    y = torch.tensor([[0.1, 0.12, -0.2]], dtype=torch.float64)
    y_hat = torch.tensor([[[mean] * 3, [log_scale] * 3]], dtype=torch.float64)
    got = gaussian_nll(y_hat, y, reduce=False)
    want = -stats.norm(mean, math.exp(log_scale)).logpdf(y.numpy())
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert got[0, 0] < 0  # a density above 1: the NLL of a sharp Gaussian is negative, as expected
    # the log-scale is bounded below
    sharp = torch.tensor([[[0.0], [-20.0]]], dtype=torch.float64)
    assert gaussian_nll(sharp, torch.zeros(1, 1, dtype=torch.float64)).item() == pytest.approx(
        -stats.norm(0, math.exp(-7.0)).logpdf(0.0))


def test_categorical_nll_is_cross_entropy():
    logits = torch.tensor([[[2.0], [0.0], [-1.0]]], dtype=torch.float64)  # (1, 3, 1)
    p = np.exp([2.0, 0.0, -1.0])
    p /= p.sum()
    assert categorical_nll(logits, torch.tensor([[1]])).item() == pytest.approx(-math.log(p[1]))


# ---------------------------------------------------------------------------------------------------------------
# Samplers' statistics (fixed seeds)
# ---------------------------------------------------------------------------------------------------------------


def test_gumbel_max_picks_components_with_softmax_frequencies():
    n, logits = 40000, torch.tensor([1.0, 0.0, -0.5, 2.0, 0.3])
    m = len(logits)
    # components far apart with tiny scales: the drawn value tells which component was picked
    means = torch.linspace(-0.8, 0.8, m)
    y_hat = torch.cat([logits, means, torch.full((m,), -7.0)])[None, :, None].expand(1, 3 * m, n)
    x = sample_discretized_mix_logistic(y_hat, generator=torch.Generator().manual_seed(0))  # (1, n)
    picked = (x[0, :, None] - means).abs().argmin(dim=1)
    observed = torch.bincount(picked, minlength=m).numpy()
    expected = torch.softmax(logits.double(), 0).numpy() * n
    assert stats.chisquare(observed, expected).pvalue > 0.01


def test_categorical_sampler_frequencies_with_temperature():
    n, logits = 30000, torch.tensor([1.0, 0.0, -1.0, 0.5])
    for temperature in (1.0, 0.5):
        ids = sample_categorical(logits[None, :, None].expand(1, 4, n), temperature,
                                 generator=torch.Generator().manual_seed(1))
        observed = torch.bincount(ids[0], minlength=4).numpy()
        expected = torch.softmax(logits.double() / temperature, 0).numpy() * n
        assert stats.chisquare(observed, expected).pvalue > 0.01


def test_mol_samples_follow_the_mixture_cdf():
    n = 20000
    logits, means, log_scales = [0.2, -0.4, 0.0], [-0.3, 0.05, 0.4], [-3.0, -4.0, -2.5]  # negligible mass past ±1
    y_hat = torch.tensor(logits + means + log_scales)[None, :, None].expand(1, 9, n)
    x = sample_discretized_mix_logistic(y_hat, generator=torch.Generator().manual_seed(2))[0].double().numpy()
    w = np.exp(logits) / np.exp(logits).sum()

    def cdf(v):
        return sum(wi * stats.logistic.cdf(v, mi, math.exp(si)) for wi, mi, si in zip(w, means, log_scales))

    assert stats.kstest(x, cdf).pvalue > 0.01


def test_gaussian_samples_follow_the_normal_cdf():
    n, mean, log_scale = 20000, -0.1, -2.0
    y_hat = torch.tensor([mean, log_scale])[None, :, None].expand(1, 2, n)
    x = sample_gaussian(y_hat, generator=torch.Generator().manual_seed(3))[0].double().numpy()
    assert stats.kstest(x, stats.norm(mean, math.exp(log_scale)).cdf).pvalue > 0.01


def test_samplers_use_the_given_noise():
    y_hat = torch.randn(2, 30, 5)
    u = torch.rand(2, 11, 5)
    torch.testing.assert_close(sample_discretized_mix_logistic(y_hat, uniform=u), sample_discretized_mix_logistic(y_hat, uniform=u))
    with pytest.raises(ValueError, match="uniform"):
        sample_discretized_mix_logistic(y_hat, uniform=torch.rand(2, 10, 5))
    x = sample_discretized_mix_logistic(y_hat * 100, uniform=u)
    assert x.abs().max() <= 1.0


# ---------------------------------------------------------------------------------------------------------------
# The net
# ---------------------------------------------------------------------------------------------------------------

TINY = WaveNetConfig(layers=6, stacks=2, residual_channels=8, gate_channels=12, skip_channels=10, kernel_size=3,
                     upsample_scales=(2, 3))


def _tiny(output: str = "mol", dtype=torch.float64, seed: int = 0, cond_channels: int = 5, **kw) -> tuple[WaveNet, object]:
    torch.manual_seed(seed)
    config = dataclasses.replace(TINY, output=OutputConfig(kind=output, num_mixtures=3), **kw)
    net = WaveNet(config, cond_channels=cond_channels).to(dtype).eval()
    return net, net.dist


def test_receptive_field_formula():
    assert receptive_field(24, 4, 3) == 2 * 4 * 63 + 1  # r9y9's 24-layer MoL recipe: 505 samples
    assert receptive_field(30, 3, 2) == 3 * 1023 + 1  # the original WaveNet's 3 x 10 layers
    net, _ = _tiny()
    assert net.receptive_field == 2 * 2 * 7 + 1


@pytest.mark.parametrize("output", ["mol", "gaussian", "categorical"])
def test_forward_shapes_and_backward(output: str):
    net, dist = _tiny(output, dtype=torch.float32)
    net.train()
    wav = torch.rand(2, 30) * 1.8 - 0.9
    mel = torch.rand(2, 5, 5)  # (B, n_mels, frames): 5 frames x hop 6 = 30 samples
    y_hat = net(dist.input_features(shift_right(wav)), mel)
    assert y_hat.shape == (2, dist.out_channels, 30)
    loss = dist.nll(y_hat, wav).mean()
    loss.backward()
    assert net.blocks[-1].out is None  # the last block's residual output would feed nothing: it has none
    for name, p in net.named_parameters():  # every parameter is used (DDP needs that) and gets a finite gradient
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("speakers,cond_channels", [(0, 5), (3, 5), (0, 0)], ids=["mel", "mel+speaker", "unconditional"])
def test_time_major_forward_equals_the_convolutions(speakers: int, cond_channels: int):
    net, dist = _tiny("mol", cond_channels=cond_channels, num_speakers=speakers, kernel_size=3)
    net.train()  # TINY has no dropout: train mode changes nothing but the path under test is the training one
    wav = torch.rand(2, 30, dtype=torch.float64) * 1.8 - 0.9
    mel = torch.rand(2, 5, 5, dtype=torch.float64) if cond_channels else None
    ids = torch.tensor([0, 2]) if speakers else None
    x = dist.input_features(shift_right(wav))
    c, g = net.upsample(mel, 30), net._speaker(ids)
    runs = []
    for forward in (net._forward_time_major, net._forward_channel_major):
        net.zero_grad()
        y = forward(x, c.detach() if c is not None else None, g.detach() if g is not None else None)
        dist.nll(y, wav).mean().backward()
        runs.append((y.detach(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}))
    (y_a, grads_a), (y_b, grads_b) = runs
    torch.testing.assert_close(y_a, y_b, rtol=0, atol=1e-12)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("time", [30, 3], ids=["long", "shorter-than-the-dilations"])
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_time_major_gradients_equal_the_convolutions_for_every_input(time: int, kernel_size: int):
    """The time-major CPU path against the convolutions, in float64: the
    gradients of every parameter and of the conditioning inputs too (the upsampler and speaker table train through
    them), with taps shifted past the whole window (dilation 4 > 3 samples)."""
    net, dist = _tiny("mol", cond_channels=5, num_speakers=3, kernel_size=kernel_size)
    net.train()
    wav = torch.rand(2, time, dtype=torch.float64) * 1.8 - 0.9
    x = dist.input_features(shift_right(wav))
    c0 = torch.rand(2, 5, time, dtype=torch.float64)
    g0 = torch.randn(2, net.config.speaker_channels, 1, dtype=torch.float64)
    runs = []
    for forward in (net._forward_time_major, net._forward_channel_major):
        net.zero_grad()
        c, g = c0.clone().requires_grad_(), g0.clone().requires_grad_()
        y = forward(x, c, g)
        (dist.nll(y, wav) * torch.rand_like(wav, generator=torch.Generator().manual_seed(1))).sum().backward()
        grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        runs.append((y.detach(), grads | {"c": c.grad, "g": g.grad}))
    (y_a, grads_a), (y_b, grads_b) = runs
    torch.testing.assert_close(y_a, y_b, rtol=0, atol=1e-12)
    assert grads_a.keys() == grads_b.keys() and {"c", "g", "blocks.0.conv.weight", "blocks.0.gcond.weight"} <= grads_a.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=0, atol=1e-10, msg=name)


def test_time_major_block_with_dropout_trains():
    """With dropout the taps read the dropped input and the residual the undropped one; every gradient is finite."""
    net, dist = _tiny("mol", dropout=0.3)
    net.train()
    wav = torch.rand(2, 30, dtype=torch.float64) * 1.8 - 0.9
    y = net._forward_time_major(dist.input_features(shift_right(wav)), net.upsample(torch.rand(2, 5, 5, dtype=torch.float64), 30), None)
    dist.nll(y, wav).mean().backward()
    for name, p in net.named_parameters():
        if "gcond" not in name and "speaker" not in name:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_output_is_causal_and_sees_exactly_the_receptive_field():
    net, _ = _tiny("gaussian")
    t, rf = 60, net.receptive_field
    x = torch.randn(1, 1, t, dtype=torch.float64, requires_grad=True)
    mel = torch.rand(1, 5, 10, dtype=torch.float64)
    y = net(x, mel)
    t0 = 45
    (grad,) = torch.autograd.grad(y[0, :, t0].sum(), x)
    seen = grad[0, 0].abs() > 0
    assert not seen[t0 + 1 :].any()  # nothing after t0
    assert seen[t0 - rf + 1 : t0 + 1].all() and not seen[: t0 - rf + 1].any()  # exactly the receptive field
    # and perturbing the future leaves the past unchanged
    x2 = x.detach().clone()
    x2[..., t0 + 1 :] += 1.0
    torch.testing.assert_close(net(x2, mel)[..., : t0 + 1], y.detach()[..., : t0 + 1], rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["transposed", "nearest"])
def test_upsampler_length_and_initial_alignment(mode: str):
    up = ConditionUpsampler(3, (2, 4), mode).double()
    mel = torch.rand(2, 3, 7, dtype=torch.float64)
    c = up(mel)
    assert c.shape == (2, 3, 56)
    if mode == "transposed":  # initialised to repetition: sample s reads frame s // hop
        torch.testing.assert_close(c, F.leaky_relu(mel, 0.4).repeat_interleave(8, -1))


@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize(("output", "kernel_size"), [("mol", 3), ("gaussian", 3), ("categorical", 3), ("mol", 2)])
def test_fast_generation_equals_naive_recomputation(output: str, kernel_size: int, backend: str, monkeypatch):
    net, dist = _tiny(output, num_speakers=3, speaker_channels=4, kernel_size=kernel_size)
    mel = torch.rand(2, 5, 8, dtype=torch.float64)  # 8 frames x hop 6 = 48 samples > receptive field (29 or 15)
    speakers = torch.tensor([2, 0])
    # the conditioning precomputed in several chunks (7 rounds up to 8, a multiple of every dilation), the last one
    # cut short inside a dilation block when 45 samples are asked for
    monkeypatch.setattr(wavenet_module._NumpySteps, "CHUNK", 7)
    short = net.generate(45, mel, speakers, generators=torch.Generator().manual_seed(5), backend=backend)
    fast = net.generate(48, mel, speakers, generators=torch.Generator().manual_seed(5), backend=backend)
    naive = net.generate_naive(48, mel, speakers, generators=torch.Generator().manual_seed(5))
    assert fast.shape == (2, 48) and fast.abs().max() <= 1
    torch.testing.assert_close(fast, naive, rtol=0, atol=1e-10)
    torch.testing.assert_close(short, net.generate_naive(45, mel, speakers, generators=torch.Generator().manual_seed(5)),
                               rtol=0, atol=1e-10)
    # the generated audio is what the training-mode forward pass would score: teacher forcing reproduces it
    y_hat = net(dist.input_features(shift_right(fast)), mel, speakers)
    torch.testing.assert_close(dist.sample(y_hat, dist.draw_noise(2, 48, torch.Generator().manual_seed(5), y_hat)),
                               fast, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_batched_generation_equals_per_utterance(backend: str):
    net, dist = _tiny("mol")
    mel = torch.rand(3, 5, 4, dtype=torch.float64)
    gens = [torch.Generator().manual_seed(10 + i) for i in range(3)]
    batched = net.generate(24, mel, generators=gens, backend=backend)
    for i in range(3):
        single = net.generate(24, mel[i : i + 1], generators=[torch.Generator().manual_seed(10 + i)], backend=backend)
        torch.testing.assert_close(batched[i : i + 1], single, rtol=0, atol=1e-12)


def test_unconditional_net_and_bad_sizes():
    net, dist = _tiny("gaussian", cond_channels=0)
    assert net.generate(10, batch_size=2, generators=torch.Generator().manual_seed(0)).shape == (2, 10)
    torch.testing.assert_close(net.generate(10, batch_size=2, generators=torch.Generator().manual_seed(0), backend="numpy"),
                               net.generate(10, batch_size=2, generators=torch.Generator().manual_seed(0), backend="torch"),
                               rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="backend"):
        net.generate(10, batch_size=2, backend="jax")
    with pytest.raises(ValueError, match="multiple of stacks"):
        WaveNetConfig(layers=10, stacks=3)
    with pytest.raises(ValueError, match="gate_channels"):
        WaveNetConfig(gate_channels=7)
    with pytest.raises(ValueError, match="OutputConfig.kind"):
        OutputConfig(kind="laplace")


# ---------------------------------------------------------------------------------------------------------------
# Training windows
# ---------------------------------------------------------------------------------------------------------------


def test_windows_keep_samples_aligned_with_their_mel_frames():
    hop, frames = 4, 3
    lengths = torch.tensor([37, 20, 9])  # the last one is shorter than a window (12 samples)
    s_max = int(lengths.max())
    # each sample carries its own index; each mel frame carries its index in every channel
    wav = torch.arange(s_max, dtype=torch.float32).repeat(3, 1) * (torch.arange(s_max) < lengths[:, None])
    t_max = 1 + s_max // hop
    mel = torch.arange(t_max, dtype=torch.float32)[None, :, None].expand(3, t_max, 2).clone()
    for random in (True, False):
        w = cut_windows(wav, lengths, mel, hop, frames, random=random, generator=torch.Generator().manual_seed(0))
        assert w.wav.shape == (3, frames * hop) and w.mel.shape == (3, frames, 2)
        for b in range(3):
            for i in range(frames * hop):
                if w.mask[b, i]:
                    s = int(w.wav[b, i])  # the original sample index
                    assert s // hop == int(w.mel[b, i // hop, 0])  # sample s lies in frame s // hop
                    assert s < lengths[b]
        assert w.mask[0].all() and w.mask[1].all()
        assert w.mask[2].sum() == 9 and (w.wav[2, 9:] == 0).all()
    # random starts cover every valid start (37 // 4 - 3 + 1 = 7 for the first utterance)
    starts = {int(cut_windows(wav, lengths, mel, hop, frames, generator=torch.Generator().manual_seed(k)).starts[0])
              for k in range(200)}
    assert starts == set(range(7))


# ---------------------------------------------------------------------------------------------------------------
# The LightningModule
# ---------------------------------------------------------------------------------------------------------------


def _tiny_vocoder(output: str = "mol", init_log_scale: float | None = -3.0):
    from zoo.audio import AudioConfig
    from zoo.models.wavenet import WaveNetTrainingConfig, WaveNetVocoder

    audio = AudioConfig(n_fft=64, win_length=64, hop_length=8, n_mels=6, fmax=None, sample_rate=8000)
    torch.manual_seed(0)
    net = WaveNetConfig(layers=4, stacks=2, residual_channels=8, gate_channels=8, skip_channels=8, upsample_scales=(2, 4),
                        output=OutputConfig(kind=output, num_mixtures=2, init_log_scale=init_log_scale))
    return WaveNetVocoder(audio=audio, net=net, training=WaveNetTrainingConfig(window_frames=3, media_seconds=0.004))


@pytest.mark.filterwarnings("ignore:You are trying to")
@pytest.mark.parametrize("output", ["mol", "gaussian", "categorical"])
def test_vocoder_step_media_and_vocode(output: str):
    from datamodules.batches import SpeechBatch

    model = _tiny_vocoder(output)
    lengths = torch.tensor([50, 30])
    wav = (torch.rand(2, 50) * 1.6 - 0.8) * (torch.arange(50) < lengths[:, None])
    mel = torch.rand(2, 1 + 50 // 8, 6)
    windows = cut_windows(wav, lengths, mel, 8, model.training_config.window_frames)
    loss = model.training_step(windows, 0)
    loss.backward()
    assert torch.isfinite(loss)
    batch = SpeechBatch(ids=["a", "b"], text=torch.zeros(2, 1, dtype=torch.long), text_lengths=torch.ones(2),
                        mel=mel, mel_lengths=torch.tensor([7, 4]), wav=wav, wav_lengths=lengths)
    model.eval()
    sample = model.media_sample(batch)
    assert sample.audio.shape == (2, 32) and sample.audio_config is model.audio  # ceil(0.004 s * 8000 / 8) = 4 frames
    waves = model.vocode(mel, torch.tensor([7, 4]), seed=0, progress=False)
    assert [w.shape[0] for w in waves] == [56, 32]


def test_vocoder_rejects_upsampling_that_does_not_match_the_hop():
    from zoo.models.wavenet import WaveNetVocoder

    with pytest.raises(ValueError, match="hop_length = 256"):
        WaveNetVocoder(net=WaveNetConfig(upsample_scales=(4, 4, 4)))


@pytest.mark.parametrize("output", ["mol", "gaussian"])
def test_output_layer_starts_at_init_log_scale_not_wider_than_the_signal(output: str):
    # Regression: with PyTorch's default output bias (log-scales ~0, i.e. scale ~1, wider than the whole [-1, 1]
    # signal) the MoL started worse than uniform, Adam's first steps saturated the gated units, and its validation
    # NLL stayed at the amplitude marginal (docs/results/wavenet.md). The output layer now starts at -3.
    wav = 0.1 * torch.sin(2 * math.pi * torch.arange(48) / 12).repeat(2, 1)  # speech-like amplitude, (2, 48)
    mel = torch.rand(2, 6, 6)  # (B, n_mels, frames): 6 frames x hop 8 = 48 samples
    bits = {}
    for init in (-3.0, None):
        model = _tiny_vocoder(output, init_log_scale=init)
        with torch.no_grad():
            y_hat = model.net(model.dist.input_features(shift_right(wav)), mel)
        log_scales = y_hat[:, 4:] if output == "mol" else y_hat[:, 1:]  # 2 mixtures: logits, means, log-scales
        if init is not None:
            assert abs(log_scales.mean().item() - init) < 0.5
        bits[init] = model.dist.bits_per_sample(model.dist.nll(y_hat, wav).mean()).item()
    assert bits[-3.0] < 16.0 < bits[None], bits  # 16 bits = uniform over the 2^16 levels


def test_init_log_scale_below_the_floor_is_rejected():
    for kind in ("mol", "gaussian"):
        with pytest.raises(ValueError, match="init_log_scale must be >= log_scale_min"):
            make_output_distribution(OutputConfig(kind=kind, log_scale_min=-7.0, init_log_scale=-8.0))


@pytest.mark.parametrize("output", ["mol", "gaussian", "categorical"])
def test_losses_are_computed_in_float32_from_bf16_outputs(output: str):
    """Under bf16 autocast the network's output is bf16; the NLL must still be the float32 one of those values
    (a 16-bit bin, 3e-5 wide, does not exist in bf16 near 1)."""
    torch.manual_seed(0)
    if output == "mol":
        y_hat = torch.randn(2, 6, 50).bfloat16()
        y = (torch.rand(2, 50) * 1.8 - 0.9).bfloat16()
        nll, ref = discretized_mix_logistic_nll(y_hat, y), discretized_mix_logistic_nll(y_hat.float(), y.float())
    elif output == "gaussian":
        y_hat = torch.randn(2, 2, 50).bfloat16()
        y = (torch.rand(2, 50) * 1.8 - 0.9).bfloat16()
        nll, ref = gaussian_nll(y_hat, y), gaussian_nll(y_hat.float(), y.float())
    else:
        y_hat = torch.randn(2, 256, 50).bfloat16()
        y = torch.randint(0, 256, (2, 50))
        nll, ref = categorical_nll(y_hat, y), categorical_nll(y_hat.float(), y)
    assert nll.dtype == torch.float32
    torch.testing.assert_close(nll, ref)


# ------------------------------------------------------------------------------------------- recipe and reproduce


def test_step_learning_rate_decay_halves_the_rate_every_n_steps():
    from zoo.models.wavenet import WaveNetTrainingConfig, WaveNetVocoder

    net = WaveNetConfig(layers=2, stacks=1, residual_channels=4, gate_channels=4, skip_channels=4,
                        output=OutputConfig(num_mixtures=2))
    model = WaveNetVocoder(net=net, training=WaveNetTrainingConfig(lr=1e-3, lr_decay_steps=2, lr_decay_rate=0.5))
    conf = model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
    assert isinstance(WaveNetVocoder(net=net).configure_optimizers(), torch.optim.Adam)
    with pytest.raises(ValueError, match="lr_decay_steps"):
        WaveNetTrainingConfig(lr_decay_steps=0)


def test_published_recipe_override_fits_with_ema_and_no_clipping(tmp_path):
    from pathlib import Path

    from lightning.pytorch.callbacks import EMAWeightAveraging

    from tests.conftest import make_ljspeech_tree
    from zoo.cli import ZooCLI, main

    root = Path(__file__).resolve().parent.parent
    make_ljspeech_tree(tmp_path / "lj", n=8)
    captured = {}
    original = ZooCLI.before_fit

    def spy(self):
        captured["trainer"] = self.trainer
        original(self)

    ZooCLI.before_fit = spy
    try:
        main(["fit", "--config", str(root / "configs" / "wavenet_mol.yaml"), "--config",
              str(root / "configs" / "overrides" / "wavenet_published.yaml"),
              "--model.init_args.net.layers", "4", "--model.init_args.net.stacks", "4", "--model.init_args.net.residual_channels", "4",
              "--model.init_args.net.gate_channels", "4", "--model.init_args.net.skip_channels", "4", "--model.init_args.training.window_frames", "2",
              "--data.init_args.source", "real", "--data.init_args.root", str(tmp_path / "lj"), "--data.init_args.download", "false",
              "--data.init_args.val_size", "1", "--data.init_args.test_size", "1", "--data.init_args.batch_size", "2",
              "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0", "--trainer.logger", "false",
              "--trainer.enable_checkpointing", "false", "--trainer.default_root_dir", str(tmp_path / "run"),
              "--trainer.accelerator", "cpu", "--trainer.devices", "1"])
    finally:
        ZooCLI.before_fit = original
    trainer = captured["trainer"]
    assert trainer.gradient_clip_val is None and trainer.global_step == 2
    (ema,) = [cb for cb in trainer.callbacks if isinstance(cb, EMAWeightAveraging)]
    module = trainer.lightning_module
    assert module.net_config.output.log_scale_min == -16.0 and module.training_config.lr_decay_steps == 200000
    assert module.net_config.output.kind == "mol" and module.net_config.output.num_mixtures == 10  # kept from the base


def test_reproduce_wavenet_tiny_preset_reports_curves_and_copy_synthesis(tmp_path):
    import json

    from tests.conftest import make_arctic_tree
    from zoo.cli import main
    from zoo.reproduce_wavenet import ROWS

    tree = make_arctic_tree(tmp_path / "arctic", n=12)
    out = tmp_path / "out"
    main(["reproduce", "wavenet", "--preset", "tiny", "--out", str(out), "--data-root", str(tmp_path / "data"),
          "--arctic-root", str(tree), "--no-wandb", "--eval-workers", "1"])
    report = json.loads((out / "report.json").read_text())
    assert set(report["rows"]) == set(ROWS)
    for dist in ("gaussian", "mol"):
        curves = report["curves"][dist]
        assert curves["val_steps"] and all(math.isfinite(v) for v in curves["val_nll"] + curves["train_nll"])
        assert report["rows"][f"wavenet_{dist}"]["checkpoint"].endswith("last.ckpt")
        assert report["rows"][f"wavenet_{dist}"]["generation"]["samples_per_second"] > 0
    assert "first_negative_step" in report["curves"]["gaussian"]
    for row in ("griffin_lim", "wavenet_gaussian", "wavenet_mol"):
        wavs = sorted((out / "wavs" / row).glob("*.wav"))
        assert len(wavs) == report["rows"][row]["n"] >= 1
        assert math.isfinite(report["rows"][row]["mcd_db"])
    assert report["rows"]["target_natural"]["mcd_db"] == pytest.approx(0.0, abs=1e-6)
    text = (out / "report.md").read_text()
    assert "| wavenet_mol: natural mel -> WaveNet, mixture of logistics |" in text and (out / "curves.png").is_file()
