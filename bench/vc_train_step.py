"""Time (and optionally profile) one training step of the real preset's voice-conversion teacher on CPU.

    python bench/vc_train_step.py [--batch 16] [--steps 5] [--profile]

The network is ``configs/presets/vc_teacher/real.yaml``'s (pyramidal BiLSTM encoder of 128 units, 256-unit decoder at
r = 4, location attention, 128-channel post-net) at 16 kHz / 80 mels; the batch is synthetic, source lengths drawn
from 200-400 frames (ARCTIC's utterances at hop 200) and targets 0.8-1.2 x as long. One step: zero_grad, the
LightningModule's own ``training_step`` (outside a Trainer), backward, the configs' gradient clip 1.0, its Adam.
Prints the median step time; ``--profile`` adds torch.profiler's table of one more step.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from datamodules.batches import ParallelBatch  # noqa: E402
from zoo.audio import AudioConfig  # noqa: E402
from zoo.models.vc import VCTrainingConfig, VoiceConversion  # noqa: E402
from zoo.nn.vc import Seq2SeqVCConfig  # noqa: E402

warnings.filterwarnings("ignore", message=".*self.log.*")  # training_step outside a Trainer


def build(batch_size: int, seed: int = 0, frames: tuple[int, int] = (200, 400)) -> tuple[VoiceConversion, ParallelBatch]:
    """The real preset's teacher and a synthetic batch, source lengths drawn from ``frames`` (low, high)."""
    audio = AudioConfig(sample_rate=16000, n_fft=1024, win_length=800, hop_length=200, n_mels=80, fmin=0.0,
                        fmax=8000.0, griffin_lim_power=1.0)
    base = Seq2SeqVCConfig()
    net = dataclasses.replace(
        base,
        encoder=dataclasses.replace(base.encoder, hidden=128),
        decoder=dataclasses.replace(base.decoder, reduction_factor=4, attention_rnn_dim=256, decoder_rnn_dims=(256,),
                                    prenet_sizes=(128, 128), attention_dim=128, attention_filters=16,
                                    attention_kernel_size=15),
        postnet=dataclasses.replace(base.postnet, channels=128, zero_init_residual=True),
    )
    training = VCTrainingConfig(lr=0.002, guided_attention_weight=50.0, stop_pos_weight=8.0, mcd_max_utterances=8,
                                probe_every_n_steps=0)
    model = VoiceConversion(audio=audio, net=net, training=training)
    g = torch.Generator().manual_seed(seed)
    src_len = torch.randint(frames[0], frames[1], (batch_size,), generator=g)
    tgt_len = (src_len.float() * (0.8 + 0.4 * torch.rand(batch_size, generator=g))).long().clamp(1, frames[1])
    batch = ParallelBatch(
        ids=[str(i) for i in range(batch_size)],
        src_mel=torch.rand(batch_size, int(src_len.max()), 80, generator=g), src_lengths=src_len,
        tgt_mel=torch.rand(batch_size, int(tgt_len.max()), 80, generator=g), tgt_lengths=tgt_len,
        text=torch.zeros(batch_size, 1, dtype=torch.long), text_lengths=torch.ones(batch_size, dtype=torch.long),
    )
    return model, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    model, batch = build(args.batch)
    model.train()
    optimizer = model.configure_optimizers()
    if isinstance(optimizer, dict):
        optimizer = optimizer["optimizer"]

    def step() -> None:
        optimizer.zero_grad()
        model.training_step(batch, 0).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(f"vc teacher step, batch {args.batch}: median {statistics.median(times):.3f} s over {args.steps} "
          f"(min {min(times):.3f}, max {max(times):.3f}); torch threads {torch.get_num_threads()}")
    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
