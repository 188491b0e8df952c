"""Diagnose a WaveNetVocoder checkpoint on the first 4 centred validation windows of the embedded corpus.

Prints the share of tanh inputs beyond +-3 (saturated gates), how much the gated units vary over time, and whether
the predicted mean follows the signal. Usage (measured figures in docs/results/wavenet.md):
    OMP_NUM_THREADS=1 python docs/results/wavenet/gate_saturation.py DATA_ROOT CKPT [CKPT ...]
"""

import sys

import torch
import torch.nn.functional as F

from datamodules import LJSpeechDataModule
from datamodules.vocoder import cut_windows
from zoo.models.wavenet import WaveNetVocoder
from zoo.nn.wavenet import shift_right

dm = LJSpeechDataModule(source="embedded", root=sys.argv[1], load_wav=True, batch_size=4, val_size=20, progress=False)
dm.prepare_data()
dm.setup("fit")
b = next(iter(dm.val_dataloader()))
w = cut_windows(b.wav, b.wav_lengths, b.mel, 256, 8, random=False)
for ckpt in sys.argv[2:]:
    m = WaveNetVocoder.load_from_checkpoint(ckpt, map_location="cpu").eval()
    net, x = m.net, shift_right(w.wav)
    with torch.no_grad():
        y_hat = net(m.dist.input_features(x), w.mel.transpose(1, 2))
        k = y_hat.shape[1] // 3
        mean = (y_hat[:, :k].softmax(1) * y_hat[:, k : 2 * k]).sum(1) if m.hparams.output == "mol" else y_hat[:, 0]
        c, h = net.upsample(w.mel.transpose(1, 2), x.shape[-1]), net.first(m.dist.input_features(x))
        sat, zstd = [], []
        for blk in net.blocks:
            a, g = (blk.conv(F.pad(h, (blk.padding, 0))) + blk.cond(c)).chunk(2, 1)  # (B, G/2, T) each
            sat.append((a.abs() > 3).float().mean().item())
            zstd.append((a.tanh() * g.sigmoid()).std(2).mean().item())
            h, _ = blk(h, c, None)
    corr = torch.corrcoef(torch.stack([mean.flatten(), x.flatten()]))[0, 1].item()
    print(f"{ckpt}: tanh inputs |a|>3 {sum(sat) / len(sat):.0%}; gated units' std over time "
          f"{sum(zstd) / len(zstd):.4f}; predicted mean: std over time {mean.std(1).mean():.4f} "
          f"(signal {w.wav.std(1).mean():.4f}), corr with x[t-1] {corr:.2f}")
