"""pix2pix networks (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks"):
a UNet generator with skip connections and a PatchGAN discriminator conditioned on the input image.

Plain ``torch.nn``; images are (B, C, H, W). For spectrograms H is the mel-bin axis and W the frame axis.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from zoo.config import block_config, check_fraction, check_positive
from zoo.nn.conv_matmul import run_small_maps
from zoo.sequence import pad_to_multiple

Norm = Literal["batch", "instance"]


@block_config
class UNetConfig:
    """The generator: ``depth`` down-samplings, channels doubling from ``channels`` up to ``max_channels`` (pix2pix's
    ngf 64 -> 512), ``dropout`` on the up-sampling blocks next to the innermost (pix2pix's 0.5), ``residual``: x +
    UNet(x), starting as the identity (not in pix2pix; see ``UNetGenerator``)."""

    depth: int = 6
    channels: int = 64
    max_channels: int = 512
    dropout: float = 0.5
    residual: bool = False

    def __post_init__(self) -> None:
        if self.depth < 2:
            raise ValueError(f"UNetConfig.depth must be >= 2, but got {self.depth}")
        check_positive("UNetConfig", channels=self.channels)
        if self.max_channels < self.channels:
            raise ValueError(f"UNetConfig needs channels <= max_channels, but got {self.channels} and {self.max_channels}")
        check_fraction("UNetConfig", dropout=self.dropout)


@block_config
class PatchGANConfig:
    """The discriminator: ``layers`` feature layers (3: 70x70 patches) from ``channels`` (pix2pix's ndf 64)."""

    channels: int = 64
    layers: int = 3

    def __post_init__(self) -> None:
        check_positive("PatchGANConfig", channels=self.channels, layers=self.layers)


@block_config
class Pix2PixConfig:
    """Both networks and the normalisation they share (``norm``: "batch", pix2pix's, or "instance")."""

    generator: UNetConfig = UNetConfig()
    discriminator: PatchGANConfig = PatchGANConfig()
    norm: Norm = "batch"

    def __post_init__(self) -> None:
        if self.norm not in ("batch", "instance"):
            raise ValueError(f"Pix2PixConfig.norm must be 'batch' or 'instance', but got {self.norm!r}")


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"norm must be 'batch' or 'instance', but got {kind!r}")


def _twos(n: int) -> int:
    """How many times ``n`` > 0 can be halved exactly (its 2-adic valuation)."""
    return (n & -n).bit_length() - 1


def check_unet_size(depth: int, size: tuple[int, int]) -> None:
    """Raise ``ValueError`` unless a UNet of ``depth`` down-samplings fits an input of ``size`` (H, W).

    Every down-sampling halves both sides, and the skips must line up on the way back, so each side must be a
    multiple of 2**depth (a 64×64 crop takes at most 6 down-samplings, which reach 1×1).
    """
    h, w = size
    if h < 1 or w < 1:
        raise ValueError(f"the input size must be positive, but got {h}×{w}")
    m = 2**depth
    if h % m or w % m:
        max_depth = min(_twos(h), _twos(w))
        raise ValueError(
            f"a UNet of depth {depth} halves its input {depth} times, so each side must be a multiple of "
            f"2**{depth} = {m}, but got {h}×{w} (mel bins × frames); use depth <= {max_depth} or a size that is "
            f"a multiple of {m}"
        )


class _Down(nn.Module):
    """LeakyReLU(0.2) → 4×4 stride-2 conv → norm; the outermost block has no activation before it, the innermost
    no norm (a 1×1 bottleneck has no spatial statistics to normalise)."""

    def __init__(self, c_in: int, c_out: int, norm: Norm, outermost: bool, innermost: bool) -> None:
        super().__init__()
        use_norm = not (outermost or innermost)
        layers: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        # BatchNorm has its own shift, so the conv before it needs no bias (as in pix2pix).
        layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not (use_norm and norm == "batch")))
        if use_norm:
            layers.append(_norm(norm, c_out))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_small_maps(self.block, x)  # the deep levels' tiny maps as one matrix product on CPU


class _Up(nn.Module):
    """ReLU → 4×4 stride-2 transposed conv → norm (→ dropout); the outermost block ends in tanh instead of norm."""

    def __init__(self, c_in: int, c_out: int, norm: Norm, outermost: bool, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReLU()]
        layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=outermost or norm != "batch"))
        if outermost:
            layers.append(nn.Tanh())
        else:
            layers.append(_norm(norm, c_out))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_small_maps(self.block, x)  # the deep levels' tiny maps as one matrix product on CPU


