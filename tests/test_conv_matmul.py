"""The matrix-product convolutions equal torch's, values and gradients; the UNet gives the same either way."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo.nn.conv_matmul as conv_matmul
from zoo.nn.conv_matmul import conv2d_matmul, conv_small_maps, conv_transpose2d_matmul
from zoo.nn.pix2pix import UNetConfig, UNetGenerator


def _values_and_grads(fn, x, weight, bias):
    x = x.clone().requires_grad_(True)
    weight = weight.clone().requires_grad_(True)
    bias = bias.clone().requires_grad_(True)
    out = fn(x, weight, bias)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
    return out.detach(), x.grad, weight.grad, bias.grad


@pytest.mark.parametrize("size,stride,padding", [((4, 4), 2, 1), ((2, 6), 2, 1), ((7, 5), 1, 1), ((2, 2), 2, 1)])
def test_conv2d_matmul_equals_conv2d(size, stride, padding):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, *size, generator=g, dtype=torch.float64)
    weight = torch.randn(6, 5, 4, 4, generator=g, dtype=torch.float64)
    bias = torch.randn(6, generator=g, dtype=torch.float64)
    got = _values_and_grads(lambda a, w, b: conv2d_matmul(a, w, b, stride, padding), x, weight, bias)
    want = _values_and_grads(lambda a, w, b: F.conv2d(a, w, b, stride=stride, padding=padding), x, weight, bias)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (4, 3)])
def test_conv_transpose2d_matmul_equals_conv_transpose2d(size):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, *size, generator=g, dtype=torch.float64)
    weight = torch.randn(6, 3, 4, 4, generator=g, dtype=torch.float64)
    bias = torch.randn(3, generator=g, dtype=torch.float64)
    got = _values_and_grads(lambda a, w, b: conv_transpose2d_matmul(a, w, b, 2, 1), x, weight, bias)
    want = _values_and_grads(lambda a, w, b: F.conv_transpose2d(a, w, b, stride=2, padding=1), x, weight, bias)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_only_small_maps_take_the_matrix_product(monkeypatch):
    calls = []
    monkeypatch.setattr(conv_matmul, "conv2d_matmul", lambda *a: calls.append(a[0].shape) or F.conv2d(
        a[0], a[1], a[2], stride=a[3], padding=a[4]))
    conv = nn.Conv2d(2, 3, 4, stride=2, padding=1)
    conv_small_maps(conv, torch.randn(1, 2, 8, 8))  # 8x8 -> 4x4: the output has 16 pixels
    conv_small_maps(conv, torch.randn(1, 2, 16, 16))  # 16x16 -> 8x8: torch's convolution
    conv_small_maps(nn.Conv2d(2, 3, 4, stride=2, padding=1, dilation=2), torch.randn(1, 2, 8, 8))  # not plain
    assert calls == [torch.Size([1, 2, 8, 8])]


def test_unet_is_the_same_network_with_and_without_the_matrix_product_path(monkeypatch):
    torch.manual_seed(0)
    net = UNetGenerator(UNetConfig(depth=4, channels=4, max_channels=16, dropout=0.0)).double()
    x = torch.randn(2, 1, 16, 32, dtype=torch.float64)
    runs = []
    for pixels in (conv_matmul.SMALL_MAP_PIXELS, -1):  # -1: torch's convolutions everywhere
        monkeypatch.setattr(conv_matmul, "SMALL_MAP_PIXELS", pixels)
        net.zero_grad()
        out = net(x)
        out.pow(2).sum().backward()
        runs.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    assert torch.allclose(runs[0][0], runs[1][0], rtol=0, atol=1e-12)
    for a, b in zip(runs[0][1], runs[1][1]):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)
