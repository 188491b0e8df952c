"""Would the real preset's teacher (and its distilled student) convert better predicting WORLD parameters than mels?
(``cpu-budget.md``)

A measurement script, not a training entry point. It builds the real preset's teacher network (pyramidal BiLSTM
encoder of 128 units over the source's 80 mels, 256-unit decoder at r = 4, 128-channel zero-init post-net) with one
change: the decoder and post-net predict slt's WORLD parameters (``zoo.world.world_parameters`` at the mel hop:
mel-cepstrum of order 39, interpolated log F0, band aperiodicity, voicing; each standardised over the training
prompts) instead of its mels. Every weight whose shape allows it starts from the real run's autoencoder
(``OUT/teacher_pretrain``); the pre-net's first layer, the frame projection and the post-net's outer convolutions
start fresh. It is fine-tuned on the 932 training pairs with the LightningModule's losses (L1 on decoder and post-net
frames, stop BCE with positive weight 8, guided attention 50, clipping 1.0, Adam at 0.002, batch 8) in a plain loop,
and at the given steps its free-running conversions of the first ``--n-eval`` dev pairs are synthesised by WORLD
directly (``zoo.world.world_synthesize``: no vocoder network) and scored with the published protocol
(``zoo.metrics.mcd``). With ``--student-epochs N`` a student at the real preset's sizes (64-unit encoder, 128-unit
decoder, 64-channel post-net) then trains from scratch for N epochs of batch 4 at lr 0.006 with the preset's attention
distillation from that teacher (weight 5 decaying linearly to 0 over the first ``--distill-epochs``, no guided
attention), and its conversions are scored the same way.

    python docs/results/attention-distillation/world_target_teacher.py --arctic-root ../shared/data/cmu_arctic \\
        --cache-dir DIR --autoencoder OUT/teacher_pretrain/checkpoints/last.ckpt --steps 1750 --eval-at 875,1750
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from datamodules import CMUArcticDataModule, WorldVocoderDataModule  # noqa: E402
from zoo.losses.distillation import attention_distillation_loss  # noqa: E402
from zoo.losses.tacotron import guided_attention_loss, masked_spectrogram_loss, stop_token_loss  # noqa: E402
from zoo.metrics.mcd import F0_RANGES, scores_from_features, world_features  # noqa: E402
from zoo.nn.tacotron import DecoderConfig, TacotronDecoder  # noqa: E402
from zoo.nn.tacotron_blocks import Postnet, PostnetConfig  # noqa: E402
from zoo.nn.vc import PyramidalBLSTMEncoder  # noqa: E402
from zoo.reproduce_common import natural_16k  # noqa: E402
from zoo.sequence import decoder_steps  # noqa: E402
from zoo.world import world_synthesize  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from teacher_budget_sweep import AUDIO, endless, update  # noqa: E402


class WorldTargetTeacher(torch.nn.Module):
    """The real preset's teacher (or, ``student``, its students) with ``d_out`` output channels (``Seq2SeqVC`` ties
    input and output to n_mels)."""

    def __init__(self, d_out: int, student: bool = False) -> None:
        super().__init__()
        width = 1 if student else 2
        self.encoder = PyramidalBLSTMEncoder(AUDIO.n_mels, 64 * width, 2, 0.0)
        decoder = DecoderConfig(reduction_factor=4, attention_rnn_dim=128 * width, decoder_rnn_dims=(128 * width,),
                                prenet_sizes=(64 * width, 64 * width), attention_dim=128, attention_filters=16,
                                attention_kernel_size=15)
        self.decoder = TacotronDecoder(self.encoder.out_dim, d_out, decoder)
        self.postnet = Postnet(d_out, PostnetConfig(channels=64 * width, zero_init_residual=True))

    def forward(self, src, src_lengths, tgt, tgt_lengths):
        memory, memory_lengths = self.encoder(src, src_lengths)
        out = self.decoder(memory, memory_lengths, tgt, 1.0)
        return out, out.mel + self.postnet(out.mel, tgt_lengths), memory_lengths

    @torch.no_grad()
    def infer(self, src, src_lengths, max_frames: int):
        memory, memory_lengths = self.encoder(src, src_lengths)
        out = self.decoder.infer(memory, memory_lengths, max_frames, 0.5)
        return out.mel + self.postnet(out.mel, out.lengths), out.lengths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arctic-root", required=True, help="folder holding cmu_arctic/ (or cmu_arctic itself)")
    p.add_argument("--cache-dir", required=True, help="feature cache (outside shared storage)")
    p.add_argument("--autoencoder", required=True, help="the real run's OUT/teacher_pretrain/checkpoints/last.ckpt")
    p.add_argument("--steps", type=int, default=1750)
    p.add_argument("--eval-at", default="875,1750", help="comma-separated fine-tuning steps")
    p.add_argument("--n-eval", type=int, default=20, help="first dev pairs converted and scored")
    p.add_argument("--student-epochs", type=int, default=0, help="then a distilled student for this many epochs")
    p.add_argument("--distill-epochs", type=int, default=2)
    p.add_argument("--student-max-steps", type=int, default=None, help="stop the student early (a smoke run)")
    a = p.parse_args()
    torch.manual_seed(0)
    root = Path(a.arctic_root)
    root = root.parent if root.name == "cmu_arctic" else root
    common = dict(source="real", root=str(root), download=False, cache_dir=a.cache_dir, split="standard", audio=AUDIO,
                  progress=False)
    # slt's WORLD parameters at the mel hop, cached as the chain's vocoder stage caches them
    world_dm = WorldVocoderDataModule(speaker="slt", **common)
    world_dm.prepare_data()
    folder = world_dm.world_dir()
    feats = {path.stem: np.load(path) for path in folder.glob("*.npy")}
    train = np.concatenate([f for i, f in feats.items() if i < "arctic_b0340"])  # the standard split's train part
    mean, std = train.mean(0), train.std(0) + 1e-6
    dim = train.shape[1]

    net = WorldTargetTeacher(dim)
    state = torch.load(a.autoencoder, map_location="cpu", weights_only=False)["state_dict"]
    state = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    own = net.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    print(f"from the autoencoder: {len(loaded)} of {len(own)} tensors; fresh: {sorted(set(own) - set(loaded))}",
          flush=True)
    net.load_state_dict(loaded, strict=False)

    dm = CMUArcticDataModule(mode="parallel", batch_size=8, **common)
    dm.prepare_data()
    dm.setup("fit")

    def targets(batch) -> torch.Tensor:  # (B, T, dim) standardised WORLD parameters, zero past each length
        out = torch.zeros(len(batch.ids), batch.tgt_mel.shape[1], dim)
        for b, utt_id in enumerate(batch.ids):
            n = int(batch.tgt_lengths[b])
            f = (feats[utt_id][:n] - mean) / std
            out[b, : len(f)] = torch.as_tensor(f)
        return out

    val = dm.datasets["val"]
    pairs = val.pairs[: a.n_eval]
    refs = [world_features(natural_16k(t.wav_path, AUDIO.sample_rate), AUDIO.sample_rate, F0_RANGES["slt"])
            for _, t in pairs]

    def evaluate(step: int, net: torch.nn.Module, label: str = "teacher") -> None:
        net.eval()
        torch.manual_seed(0)  # the pre-net keeps dropout on at inference: one fixed draw
        scores = []
        for (s, t), ref in zip(pairs, refs):
            src = torch.as_tensor(np.asarray(val.src_store.get(s.id, "mel"))).float()[None]
            y, lengths = net.infer(src, torch.tensor([src.shape[1]]), 2 * len(feats[t.id]))
            params = y[0, : int(lengths[0])].numpy() * std + mean
            wav = world_synthesize(params, AUDIO.sample_rate, AUDIO.hop_length)
            sc = scores_from_features(world_features(wav, AUDIO.sample_rate, F0_RANGES["slt"]), ref)
            scores.append((sc.mcd_db, sc.f0_rmse_hz, sc.f0_corr))
        mcd, f0, corr = np.nanmean(np.array(scores), 0)
        print(f"EVAL {label} step {step}: {a.n_eval} dev utterances, MCD {mcd:.2f} dB, F0 RMSE {f0:.1f} Hz, "
              f"F0 CORR {corr:.3f}", flush=True)
        net.train()

    eval_at = {int(s) for s in a.eval_at.split(",")}
    opt = torch.optim.Adam(net.parameters(), lr=0.002, eps=1e-6, weight_decay=1e-6)
    batches, start = endless(dm), time.perf_counter()
    net.train()
    for step in range(1, a.steps + 1):
        batch = next(batches)
        tgt, tgt_lengths = targets(batch), batch.tgt_lengths
        out, post, memory_lengths = net(batch.src_mel, batch.src_lengths, tgt, tgt_lengths)
        loss = (masked_spectrogram_loss(out.mel, tgt, tgt_lengths) + masked_spectrogram_loss(post, tgt, tgt_lengths)
                + stop_token_loss(out.stop_logits, tgt_lengths, 8.0)
                + 50.0 * guided_attention_loss(out.alignments, decoder_steps(tgt_lengths, 4), memory_lengths, 0.2))
        update(opt, net, loss, step, start, "")
        if step in eval_at:
            evaluate(step, net)
    if not a.student_epochs:
        return

    # the distilled student, from scratch, batch 4 (configs/presets/vc_distill/real.yaml), the teacher frozen
    net.eval()
    teacher = net
    student = WorldTargetTeacher(dim, student=True)
    sdm = CMUArcticDataModule(mode="parallel", batch_size=4, **common)
    sdm.prepare_data()
    sdm.setup("fit")
    per_epoch = len(sdm.train_dataloader())
    opt = torch.optim.Adam(student.parameters(), lr=0.006, eps=1e-6, weight_decay=1e-6)
    batches, start = endless(sdm), time.perf_counter()
    student.train()
    total = a.student_epochs * per_epoch
    if a.student_max_steps is not None:
        total = min(total, a.student_max_steps)
    for step in range(1, total + 1):
        batch = next(batches)
        tgt, tgt_lengths = targets(batch), batch.tgt_lengths
        out, post, memory_lengths = student(batch.src_mel, batch.src_lengths, tgt, tgt_lengths)
        with torch.no_grad():
            p_teacher = teacher(batch.src_mel, batch.src_lengths, tgt, tgt_lengths)[0].alignments
        dec_steps = decoder_steps(tgt_lengths, 4)
        weight = 5.0 * max(0.0, 1.0 - (step - 1) / per_epoch / a.distill_epochs)
        loss = (masked_spectrogram_loss(out.mel, tgt, tgt_lengths) + masked_spectrogram_loss(post, tgt, tgt_lengths)
                + stop_token_loss(out.stop_logits, tgt_lengths, 8.0)
                + weight * attention_distillation_loss(p_teacher, out.alignments, dec_steps, memory_lengths))
        update(opt, student, loss, step, start, "student ")
    evaluate(total, student, "distilled student")


if __name__ == "__main__":
    main()
