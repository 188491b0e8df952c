"""Harvest's F0 search range and the F0 figures' floor: the two-pass rule on the training prompts, then natural slt dev
speech through WORLD analysis-synthesis (its own F0) and through the real preset's mel -> Griffin-Lim, scored
against the recordings with the old and the new ranges.

    python docs/results/attention-distillation/f0_range.py --arctic-root ../shared/data/cmu_arctic [--every 5]

Prints a markdown table (f0-range.md quotes it). Nothing here is tuned on dev: the ranges come from training
prompts (every 6th of arctic_a0001-a0593); dev utterances (arctic_b0340-b0439) are only scored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from zoo.audio import AudioConfig, griffin_lim_wav, load_wav  # noqa: E402
from zoo.audio import AudioFrontEnd  # noqa: E402
from zoo.metrics.mcd import objective_scores, two_pass_f0_range, world_resynthesis  # noqa: E402

SR = 16000
OLD = {"bdl": (50.0, 300.0), "slt": (80.0, 380.0)}


def wav_of(root: Path, speaker: str, utt: str) -> np.ndarray:
    path = next(root.glob(f"*{speaker}*/wav/{utt}.wav"))
    return load_wav(path, SR).double().numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arctic-root", type=Path, required=True)
    p.add_argument("--every", type=int, default=5, help="score every n-th dev utterance")
    a = p.parse_args()
    root = a.arctic_root
    train = [f"arctic_a{n:04d}" for n in range(1, 594)][::6]
    new = {}
    for speaker in ("bdl", "slt"):
        low, high = two_pass_f0_range([wav_of(root, speaker, u) for u in train], SR)
        new[speaker] = (low, high)
        print(f"{speaker}: two-pass range over {len(train)} training prompts: {low:.1f}-{high:.1f} Hz")
    audio = AudioConfig(sample_rate=SR, n_fft=1024, win_length=800, hop_length=200, n_mels=80, fmin=0.0, fmax=8000.0,
                        griffin_lim_power=1.0)
    front = AudioFrontEnd(audio)
    dev = [f"arctic_b{n:04d}" for n in range(340, 440)][:: a.every]
    shipped = {"old (0.5-99.5 % of a 40-800 Hz search)": OLD["slt"],
               "two-pass, rounded outwards (shipped)": (5 * np.floor(new["slt"][0] / 5), 5 * np.ceil(new["slt"][1] / 5))}
    rows: dict[tuple[str, str], list] = {}
    for utt in dev:
        x = wav_of(root, "slt", utt)
        with torch.no_grad():
            gl = griffin_lim_wav(front.mel(torch.from_numpy(x).float()).T, audio).double().numpy()
        src = wav_of(root, "bdl", utt)
        for label, rng in shipped.items():
            for what, y in (("WORLD analysis-synthesis, own F0", world_resynthesis(x, SR, rng)),
                            ("mel -> Griffin-Lim (real preset)", gl), ("natural bdl, unconverted", src)):
                s = objective_scores(y, x, SR, rng)
                rows.setdefault((what, label), []).append((s.mcd_db, s.f0_rmse_hz, s.f0_corr))
    print(f"\nslt dev, {len(dev)} utterances (every {a.every}th of arctic_b0340-b0439), scored against the recordings:\n")
    print("| signal | slt F0 range | MCD dB | F0 RMSE Hz | F0 CORR |")
    print("|---|---|---|---|---|")
    for (what, label), v in rows.items():
        m = np.nanmean(np.array(v), 0)
        print(f"| {what} | {label} {shipped[label][0]:.0f}-{shipped[label][1]:.0f} Hz | {m[0]:.2f} | {m[1]:.1f} | {m[2]:.3f} |")


if __name__ == "__main__":
    main()
