"""Tiny-config tests of zoo.nn.tacotron_blocks and zoo.nn.attention: shapes, masks, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zoo.nn.attention import (
    Attention,
    AttentionState,
    BahdanauAttention,
    GMMAttention,
    LocationSensitiveAttention,
    build_attention,
    normalize_energies,
)
from zoo.nn.tacotron_blocks import (
    CBHG,
    ConvBiLSTMEncoder,
    Highway,
    MaskedBatchNorm1d,
    MaskedBatchNorm2d,
    Postnet,
    PostnetConfig,
    Prenet,
    frames_to_steps,
    last_frame_of_steps,
    stack_decoder_outputs,
    steps_to_frames,
)
from zoo.losses.tacotron import guided_attention_loss
from zoo.sequence import decoder_steps, lengths_to_mask, pad_to_multiple

B, T, D = 3, 11, 8
LENGTHS = torch.tensor([11, 7, 4])


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _with_garbage(x: torch.Tensor, lengths: torch.Tensor, extra: int = 5) -> torch.Tensor:
    """Same valid frames as x, random garbage in every padded frame plus `extra` more of them."""
    garbage = 100.0 * torch.randn(x.shape[0], x.shape[1] + extra, x.shape[2])
    valid = lengths_to_mask(lengths, x.shape[1] + extra).unsqueeze(-1)  # (B, T+extra, 1)
    padded = torch.cat([x, torch.zeros(x.shape[0], extra, x.shape[2])], dim=1)
    return torch.where(valid, padded, garbage)


def _assert_valid_frames_equal(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor) -> None:
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(a[i, :n], b[i, :n], atol=1e-5, rtol=1e-5)


def _assert_finite_grads(module: nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


def _entropy(weights: torch.Tensor) -> torch.Tensor:
    return -(weights * weights.clamp_min(1e-12).log()).sum(-1)


# ---------------------------------------------------------------------------------------------- prenet


def test_prenet_shape_and_dropout_stays_on_in_eval() -> None:
    prenet = Prenet(D, sizes=(16, 12)).eval()
    x = torch.randn(B, D)
    assert prenet(x).shape == (B, 12)
    assert prenet.out_dim == 12
    assert not torch.equal(prenet(x), prenet(x))


def test_prenet_is_deterministic_in_eval_without_always_dropout() -> None:
    prenet = Prenet(D, sizes=(16, 12), always_dropout=False).eval()
    x = torch.randn(B, T, D)
    assert torch.equal(prenet(x), prenet(x))
    prenet.train()
    assert not torch.equal(prenet(x), prenet(x))


@pytest.mark.parametrize("kwargs", [{"in_dim": 0}, {"sizes": ()}, {"sizes": (8, -1)}, {"dropout": 1.0}])
def test_prenet_rejects_bad_args(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Prenet(**{"in_dim": D, **kwargs})


# ---------------------------------------------------------------------------------------------- highway


def test_highway_gate_starts_mostly_closed() -> None:
    highway = Highway(D)
    gate_at_zero = torch.sigmoid(highway.gate(torch.zeros(1, D)))
    torch.testing.assert_close(gate_at_zero, torch.full((1, D), 1 / (1 + math.e)))
    x = torch.randn(256, D)
    assert torch.sigmoid(highway.gate(x)).mean() < 0.35
    assert highway(x).shape == x.shape
    with pytest.raises(ValueError, match="-3"):
        Highway(-3)


# ---------------------------------------------------------------------------------------------- CBHG


def _tiny_cbhg() -> CBHG:
    # projections end at 12 != in_dim (residual projection) and != highway_dim (pre-highway projection)
    return CBHG(D, K=4, conv_channels=6, projections=(10, 12), highway_layers=2, gru_hidden=5, highway_dim=9)


def test_cbhg_shapes_even_kernels_keep_length() -> None:
    cbhg = _tiny_cbhg()
    x = torch.randn(B, T, D)
    assert cbhg(x, LENGTHS).shape == (B, T, 10)
    assert cbhg(x).shape == (B, T, 10)
    paper_sized = CBHG(D, K=3, conv_channels=4, projections=(6, D), gru_hidden=4, highway_dim=D)
    assert isinstance(paper_sized.residual, nn.Identity) and isinstance(paper_sized.pre_highway, nn.Identity)
    assert paper_sized(x, LENGTHS).shape == (B, T, 8)


@pytest.mark.parametrize("train", [False, True])
def test_cbhg_padding_does_not_leak(train: bool) -> None:
    cbhg = _tiny_cbhg().train(train)
    x = torch.randn(B, T, D)
    out = cbhg(x, LENGTHS)
    out_garbage = cbhg(_with_garbage(x, LENGTHS), LENGTHS)
    _assert_valid_frames_equal(out, out_garbage, LENGTHS)
    assert (out[1, 7:] == 0).all() and (out[2, 4:] == 0).all()


def test_cbhg_rejects_bad_args_and_lengths() -> None:
    with pytest.raises(ValueError, match="K"):
        CBHG(D, K=0)
    with pytest.raises(ValueError, match="projections"):
        CBHG(D, projections=())
    with pytest.raises(ValueError, match="lengths"):
        _tiny_cbhg()(torch.randn(B, T, D), torch.tensor([12, 3, 3]))


# ---------------------------------------------------------------------------------------------- Tacotron 2 encoder


def test_encoder_shapes_and_padding_does_not_leak() -> None:
    encoder = ConvBiLSTMEncoder(D, conv_channels=10, kernel_size=5, n_convs=3, lstm_hidden=6).eval()
    x = torch.randn(B, T, D)
    out = encoder(x, LENGTHS)
    assert out.shape == (B, T, 12)
    _assert_valid_frames_equal(out, encoder(_with_garbage(x, LENGTHS), LENGTHS), LENGTHS)
    assert (out[2, 4:] == 0).all()


def test_encoder_padding_does_not_leak_through_training_batch_norm() -> None:
    encoder = ConvBiLSTMEncoder(D, conv_channels=10, dropout=0.0, lstm_hidden=6).train()
    x = torch.randn(B, T, D)
    _assert_valid_frames_equal(encoder(x, LENGTHS), encoder(_with_garbage(x, LENGTHS), LENGTHS), LENGTHS)


def test_encoder_rejects_even_kernel() -> None:
    with pytest.raises(ValueError, match="4"):
        ConvBiLSTMEncoder(D, kernel_size=4)


# ---------------------------------------------------------------------------------------------- postnet


def test_postnet_shapes_masking_and_no_leak() -> None:
    postnet = Postnet(D, PostnetConfig(channels=12, kernel_size=5, n_convs=5)).eval()
    x = torch.randn(B, T, D)
    residual = postnet(x, LENGTHS)
    assert residual.shape == (B, T, D)
    assert (residual[1, 7:] == 0).all()
    _assert_valid_frames_equal(residual, postnet(_with_garbage(x, LENGTHS), LENGTHS), LENGTHS)
    assert postnet(x).shape == (B, T, D)
    with pytest.raises(ValueError, match="n_convs"):
        PostnetConfig(n_convs=1)
    with pytest.raises(ValueError, match="kernel_size"):
        PostnetConfig(kernel_size=4)


def test_postnet_zero_init_residual_starts_as_the_identity_and_still_learns() -> None:
    torch.manual_seed(0)
    x = torch.rand(B, T, D)
    default = Postnet(D, PostnetConfig(channels=12)).train()
    assert default(x, LENGTHS).abs().mean() > 0.1  # unit-variance residual on [0, 1]-scaled frames
    postnet = Postnet(D, PostnetConfig(channels=12, zero_init_residual=True)).train()
    residual = postnet(x, LENGTHS)
    assert (residual == 0).all()  # in training mode (dropout on) too
    (residual - x).abs().mean().backward()
    last = postnet.convs[-1].bn.weight
    assert last.grad is not None and last.grad.abs().sum() > 0  # the scale gets a gradient: not stuck at 0
    assert all(c.bn.weight.grad is None or (c.bn.weight.grad == 0).all() for c in postnet.convs[:-1])


def test_masked_batch_norm_uses_valid_frames_only() -> None:
    bn = MaskedBatchNorm1d(D, momentum=1.0)
    x = torch.randn(B, D, T)
    mask = lengths_to_mask(LENGTHS, T).unsqueeze(1)  # (B, 1, T)
    y = bn(x, mask)
    valid = torch.cat([x[i, :, :n] for i, n in enumerate(LENGTHS.tolist())], dim=1)  # (D, sum(lengths))
    torch.testing.assert_close(bn.running_mean, valid.mean(1))
    torch.testing.assert_close(bn.running_var, valid.var(1, unbiased=True))
    reference = nn.functional.batch_norm(valid.unsqueeze(0), None, None, training=True)[0]
    torch.testing.assert_close(torch.cat([y[i, :, :n] for i, n in enumerate(LENGTHS.tolist())], 1), reference)
    bn.eval()
    torch.testing.assert_close(bn(x, mask), nn.BatchNorm1d.forward(bn, x))


def test_masked_batch_norm_2d_uses_valid_time_steps_only() -> None:
    bn = MaskedBatchNorm2d(D, momentum=1.0)
    x = torch.randn(B, D, T, 3)  # (B, C, T, F)
    y = bn(x, lengths_to_mask(LENGTHS, T)[:, None, :, None])
    valid = torch.cat([x[i, :, :n].flatten(1) for i, n in enumerate(LENGTHS.tolist())], dim=1)  # (D, sum(n) * F)
    torch.testing.assert_close(bn.running_mean, valid.mean(1))
    torch.testing.assert_close(bn.running_var, valid.var(1, unbiased=True))
    reference = nn.functional.batch_norm(valid.unsqueeze(0), None, None, training=True)[0]
    torch.testing.assert_close(torch.cat([y[i, :, :n].flatten(1) for i, n in enumerate(LENGTHS.tolist())], 1), reference)
    bn.eval()
    torch.testing.assert_close(bn(x, None), nn.BatchNorm2d.forward(bn, x))


# ---------------------------------------------------------------------------------------------- attention

Q, M, A, T_ENC = 10, 8, 6, 9
ENC_LENGTHS = torch.tensor([9, 5, 2])
ENC_MASK = lengths_to_mask(ENC_LENGTHS, T_ENC)  # (B, T_enc)
KINDS = [
    ("content", {}),
    ("content", {"normalization": "sigmoid"}),
    ("location", {"n_filters": 4, "kernel_size": 5}),
    ("location", {"n_filters": 4, "kernel_size": 5, "normalization": "sigmoid", "inverse_temperature": 2.0}),
    ("gmm", {"n_components": 3}),
]


def _run_steps(attention: Attention, queries: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None):
    processed = attention.process_memory(memory)
    state = attention.init_state(memory, mask)
    contexts, weights = [], []
    for query in queries.unbind(1):
        context, w, state = attention(query, memory, processed, mask, state)
        contexts.append(context)
        weights.append(w)
    return torch.stack(contexts, 1), torch.stack(weights, 1), state  # (B, N, D_mem), (B, N, T_enc)


@pytest.mark.parametrize("kind,options", KINDS)
def test_attention_shapes_masks_and_grads(kind: str, options: dict) -> None:
    attention = build_attention(kind, Q, M, A, **options)
    memory = torch.randn(B, T_ENC, M)
    contexts, weights, state = _run_steps(attention, torch.randn(B, 4, Q), memory, ENC_MASK)
    assert contexts.shape == (B, 4, M) and weights.shape == (B, 4, T_ENC)
    assert isinstance(state, AttentionState) and state.cumulative.shape == (B, T_ENC)
    torch.testing.assert_close(state.cumulative, weights.sum(1))
    assert (weights.masked_select(~ENC_MASK.unsqueeze(1)) == 0).all()
    if kind != "gmm":
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, 4))
    (contexts.square().sum() + weights.square().sum()).backward()
    _assert_finite_grads(attention)


def test_attention_returns_a_named_triple() -> None:
    attention = build_attention("location", Q, M, A)
    memory = torch.randn(B, T_ENC, M)
    out = attention(torch.randn(B, Q), memory, attention.process_memory(memory), ENC_MASK,
                    attention.init_state(memory, ENC_MASK))
    context, weights, state = out
    assert out.context is context and out.weights is weights and out.state is state
    assert state.means.shape == (B, 0)


def test_location_attention_uses_previous_and_cumulative_alignment() -> None:
    attention = build_attention("location", Q, M, A, n_filters=4, kernel_size=3)
    memory = torch.randn(B, T_ENC, M)
    processed = attention.process_memory(memory)
    query = torch.randn(B, Q)
    state = attention.init_state(memory, ENC_MASK)
    base = attention(query, memory, processed, ENC_MASK, state).weights
    first = torch.zeros(B, T_ENC)
    first[:, 0] = 1.0
    moved_previous = attention(query, memory, processed, ENC_MASK, state._replace(alignment=first)).weights
    moved_cumulative = attention(query, memory, processed, ENC_MASK, state._replace(cumulative=first)).weights
    assert not torch.allclose(base, moved_previous)
    assert not torch.allclose(base, moved_cumulative)
    assert not torch.allclose(moved_previous, moved_cumulative)
    # content attention ignores the state entirely
    content = build_attention("content", Q, M, A)
    processed = content.process_memory(memory)
    torch.testing.assert_close(
        content(query, memory, processed, ENC_MASK, state).weights,
        content(query, memory, processed, ENC_MASK, state._replace(alignment=first)).weights,
    )


@pytest.mark.parametrize("kind", ["content", "location"])
def test_inverse_temperature_sharpens(kind: str) -> None:
    plain = build_attention(kind, Q, M, A)
    sharp = build_attention(kind, Q, M, A, inverse_temperature=4.0)
    sharp.load_state_dict(plain.state_dict())
    memory, queries = torch.randn(B, T_ENC, M), torch.randn(B, 1, Q)
    _, w_plain, _ = _run_steps(plain, queries, memory, ENC_MASK)
    _, w_sharp, _ = _run_steps(sharp, queries, memory, ENC_MASK)
    assert (_entropy(w_sharp) < _entropy(w_plain)).all()


def test_sigmoid_normalization_is_smoother_than_softmax() -> None:
    energies = 3.0 * torch.randn(B, T_ENC)
    soft, smooth = normalize_energies(energies, ENC_MASK), normalize_energies(energies, ENC_MASK, "sigmoid")
    torch.testing.assert_close(smooth.sum(-1), torch.ones(B))
    expected = torch.sigmoid(energies) * ENC_MASK
    torch.testing.assert_close(smooth, expected / expected.sum(-1, keepdim=True))
    assert (_entropy(smooth[:2]) > _entropy(soft[:2])).all()


def test_gmm_attention_moves_forward_on_a_constant_query() -> None:
    attention = build_attention("gmm", Q, M, A, n_components=3)
    memory = torch.randn(1, 40, M)
    queries = torch.randn(1, 1, Q).expand(1, 12, Q)
    _, weights, state = _run_steps(attention, queries, memory, None)
    positions = torch.arange(40, dtype=torch.float32)
    centroid = (weights[0] * positions).sum(-1) / weights[0].sum(-1)  # (N,)
    assert (centroid.diff() >= 0).all(), centroid
    assert centroid[-1] > centroid[0] + 5
    assert (state.means > 0).all()


@pytest.mark.parametrize("kind,options", KINDS)
def test_attention_weights_are_float32_under_bf16_autocast(kind: str, options: dict) -> None:
    attention = build_attention(kind, Q, M, A, **options)
    memory = torch.randn(B, T_ENC, M)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        contexts, weights, state = _run_steps(attention, torch.randn(B, 3, Q), memory, ENC_MASK)
    assert weights.dtype == torch.float32
    assert state.alignment.dtype == state.cumulative.dtype == state.means.dtype == torch.float32
    assert torch.isfinite(contexts).all()
    if kind != "gmm":
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, 3))


def test_build_attention_classes_and_bad_args() -> None:
    assert type(build_attention("content", Q, M)) is BahdanauAttention
    assert type(build_attention("location", Q, M)) is LocationSensitiveAttention
    assert type(build_attention("gmm", Q, M)) is GMMAttention
    with pytest.raises(ValueError, match="'dot'"):
        build_attention("dot", Q, M)
    with pytest.raises(ValueError, match="n_filters"):
        build_attention("gmm", Q, M, n_filters=32)
    with pytest.raises(ValueError, match="n_components"):
        build_attention("location", Q, M, n_components=5)
    with pytest.raises(ValueError, match="30"):
        build_attention("location", Q, M, kernel_size=30)
    with pytest.raises(ValueError, match="'tanh'"):
        build_attention("content", Q, M, normalization="tanh")
    with pytest.raises(ValueError, match="0.0"):
        build_attention("content", Q, M, inverse_temperature=0.0)


# ---------------------------------------------------------------------------------------------- gradients


def test_every_block_gets_finite_gradients() -> None:
    x = torch.randn(B, T, D)
    blocks = [
        (Prenet(D, sizes=(16, 12)), lambda m: m(x)),
        (Highway(D), lambda m: m(x)),
        (_tiny_cbhg(), lambda m: m(x, LENGTHS)),
        (ConvBiLSTMEncoder(D, conv_channels=10, lstm_hidden=6), lambda m: m(x, LENGTHS)),
        (Postnet(D, PostnetConfig(channels=12)), lambda m: m(x, LENGTHS)),
    ]
    for block, run in blocks:
        run(block.train()).square().sum().backward()
        _assert_finite_grads(block)


def test_blocks_run_under_bf16_autocast() -> None:
    x = torch.randn(B, T, D)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for block in [_tiny_cbhg(), ConvBiLSTMEncoder(D, conv_channels=10, lstm_hidden=6), Postnet(D, PostnetConfig(channels=12))]:
            out = block.train()(x, LENGTHS)
            assert torch.isfinite(out).all() and out.shape[:2] == (B, T)


# ---------------------------------------------------------------------------------------------- reduction factor

R, C, N_STEPS = 3, 4, 5


def _coded_frames(batch: int = 2, time: int = R * N_STEPS, channels: int = C) -> torch.Tensor:
    """frames[b, t, c] = 10000 b + 100 t + c, so any misplaced value is visible."""
    b = torch.arange(batch).view(-1, 1, 1)
    t = torch.arange(time).view(1, -1, 1)
    c = torch.arange(channels).view(1, 1, -1)
    return (10000 * b + 100 * t + c).float()  # (B, T, C)


def test_frames_to_steps_keeps_time_order() -> None:
    frames = _coded_frames()
    steps = frames_to_steps(frames, R)
    assert steps.shape == (2, N_STEPS, R * C)
    for b in range(2):
        for n in range(N_STEPS):
            for k in range(R):  # k-th frame of step n is frame n*r + k
                torch.testing.assert_close(steps[b, n, k * C : (k + 1) * C], frames[b, n * R + k])
    torch.testing.assert_close(steps_to_frames(steps, R), frames)
    torch.testing.assert_close(frames_to_steps(frames, 1), frames)


def test_wrong_order_reshapes_are_caught() -> None:
    frames = _coded_frames()
    steps = frames_to_steps(frames, R)
    wrong_channel_major = steps.reshape(2, C, -1).transpose(1, 2)  # classic bug: channels and time swapped
    assert wrong_channel_major.shape == frames.shape
    assert not torch.equal(wrong_channel_major, steps_to_frames(steps, R))
    assert not torch.equal(wrong_channel_major, frames)
    step_first = steps.transpose(0, 1).contiguous()  # (N, B, r*C), as a decoder loop stacks by default
    wrong_step_first = step_first.reshape(2, N_STEPS * R, C)
    assert not torch.equal(wrong_step_first, frames)


def test_stack_decoder_outputs_matches_frame_indices() -> None:
    frames = _coded_frames()
    step_outputs = list(frames_to_steps(frames, R).unbind(1))  # N tensors of (B, r*C), as a decoder emits them
    stacked = stack_decoder_outputs(step_outputs, R)
    torch.testing.assert_close(stacked, frames)
    assert not torch.equal(torch.stack(step_outputs, 0).reshape(2, N_STEPS * R, C), stacked)
    with pytest.raises(ValueError):
        stack_decoder_outputs([], R)


def test_last_frame_of_steps_is_the_latest_frame() -> None:
    frames = _coded_frames()
    steps = frames_to_steps(frames, R)
    torch.testing.assert_close(last_frame_of_steps(steps, R, C), frames[:, R - 1 :: R])
    torch.testing.assert_close(last_frame_of_steps(steps[:, 2], R, C), frames[:, 3 * R - 1])
    with pytest.raises(ValueError, match="12"):
        last_frame_of_steps(steps, R, C + 1)


def test_pad_to_multiple() -> None:
    frames = _coded_frames(time=7)
    with pytest.raises(ValueError, match="7"):
        frames_to_steps(frames, R)
    padded = pad_to_multiple(frames, R, value=-1.0)
    assert padded.shape == (2, 9, C)
    torch.testing.assert_close(padded[:, :7], frames)
    assert (padded[:, 7:] == -1.0).all()
    assert pad_to_multiple(padded, R) is padded
    assert pad_to_multiple(frames.transpose(1, 2), 4, dim=2).shape == (2, C, 8)
    with pytest.raises(ValueError, match="0"):
        pad_to_multiple(frames, 0)


# ---------------------------------------------------------------------------------------------- guided attention


def test_guided_attention_loss_matches_brute_force() -> None:
    alignments = torch.rand(2, 6, 5)
    dec_lengths, enc_lengths = torch.tensor([6, 4]), torch.tensor([5, 3])
    g = 0.3
    total, count = 0.0, 0
    for b in range(2):
        big_t, big_n = int(dec_lengths[b]), int(enc_lengths[b])
        for t in range(big_t):
            for n in range(big_n):
                w = 1.0 - math.exp(-((n / big_n - t / big_t) ** 2) / (2 * g * g))
                total += float(alignments[b, t, n]) * w
                count += 1
    loss = guided_attention_loss(alignments, dec_lengths, enc_lengths, g=g)
    assert loss.shape == ()
    torch.testing.assert_close(loss, torch.tensor(total / count))


def test_guided_attention_loss_is_near_zero_on_a_diagonal() -> None:
    diagonal = torch.eye(6).unsqueeze(0)  # (1, 6, 6)
    lengths = torch.tensor([6])
    assert guided_attention_loss(diagonal, lengths, lengths).item() == pytest.approx(0.0, abs=1e-7)
    stretched = torch.eye(4).repeat_interleave(3, dim=0).unsqueeze(0)  # (1, 12, 4): 3 frames per token
    near = guided_attention_loss(stretched, torch.tensor([12]), torch.tensor([4]))
    anti = guided_attention_loss(stretched.flip(1), torch.tensor([12]), torch.tensor([4]))
    assert near < 0.25 * anti
    with pytest.raises(ValueError, match="0"):
        guided_attention_loss(diagonal, lengths, lengths, g=0.0)


def test_decoder_steps_is_ceil_of_frames_over_r() -> None:
    assert decoder_steps(torch.tensor([1, 4, 5, 8, 9]), 4).tolist() == [1, 1, 2, 2, 3]
    with pytest.raises(ValueError, match="r must be positive"):
        decoder_steps(torch.tensor([3]), 0)


def _packed_run(rnn, x, lengths):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]


@pytest.mark.parametrize("kind", [torch.nn.LSTM, torch.nn.GRU])
def test_bidirectional_rnn_without_packing_equals_the_packed_run(kind):
    from zoo.nn.tacotron_blocks import run_bidirectional_rnn

    torch.manual_seed(0)
    rnn = kind(5, 4, batch_first=True, bidirectional=True).double()
    x = torch.randn(4, 9, 5, dtype=torch.float64)
    lengths = torch.tensor([9, 3, 7, 1])
    runs = []
    for run in (run_bidirectional_rnn, _packed_run):
        rnn.zero_grad()
        xi = x.clone().requires_grad_(True)
        out = run(rnn, xi, lengths)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        runs.append((out.detach(), xi.grad, [p.grad.clone() for p in rnn.parameters()]))
    (out_a, gx_a, gp_a), (out_b, gx_b, gp_b) = runs
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-12)
    assert (out_a[1, 3:] == 0).all()  # zeros on padding
    torch.testing.assert_close(gx_a, gx_b, rtol=0, atol=1e-12)
    for a, b in zip(gp_a, gp_b):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_bidirectional_rnn_rejects_what_it_does_not_reproduce():
    from zoo.nn.tacotron_blocks import run_bidirectional_rnn

    for rnn in (torch.nn.LSTM(3, 2, batch_first=True), torch.nn.LSTM(3, 2, num_layers=2, bidirectional=True,
                                                                       batch_first=True)):
        with pytest.raises(ValueError, match="1-layer bidirectional"):
            run_bidirectional_rnn(rnn, torch.zeros(1, 2, 3), torch.tensor([2]))
    with pytest.raises(ValueError, match=r"values in \[1, 2\]"):  # longer than the padded batch: no gather error
        run_bidirectional_rnn(torch.nn.GRU(3, 2, batch_first=True, bidirectional=True), torch.zeros(1, 2, 3),
                              torch.tensor([3]))


def test_reference_encoder_final_state_equals_the_packed_gru():
    from torch.nn.utils.rnn import pack_padded_sequence

    from zoo.nn.tacotron import ReferenceEncoder

    torch.manual_seed(0)
    enc = ReferenceEncoder(8, (4, 4), 6).double().eval()
    mel = torch.rand(3, 12, 8, dtype=torch.float64)
    lengths = torch.tensor([12, 5, 8])
    got = enc(mel, lengths)
    captured = {}
    enc.gru.register_forward_hook(lambda m, inp, out: captured.update(x=inp[0]))  # returns None: output kept
    enc(mel, lengths)
    x = captured["x"]  # the padded (B, T', C * F') sequence the GRU read
    down = (((lengths - 1) // 2 + 1) - 1) // 2 + 1
    want = enc.gru(pack_padded_sequence(x, down, batch_first=True, enforce_sorted=False))[1][0]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
