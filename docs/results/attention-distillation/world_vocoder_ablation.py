"""What each part of the WORLD vocoder's training buys: the chain's converters' dev conversions through Griffin-Lim
and through WORLD vocoders trained with and without over-smoothing augmentation and the teacher's
ground-truth-aligned predictions, scored against the natural recordings (MCD, F0 RMSE).

    python docs/results/attention-distillation/world_vocoder_ablation.py --out OUT --arctic-root ../shared/data/cmu_arctic \
        --vocoder chain=OUT/vocoder/checkpoints/last.ckpt --vocoder natural=DIR1/.../last.ckpt ... [--n 20]

OUT is a finished ``python -m zoo reproduce attention-distillation --preset real`` run (its teacher and students are
converted exactly as the report converts them: the dev sources' cached mels, seed 0, batches of 8). Each
``--vocoder NAME=CKPT`` is a WORLD vocoder checkpoint; Griffin-Lim at the converters' AudioConfig is always a row.
Prints a markdown table (world-vocoder.md quotes it). Only the first ``--n`` dev utterances are scored; nothing is
tuned on them.
"""

from __future__ import annotations

import argparse
import sys
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from zoo.audio import griffin_lim_wav, load_wav  # noqa: E402
from zoo.metrics.mcd import F0_RANGES, objective_scores  # noqa: E402

ROWS = ("target_copy_synthesis", "teacher", "distilled", "baseline")


def _score(job: tuple[str, str, str, np.ndarray, str]) -> tuple[str, str, float, float]:
    torch.set_num_threads(1)
    vocoder, row, utt, wav, ref_path = job
    ref = load_wav(ref_path, 16000).double().numpy()
    s = objective_scores(wav, ref, 16000, F0_RANGES["slt"])
    return vocoder, row, s.mcd_db, s.f0_rmse_hz


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="a finished real-preset run")
    p.add_argument("--arctic-root", required=True)
    p.add_argument("--vocoder", action="append", default=[], help="NAME=CKPT (repeatable)")
    p.add_argument("--n", type=int, default=20)
    args = p.parse_args()
    from zoo.checkpoints import load_experiment
    from zoo.pipeline import VOCODER_CLASSES, VoiceConverter, World
    from zoo.reproduce_vc import _parallel_datamodule

    import yaml

    overrides = yaml.safe_load((args.out / "distilled" / "overrides.yaml").read_text())
    dm = _parallel_datamodule(overrides)
    dm.setup("fit")
    val = dm.datasets["val"]
    pairs = val.pairs[: args.n]
    src = [val.src_store.get(s.id, "mel") for s, _ in pairs]
    mels = {"target_copy_synthesis": [val.tgt_store.get(t.id, "mel") for _, t in pairs]}
    for row in ROWS[1:]:
        converter = VoiceConverter.from_checkpoint(args.out / row / "checkpoints" / "last.ckpt", device="cpu")
        torch.manual_seed(0)  # as the report converts
        mels[row] = [m for m, _, _ in converter.convert_mels(src, 8)]
    audio = dm.audio
    vocoders = {"griffin-lim": None}
    for spec in args.vocoder:
        name, ckpt = spec.split("=", 1)
        vocoders[name] = World(load_experiment(ckpt, VOCODER_CLASSES, "the vocoder"), "cpu")
    jobs = []
    for name, voc in vocoders.items():
        for row, row_mels in mels.items():
            for (_, t), mel in zip(pairs, row_mels):
                wav = griffin_lim_wav(mel, audio) if voc is None else voc.vocode([mel])[0]
                jobs.append((name, row, t.id, wav.double().numpy(), str(t.wav_path)))
    with get_context("spawn").Pool(2) as pool:
        results = pool.map(_score, jobs)
    print(f"{args.n} dev utterances (the first of arctic_b0340-b0439), MCD dB / F0 RMSE Hz against the recordings\n")
    print("| vocoder | " + " | ".join(ROWS) + " |")
    print("|---" * (len(ROWS) + 1) + "|")
    for name in vocoders:
        cells = []
        for row in ROWS:
            a = np.array([(m, f) for v, r, m, f in results if v == name and r == row])
            cells.append(f"{np.nanmean(a[:, 0]):.2f} / {np.nanmean(a[:, 1]):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
