"""RNN cells run step by step whose weight gradients are computed once per sequence, not once per step.

An autoregressive decoder (Tacotron's attention RNN and decoder RNNs, once per output step) makes autograd compute
every cell's weight gradient at every step: the outer product of the (B, 4H) gate gradient with the (B, in) input,
a product with K = B that writes a whole weight-sized tensor and adds it to a running sum. That is memory-bound, and
at Tacotron 2's sizes and batch 4 it was 83 % of a CPU training step (``bench/README.md``). The weight gradient is
the sum over steps, ``G^T X`` with G the stacked gate gradients and X the stacked inputs: one well-shaped product
(K = steps x B) once the backward pass has seen every step. ``SequenceCells`` runs ``nn.LSTMCell`` / ``nn.GRUCell``
modules that way: their parameters are used as they are (checkpoints do not change), the cell equations are
PyTorch's own (Hochreiter & Schmidhuber 1997 with a forget gate; Cho et al. 2014), and values and gradients equal
the cells' own up to float summation order (``tests/test_sequence_cells.py``).

How: every weight a sequence uses passes once through ``_SequenceWeight`` (an alias whose backward runs only after
every step's backward, because every step reads the alias); each step's ``_StepProduct`` returns the input's
gradient at once and files its output gradient, and the alias's backward turns all of them into the weight's
gradient with one product.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd import Function


class _Record:
    """The inputs and output gradients of every step's product with one weight, in step order."""

    __slots__ = ("inputs", "grads")

    def __init__(self) -> None:
        self.inputs: list[Tensor] = []
        self.grads: list[Tensor | None] = []


class _SequenceWeight(Function):
    """Identity on the weight; its backward is the weight's gradient summed over the recorded steps."""

    @staticmethod
    def forward(ctx, weight: Tensor, record: _Record) -> Tensor:  # noqa: D102
        ctx.record = record
        ctx.weight_dtype = weight.dtype
        ctx.set_materialize_grads(False)  # the steps send no gradient here; no weight-sized zeros needed
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, _unused: Tensor | None) -> tuple[Tensor | None, None]:  # noqa: D102
        record = ctx.record
        used = [(g, x) for g, x in zip(record.grads, record.inputs) if g is not None]
        record.grads = [None] * len(record.grads)  # a second backward (retain_graph) files them again
        if not used:
            return None, None
        grads = torch.cat([g for g, _ in used])  # (S*B, out)
        inputs = torch.cat([x for _, x in used])  # (S*B, in)
        dtype = torch.promote_types(grads.dtype, inputs.dtype)
        return (grads.to(dtype).transpose(0, 1) @ inputs.to(dtype)).to(ctx.weight_dtype), None  # (out, in)


class _StepProduct(Function):
    """x @ W^T for one step: the input's gradient now, the output's gradient filed for the weight's one product."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, record: _Record, index: int) -> Tensor:  # noqa: D102
        ctx.save_for_backward(weight)
        ctx.record, ctx.index, ctx.x_dtype = record, index, x.dtype
        ctx.set_materialize_grads(False)
        return x @ weight.transpose(0, 1)  # (B, out); under autocast in the autocast dtype

    @staticmethod
    def backward(ctx, grad: Tensor | None) -> tuple[Tensor | None, None, None, None]:  # noqa: D102
        if grad is None:
            return None, None, None, None
        (weight,) = ctx.saved_tensors
        ctx.record.grads[ctx.index] = grad
        grad_x = (grad @ weight.to(grad.dtype)).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        return grad_x, None, None, None


class _SequenceProduct:
    """One weight's products over a sequence's steps: call it with each step's (B, in) input."""

    def __init__(self, weight: Tensor) -> None:
        self.record = _Record()
        self.weight = _SequenceWeight.apply(weight, self.record)

    def __call__(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        self.record.inputs.append(x.detach())
        self.record.grads.append(None)
        return _StepProduct.apply(x, self.weight, self.record, len(self.record.inputs) - 1)


class SequenceCells:
    """Runs the given ``nn.LSTMCell`` / ``nn.GRUCell`` modules over one sequence, with per-sequence weight gradients.

    Make one per forward pass (it records that pass's steps) and call ``cells(cell, x, (h, c))`` in place of
    ``cell(x, (h, c))`` (LSTM) or ``cells(cell, x, h)`` in place of ``cell(x, h)`` (GRU). Cells without bias,
    or of other kinds, are an error.
    """

    def __init__(self, cells: list[nn.RNNCellBase]) -> None:
        self._plans: dict[int, tuple] = {}
        for cell in cells:
            if not cell.bias:
                raise ValueError(f"SequenceCells needs cells with biases, but got {cell}")
            if isinstance(cell, nn.LSTMCell):
                # one product per step with [W_ih, W_hh] on [x, h]; the biases summed once
                weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)  # (4H, in + H)
                self._plans[id(cell)] = ("lstm", _SequenceProduct(weight), cell.bias_ih + cell.bias_hh)
            elif isinstance(cell, nn.GRUCell):
                # the candidate gate reads r * (W_hn h + b_hn): the two products stay apart
                self._plans[id(cell)] = ("gru", _SequenceProduct(cell.weight_ih), _SequenceProduct(cell.weight_hh),
                                         cell.bias_ih, cell.bias_hh)
            else:
                raise ValueError(f"SequenceCells runs nn.LSTMCell and nn.GRUCell, but got {type(cell).__name__}")

    def __call__(self, cell: nn.RNNCellBase, x: Tensor, state: Tensor | tuple[Tensor, Tensor]):
        plan = self._plans.get(id(cell))
        if plan is None:
            raise ValueError(f"{type(cell).__name__} was not given to this SequenceCells")
        if plan[0] == "lstm":
            _, product, bias = plan
            h, c = state
            return lstm_update(product(torch.cat([x, h], dim=-1)) + bias, c)  # gates (B, 4H)
        _, product_ih, product_hh, bias_ih, bias_hh = plan
        return gru_update(product_ih(x) + bias_ih, product_hh(state) + bias_hh, state)


def lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """``nn.LSTMCell``'s update from its summed gates W_ih x + b_ih + W_hh h + b_hh, (B, 4H) in PyTorch's order
    (input, forget, cell, output), and the cell state (B, H) -> (h, c)."""
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_update(gi: Tensor, gh: Tensor, h: Tensor) -> Tensor:
    """``nn.GRUCell``'s update from the input's gates W_ih x + b_ih and the state's W_hh h + b_hh, (B, 3H) each in
    PyTorch's order (reset, update, new), and the state (B, H) -> the new state (B, H)."""
    gi_r, gi_z, gi_n = gi.chunk(3, dim=-1)
    gh_r, gh_z, gh_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(gi_r + gh_r)
    z = torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    return (1 - z) * n + z * h  # (B, H)
