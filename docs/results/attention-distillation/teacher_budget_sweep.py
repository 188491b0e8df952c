"""The real preset's teacher at small budgets: which change moves its dev conversions (``cpu-budget.md``).

A measurement script, not a training entry point (that is ``python -m zoo fit`` / ``reproduce``): it builds the real
preset's teacher net (``Seq2SeqVC``, 128-unit encoder, 256-unit decoder, r = 4, zero-init post-net) and trains it with
the LightningModule's own losses (``zoo.losses.tacotron``: L1 on decoder and post-net frames, stop BCE with positive
weight 8, guided attention) and clipping (1.0), Adam (eps 1e-6), but in a plain loop, so that each variant costs only
its optimiser steps and all variants share one evaluation: the autoencoder stage on every training utterance of bdl
and slt (``mode: pooled``, <= 400 frames), then the bdl -> slt fine-tuning on the 932 training pairs, then on the first
``--n-eval`` dev pairs the teacher-forced val L1 (all 100 dev pairs) and, through Griffin-Lim at the preset's front
end, the protocol's MCD and F0 RMSE (``zoo.metrics.mcd``) of free-running and of teacher-forced conversions.

    python docs/results/attention-distillation/teacher_budget_sweep.py --arctic-root ../shared/data/cmu_arctic \\
        --cache-dir /tmp/vcr/feature_cache --tag base
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from datamodules import CMUArcticDataModule
from zoo.audio import AudioConfig, griffin_lim_wav
from zoo.losses.tacotron import guided_attention_loss, masked_spectrogram_loss, stop_token_loss
from zoo.metrics.mcd import F0_RANGES, scores_from_features, world_features
from zoo.models.tacotron import cosine_lr_factor
from zoo.nn.tacotron import DecoderConfig
from zoo.nn.tacotron_blocks import PostnetConfig
from zoo.nn.vc import PyramidalEncoderConfig, Seq2SeqVC, Seq2SeqVCConfig
from zoo.reproduce_common import natural_16k
from zoo.sequence import decoder_steps

# the real preset's front end (configs/presets/vc_*/real.yaml)
AUDIO = AudioConfig(sample_rate=16000, n_fft=1024, win_length=800, hop_length=200, n_mels=80, fmin=0.0, fmax=8000.0,
                    griffin_lim_power=1.0)


def teacher_net(r: int) -> Seq2SeqVC:
    """The real preset's teacher (configs/presets/vc_teacher/real.yaml)."""
    decoder = DecoderConfig(reduction_factor=r, attention_rnn_dim=256, decoder_rnn_dims=(256,), prenet_sizes=(128, 128),
                            attention_dim=128, attention_filters=16, attention_kernel_size=15)
    return Seq2SeqVC(AUDIO.n_mels, Seq2SeqVCConfig(encoder=PyramidalEncoderConfig(hidden=128), decoder=decoder,
                                                   postnet=PostnetConfig(channels=128, zero_init_residual=True)))


def pair(batch):
    """(source, source lengths, target, target lengths); an autoencoder batch is its own target."""
    if hasattr(batch, "src_mel"):
        return batch.src_mel, batch.src_lengths, batch.tgt_mel, batch.tgt_lengths
    return batch.mel, batch.mel_lengths, batch.mel, batch.mel_lengths


def endless(dm):
    while True:
        yield from dm.train_dataloader()


def update(opt: torch.optim.Optimizer, net: torch.nn.Module, loss: torch.Tensor, step: int, start: float,
           label: str, every: int = 100) -> None:
    """One optimiser step with the configs' gradient clip (1.0); the loss printed every ``every`` steps."""
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    if step % every == 0:
        print(f"{label}step {step} loss {loss.item():.4f} {time.perf_counter() - start:.0f} s", flush=True)


def train(net, dm, steps: int, lr: float, schedule: str, guided_attention: float, r: int, label: str,
          on_step=None) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-6, weight_decay=1e-6)
    batches, start = endless(dm), time.perf_counter()
    net.train()
    for step in range(steps):
        factor = cosine_lr_factor(step, steps) if schedule == "cosine" else 1.0
        for group in opt.param_groups:
            group["lr"] = lr * factor
        src, src_len, tgt, tgt_len = pair(next(batches))
        out = net(src, src_len, tgt, tgt_len)
        loss = (masked_spectrogram_loss(out.mel, tgt, tgt_len) + masked_spectrogram_loss(out.mel_postnet, tgt, tgt_len)
                + stop_token_loss(out.stop_logits, tgt_len, 8.0))
        if guided_attention:
            loss = loss + guided_attention * guided_attention_loss(out.alignments, decoder_steps(tgt_len, r),
                                                                   out.memory_lengths, 0.2)
        update(opt, net, loss, step, start, f"{label} ", every=50)
        if on_step is not None:
            on_step(step + 1)
    return time.perf_counter() - start


def gv_postfilter(mel: np.ndarray, target_gv: np.ndarray) -> np.ndarray:
    """Variance scaling (Silen et al. 2012): each bin's deviations from the utterance mean scaled so the utterance's
    variance per bin becomes the training targets' mean global variance (Toda & Tokuda 2007)."""
    mean = mel.mean(0, keepdims=True)
    return np.clip(mean + (mel - mean) * np.sqrt(target_gv / (mel.var(0) + 1e-8)), 0.0, 1.0)


