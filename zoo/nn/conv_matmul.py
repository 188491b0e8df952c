"""2-D convolutions and transposed convolutions as one matrix product (im2col / col2im), for small feature maps on CPU.

On CPU, torch's oneDNN convolutions reach a fraction of the machine's matrix-product speed when a feature map is
only a few pixels across: the deep levels of pix2pix's UNet (4x4 kernels, 512-1024 channels, maps of 1x1-4x4)
ran at ~40 GFLOP/s forward + backward where one ``mm`` of the same shape runs at ~260 (``bench/README.md``, the
pix2pix profile). There ``F.unfold`` / ``F.fold`` around one product is cheap, and the product is well shaped;
on large maps the unfolded copy costs more than it saves, and on GPUs cuDNN is the better path. ``conv_small_maps``
takes that choice per call; the values equal the convolution's up to float summation order.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

# the matrix-product path where the smaller of the input and output maps has at most this many pixels
SMALL_MAP_PIXELS = 16


def conv2d_matmul(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int, padding: int) -> Tensor:
    """``F.conv2d`` (groups 1, dilation 1, zero padding) as unfold + one product: (B, C, H, W) -> (B, C_out, H', W')."""
    batch, _, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (B, C*kh*kw, H'*W')
    out = cols.transpose(1, 2).reshape(batch * h_out * w_out, -1) @ weight.reshape(c_out, -1).t()  # (B*H'*W', C_out)
    if bias is not None:
        out = out + bias
    return out.reshape(batch, h_out, w_out, c_out).permute(0, 3, 1, 2)


def conv_transpose2d_matmul(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int, padding: int) -> Tensor:
    """``F.conv_transpose2d`` (groups 1, dilation 1, no output padding) as one product + fold:
    (B, C, H, W) -> (B, C_out, (H - 1) * stride - 2 * padding + kh, ...)."""
    batch, c_in, height, width = x.shape
    _, c_out, kh, kw = weight.shape
    h_out = (height - 1) * stride - 2 * padding + kh
    w_out = (width - 1) * stride - 2 * padding + kw
    rows = x.permute(0, 2, 3, 1).reshape(batch * height * width, c_in)  # (B*H*W, C)
    cols = (rows @ weight.reshape(c_in, -1)).reshape(batch, height * width, -1).transpose(1, 2)  # (B, C_out*kh*kw, H*W)
    out = F.fold(cols, (h_out, w_out), (kh, kw), padding=padding, stride=stride)  # (B, C_out, H_out, W_out)
    return out if bias is None else out + bias[:, None, None]


def _plain(conv: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    """Whether the layer is the kind the matrix-product path reproduces exactly."""
    square = conv.stride[0] == conv.stride[1] and conv.padding[0] == conv.padding[1]
    extras = conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
    if isinstance(conv, nn.ConvTranspose2d):
        extras = extras and conv.output_padding == (0, 0)
    return square and extras and isinstance(conv.padding[0], int)


def conv_small_maps(conv: nn.Conv2d | nn.ConvTranspose2d, x: Tensor) -> Tensor:
    """``conv(x)``, through the matrix-product path on CPU where the smaller map has <= ``SMALL_MAP_PIXELS`` pixels."""
    if x.device.type != "cpu" or x.dim() != 4 or not _plain(conv):
        return conv(x)
    (height, width), stride, pad, (kh, kw) = x.shape[-2:], conv.stride[0], conv.padding[0], conv.kernel_size
    if isinstance(conv, nn.ConvTranspose2d):
        out = ((height - 1) * stride - 2 * pad + kh) * ((width - 1) * stride - 2 * pad + kw)
    else:
        out = ((height + 2 * pad - kh) // stride + 1) * ((width + 2 * pad - kw) // stride + 1)
    if min(height * width, out) > SMALL_MAP_PIXELS:
        return conv(x)
    if isinstance(conv, nn.ConvTranspose2d):
        return conv_transpose2d_matmul(x, conv.weight, conv.bias, stride, pad)
    return conv2d_matmul(x, conv.weight, conv.bias, stride, pad)


def run_small_maps(block: nn.Sequential, x: Tensor) -> Tensor:
    """Run a Sequential, its 2-D (transposed) convolutions through ``conv_small_maps``."""
    for layer in block:
        x = conv_small_maps(layer, x) if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) else layer(x)
    return x
