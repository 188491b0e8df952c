"""SequenceCells: the same values and gradients as the cells' own step-by-step autograd, one weight product."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.nn.sequence_cells import SequenceCells
from zoo.nn.tacotron import TACOTRON_DECODER, DecoderConfig, TacotronDecoder


def _unroll(cell: nn.RNNCellBase, xs: torch.Tensor, cells: SequenceCells | None) -> torch.Tensor:
    """Run the cell over xs (S, B, in) from a zero state; the sum of squares of every step's output."""
    batch, hidden = xs.shape[1], cell.hidden_size
    h = xs.new_zeros(batch, hidden)
    c = xs.new_zeros(batch, hidden)
    total = xs.new_zeros(())
    for x in xs:
        if isinstance(cell, nn.LSTMCell):
            h, c = cell(x, (h, c)) if cells is None else cells(cell, x, (h, c))
        else:
            h = cell(x, h) if cells is None else cells(cell, x, h)
        total = total + h.pow(2).sum() + 0.5 * h.sum()
    return total


@pytest.mark.parametrize("kind", [nn.LSTMCell, nn.GRUCell])
def test_cells_match_torch_cells_values_and_gradients(kind):
    torch.manual_seed(0)
    cell = kind(5, 7).double()
    xs = torch.randn(9, 3, 5, dtype=torch.float64, requires_grad=True)
    reference = _unroll(cell, xs, None)
    reference.backward()
    expected = {n: p.grad.clone() for n, p in cell.named_parameters()}
    expected_x = xs.grad.clone()
    cell.zero_grad()
    xs.grad = None
    value = _unroll(cell, xs, SequenceCells([cell]))
    value.backward()
    assert torch.allclose(value, reference, rtol=0, atol=1e-12)
    for name, param in cell.named_parameters():
        assert torch.allclose(param.grad, expected[name], rtol=0, atol=1e-12), name
    assert torch.allclose(xs.grad, expected_x, rtol=0, atol=1e-12)


def test_a_second_backward_through_a_retained_graph_gives_the_gradient_again():
    torch.manual_seed(1)
    cell = nn.LSTMCell(4, 6).double()
    xs = torch.randn(5, 2, 4, dtype=torch.float64)
    value = _unroll(cell, xs, SequenceCells([cell]))
    value.backward(retain_graph=True)
    first = cell.weight_hh.grad.clone()
    value.backward()
    assert torch.allclose(cell.weight_hh.grad, 2 * first, rtol=0, atol=1e-12)


def test_steps_whose_outputs_the_loss_never_reads_add_nothing():
    torch.manual_seed(2)
    cell = nn.GRUCell(3, 4).double()
    xs = torch.randn(4, 2, 3, dtype=torch.float64)
    cells = SequenceCells([cell])
    h = xs.new_zeros(2, 4)
    outs = []
    for x in xs:
        h = cells(cell, x, h.detach())  # every step cut from the last: only the loss's own step counts
        outs.append(h)
    outs[1].sum().backward()
    expected = nn.GRUCell(3, 4).double()
    expected.load_state_dict(cell.state_dict())
    h = torch.zeros(2, 4, dtype=torch.float64)
    for x in xs[:2]:
        h = expected(x, h.detach())
    h.sum().backward()
    assert torch.allclose(cell.weight_ih.grad, expected.weight_ih.grad, rtol=0, atol=1e-12)
    assert torch.allclose(cell.weight_hh.grad, expected.weight_hh.grad, rtol=0, atol=1e-12)


def test_cells_without_bias_or_of_another_kind_are_a_clear_error():
    with pytest.raises(ValueError, match="biases"):
        SequenceCells([nn.LSTMCell(3, 4, bias=False)])
    with pytest.raises(ValueError, match="nn.LSTMCell and nn.GRUCell"):
        SequenceCells([nn.RNNCell(3, 4)])
    known, other = nn.LSTMCell(3, 4), nn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match="not given"):
        SequenceCells([known])(other, torch.zeros(1, 3), (torch.zeros(1, 4), torch.zeros(1, 4)))


@pytest.mark.parametrize("config", [
    DecoderConfig(attention_rnn_dim=32, decoder_rnn_dims=(24, 16), prenet_sizes=(16, 16), attention_dim=8),
    TACOTRON_DECODER,
], ids=["tacotron2-lstm", "tacotron-gru"])
def test_decoder_training_forward_matches_per_step_weight_gradients(config):
    torch.manual_seed(0)
    decoder = TacotronDecoder(20, 10, config).double()
    memory = torch.randn(3, 7, 20, dtype=torch.float64)
    targets = torch.randn(3, 12, 10, dtype=torch.float64)
    lengths = torch.tensor([7, 5, 3])
    runs = []
    for per_sequence in (True, False):
        decoder.sequence_weight_grads = per_sequence
        decoder.zero_grad()
        torch.manual_seed(1)  # the same dropout masks in both runs
        out = decoder(memory, lengths, targets, teacher_forcing_ratio=0.5)
        (out.mel.pow(2).sum() + out.stop_logits.sum() + out.alignments.pow(2).sum()).backward()
        runs.append((out.mel.detach(), {n: p.grad.clone() for n, p in decoder.named_parameters()}))
    (mel_a, grads_a), (mel_b, grads_b) = runs
    assert torch.allclose(mel_a, mel_b, rtol=0, atol=1e-12)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], rtol=0, atol=1e-10), name


def test_decoder_under_cpu_autocast_runs_and_gives_float32_weight_gradients():
    torch.manual_seed(0)
    decoder = TacotronDecoder(20, 10, DecoderConfig(attention_rnn_dim=32, decoder_rnn_dims=(24,),
                                                    prenet_sizes=(16, 16), attention_dim=8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = decoder(torch.randn(2, 6, 20), None, torch.randn(2, 8, 10))
        loss = out.mel.float().pow(2).mean()
    loss.backward()
    for rnn in [decoder.attention_rnn, *decoder.decoder_rnns]:
        assert rnn.weight_ih.grad.dtype == torch.float32
        assert torch.isfinite(rnn.weight_ih.grad).all() and rnn.weight_ih.grad.abs().sum() > 0