class DevScores:
    """Teacher-forced val L1 on every dev pair; MCD / F0 RMSE of the first n dev pairs' conversions."""

    def __init__(self, dm: CMUArcticDataModule, n: int, target_gv: np.ndarray | None) -> None:
        self.dm, self.val = dm, dm.datasets["val"]
        self.pairs = self.val.pairs[:n]
        self.refs = [world_features(natural_16k(t.wav_path, AUDIO.sample_rate), AUDIO.sample_rate, F0_RANGES["slt"])
                     for _, t in self.pairs]
        self.target_gv = target_gv

    def _score(self, mel: torch.Tensor, ref) -> tuple[float, float]:
        wav = griffin_lim_wav(mel.clamp(0.0, 1.0).float(), AUDIO).numpy()
        s = scores_from_features(world_features(wav, AUDIO.sample_rate, F0_RANGES["slt"]), ref)
        return s.mcd_db, s.f0_rmse_hz

    @torch.no_grad()
    def __call__(self, net, step: int, tag: str) -> dict:
        net.eval()
        l1 = [masked_spectrogram_loss(net(*pair(b)).mel_postnet, pair(b)[2], pair(b)[3]).item()
              for b in self.dm.val_dataloader()]
        torch.manual_seed(0)  # the pre-net keeps dropout on at inference: one fixed draw per evaluation
        free, forced, post = [], [], []
        for (s, t), ref in zip(self.pairs, self.refs):
            src = torch.as_tensor(np.asarray(self.val.src_store.get(s.id, "mel"))).float()[None]
            tgt = torch.as_tensor(np.asarray(self.val.tgt_store.get(t.id, "mel"))).float()[None]
            src_len, tgt_len = torch.tensor([src.shape[1]]), torch.tensor([tgt.shape[1]])
            out = net.infer(src, src_len, 2 * tgt.shape[1], 0.5)
            mel = out.mel_postnet[0, : int(out.lengths[0])]
            free.append(self._score(mel, ref))
            forced.append(self._score(net(src, src_len, tgt, tgt_len).mel_postnet[0], ref))
            if self.target_gv is not None:
                post.append(self._score(torch.as_tensor(gv_postfilter(mel.clamp(0, 1).numpy(), self.target_gv)), ref))
        row = {"tag": tag, "step": step, "val_l1": float(np.mean(l1)),
               "mcd_free": float(np.nanmean([f[0] for f in free])), "mcd_teacher_forced": float(np.nanmean([f[0] for f in forced])),
               "f0_rmse_free": float(np.nanmean([f[1] for f in free]))}
        if post:
            row["mcd_free_gv_postfilter"] = float(np.nanmean([p[0] for p in post]))
        print("EVAL", row, flush=True)
        net.train()
        return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arctic-root", required=True, help="folder holding cmu_arctic/ (or cmu_arctic itself)")
    p.add_argument("--cache-dir", required=True, help="feature cache (outside shared storage)")
    p.add_argument("--ae-steps", type=int, default=300)
    p.add_argument("--ft-steps", type=int, default=600)
    p.add_argument("--lr-ae", type=float, default=0.004)
    p.add_argument("--lr-ft", type=float, default=0.002)
    p.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    p.add_argument("--guided-attention", type=float, default=50.0, help="weight in both stages")
    p.add_argument("--guided-attention-ft", type=float, default=None, help="weight in fine-tuning (default: the same)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-every", type=int, default=300, help="fine-tuning steps between evaluations")
    p.add_argument("--n-eval", type=int, default=12, help="dev pairs converted and scored")
    p.add_argument("--gv-postfilter", action="store_true", help="also score GV-postfiltered free-running conversions")
    p.add_argument("--save-ae", type=Path, default=None)
    p.add_argument("--load-ae", type=Path, default=None, help="start fine-tuning from a saved autoencoder")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="run")
    a = p.parse_args()
    torch.manual_seed(0)
    if a.threads:
        torch.set_num_threads(a.threads)
    root = Path(a.arctic_root)
    root = root.parent if root.name == "cmu_arctic" else root
    common = dict(source="real", root=str(root), download=False, cache_dir=a.cache_dir, split="standard", audio=AUDIO,
                  progress=False)
    pairs_dm = CMUArcticDataModule(mode="parallel", batch_size=a.batch_size, **common)
    pairs_dm.prepare_data()
    pairs_dm.setup("fit")
    target_gv = None
    if a.gv_postfilter:
        train_set = pairs_dm.datasets["train"]
        target_gv = np.mean([np.asarray(train_set.tgt_store.get(t.id, "mel")).var(0) for _, t in train_set.pairs], 0)
    scores = DevScores(pairs_dm, a.n_eval, target_gv)
    net = teacher_net(4)
    if a.load_ae is not None:
        net.load_state_dict(torch.load(a.load_ae))
    elif a.ae_steps:
        ae_dm = CMUArcticDataModule(mode="pooled", batch_size=a.batch_size, max_frames=400, **common)
        ae_dm.prepare_data()
        ae_dm.setup("fit")
        seconds = train(net, ae_dm, a.ae_steps, a.lr_ae, a.schedule, a.guided_attention, 4, "autoencoder")
        print(f"autoencoder {a.ae_steps} steps in {seconds:.0f} s", flush=True)
        with torch.no_grad():  # its teacher-forced reconstruction L1 on the first 6 validation batches (both speakers)
            net.eval()
            l1 = [masked_spectrogram_loss(net(*pair(b)).mel_postnet, pair(b)[2], pair(b)[3]).item()
                  for _, b in zip(range(6), ae_dm.val_dataloader())]
            net.train()
        print(f"EVAL autoencoder val L1 {np.mean(l1):.4f}", flush=True)
        if a.save_ae is not None:
            torch.save(net.state_dict(), a.save_ae)
    ga_ft = a.guided_attention if a.guided_attention_ft is None else a.guided_attention_ft
    seconds = train(net, pairs_dm, a.ft_steps, a.lr_ft, a.schedule, ga_ft, 4, "fine-tuning",
                    on_step=lambda step: scores(net, step, a.tag) if step % a.eval_every == 0 else None)
    print(f"fine-tuning {a.ft_steps} steps in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