class UNetGenerator(nn.Module):
    """pix2pix's UNet (Isola et al. 2017, section 3.2.1 and appendix 6.1.1): ``depth`` down-samplings, each
    mirrored by an up-sampling that also sees the encoder's features of the same resolution (skip connections).

    Channels double from ``config.channels`` per level up to ``max_channels`` (pix2pix: 64 → 512). As in pix2pix's
    ``unet_256``, dropout acts on the ``depth - 5`` up-sampling blocks just outside the innermost one (none for
    depth <= 5). Output in (-1, 1) (tanh). Input (B, in_channels, H, W) with H and W multiples of 2**depth
    (``check_unet_size``) -> (B, out_channels, H, W).

    ``residual=True`` (not in pix2pix; for polishing an estimate that is already close to its target) returns
    x + UNet(x), with the last up-sampling's weights zeroed so the generator starts as the identity: its L1 starts
    at the input's, and the adversarial term has to earn every change. Needs in_channels == out_channels.
    """

    def __init__(self, config: UNetConfig = UNetConfig(), norm: Norm = "batch", in_channels: int = 1,
                 out_channels: int = 1) -> None:
        super().__init__()
        if config.residual and in_channels != out_channels:
            raise ValueError(f"a residual UNet needs in_channels == out_channels, but got {in_channels} and {out_channels}")
        _norm(norm, 1)  # validates the name
        depth = self.depth = config.depth
        self.residual = config.residual
        ch = [min(config.channels * 2**i, config.max_channels) for i in range(depth)]  # channels of level i's features
        self.downs = nn.ModuleList(
            _Down(in_channels if i == 0 else ch[i - 1], ch[i], norm, outermost=i == 0, innermost=i == depth - 1)
            for i in range(depth)
        )
        # ups[i] maps level i's features (concatenated with the skip, except at the innermost level) to level i-1.
        dropout_levels = range(max(depth - 1 - max(depth - 5, 0), 1), depth - 1)
        self.ups = nn.ModuleList(
            _Up(
                ch[i] if i == depth - 1 else 2 * ch[i],
                out_channels if i == 0 else ch[i - 1],
                norm,
                outermost=i == 0,
                dropout=config.dropout if i in dropout_levels else 0.0,
            )
            for i in range(depth)
        )
        if config.residual:
            self.zero_output_layer()

    def zero_output_layer(self) -> None:
        """Zero the outermost transposed conv, so a residual generator is the identity (call after any re-init)."""
        conv = self.ups[0].block[1]
        with torch.no_grad():
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (2**depth)."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_unet_size(self.depth, (x.shape[-2], x.shape[-1]))
        skips = []
        h = x  # (B, C_in, H, W)
        for down in self.downs:
            h = down(h)  # (B, ch[i], H / 2^(i+1), W / 2^(i+1))
            skips.append(h)
        h = self.ups[-1](skips[-1])  # the bottleneck has no skip partner
        for i in range(self.depth - 2, -1, -1):
            h = self.ups[i](torch.cat([skips[i], h], dim=1))  # (B, 2·ch[i], ...) -> (B, ch[i-1], 2×)
        return x + h if self.residual else h  # (B, C_out, H, W)

    def forward_any_size(self, x: torch.Tensor, pad_value: float) -> torch.Tensor:
        """Fully convolutional inference on any (B, C, H, W): pad H and W at the end with ``pad_value`` (the
        silence level) to multiples of 2**depth, run, and crop back to (B, C_out, H, W)."""
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x, self.multiple, dim=-2, value=pad_value)  # mel bins
        padded = pad_to_multiple(padded, self.multiple, dim=-1, value=pad_value)  # frames
        return self(padded)[..., :h, :w]


def patchgan_receptive_field(n_layers: int) -> int:
    """The side of the input patch one PatchGAN output sees: 16, 34, 70, 142 for 1-4 layers (4x4 kernels; stride 2
    for the first conv and all feature layers but the last, stride 1 for the last two). A crop no larger than it
    makes every output see the whole crop: a global, not a patch, discriminator."""
    strides = [2] + [2] * (n_layers - 1) + [1, 1]
    field = 1
    for stride in reversed(strides):
        field = (field - 1) * stride + 4
    return field


class PatchGANDiscriminator(nn.Module):
    """pix2pix's conditional PatchGAN (Isola et al. 2017, section 3.2.2): classifies each overlapping patch of
    (condition, image), concatenated along channels, as real or fake; ``config.layers=3`` gives 70×70 patches.

    (B, cond_channels, H, W), (B, image_channels, H, W) -> logits (B, 1, H', W'), H' = H / 2^layers - 2.
    """

    def __init__(self, config: PatchGANConfig = PatchGANConfig(), norm: Norm = "batch", cond_channels: int = 1,
                 image_channels: int = 1) -> None:
        super().__init__()
        base_channels, n_layers = config.channels, config.layers
        bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.Conv2d(cond_channels + image_channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        c = base_channels
        for n in range(1, n_layers + 1):
            c_next = base_channels * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last feature layer keeps resolution (pix2pix's NLayerDiscriminator)
            layers += [nn.Conv2d(c, c_next, 4, stride=stride, padding=1, bias=bias), _norm(norm, c_next), nn.LeakyReLU(0.2)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.cond_channels, self.image_channels = cond_channels, image_channels
        self.receptive_field = patchgan_receptive_field(n_layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if condition.shape[-2:] != image.shape[-2:] or condition.shape[0] != image.shape[0]:
            raise ValueError(
                f"condition and image must have the same batch and spatial size, but got {tuple(condition.shape)} "
                f"and {tuple(image.shape)}"
            )
        return self.net(torch.cat([condition, image], dim=1))  # (B, 1, H', W') patch logits


@torch.no_grad()
def init_pix2pix_weights(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix's initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
