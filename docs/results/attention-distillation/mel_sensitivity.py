"""How the protocol's MCD and F0 RMSE through Griffin-Lim react to what a regression model does to a mel spectrogram
(``cpu-budget.md``): natural slt dev speech -> mel at a front end -> a perturbation -> Griffin-Lim -> scored against
the natural recording (``zoo.metrics.mcd``). Perturbations: none (copy-synthesis), a Gaussian blur across mel bins
(smeared harmonics), a moving average over frames (smeared time), additive noise; each with its L1 to the clean mel.
Also the teacher-forced floor on the dev targets: the L1 of repeating the frame fed back to each decoder step
(``zoo.metrics.spectral.previous_step_copy``, r = 4) and of the mean training frame.

    python docs/results/attention-distillation/mel_sensitivity.py --arctic-root ../shared/data/cmu_arctic --n 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from zoo.audio import AudioConfig, AudioFrontEnd, griffin_lim_wav, load_wav
from zoo.metrics.mcd import F0_RANGES, scores_from_features, world_features
from zoo.metrics.spectral import previous_step_copy

FRONT_ENDS = {"win 800, n_fft 1024 (real preset)": (800, 1024), "win 600, n_fft 1024": (600, 1024),
              "win 400, n_fft 512": (400, 512)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arctic-root", required=True)
    p.add_argument("--n", type=int, default=6, help="dev utterances (every 12th of arctic_b0340-b0439)")
    a = p.parse_args()
    root = Path(a.arctic_root)
    root = root if root.name == "cmu_arctic" else root / "cmu_arctic"
    wav_dir = root / "cmu_us_slt_arctic" / "wav"
    dev = [wav_dir / f"arctic_b{n:04d}.wav" for n in range(340, 440)][::12][: a.n]
    train = [wav_dir / f"arctic_a{n:04d}.wav" for n in range(1, 594, 20)]
    rng = np.random.default_rng(0)
    refs = [world_features(load_wav(f, 16000).numpy(), 16000, F0_RANGES["slt"]) for f in dev]
    print("| front end | mel | L1 to the clean mel | MCD dB | F0 RMSE Hz |\n|---|---|---|---|---|")
    for name, (win, n_fft) in FRONT_ENDS.items():
        audio = AudioConfig(sample_rate=16000, n_fft=n_fft, win_length=win, hop_length=200, n_mels=80, fmin=0.0,
                            fmax=8000.0, griffin_lim_power=1.0)
        front = AudioFrontEnd(audio)
        rows: dict[str, list[tuple[float, float, float]]] = {}
        for path, ref in zip(dev, refs):
            mel = front.features(load_wav(path, 16000)).mel.T.numpy()  # (T, n_mels)
            variants = {"clean (copy-synthesis)": mel,
                        "blur across bins, sigma 1.5": gaussian_filter1d(mel, 1.5, axis=1),
                        "moving average over 5 frames": uniform_filter1d(mel, 5, axis=0),
                        "noise, sd 0.05": np.clip(mel + 0.05 * rng.standard_normal(mel.shape), 0.0, 1.0)}
            for label, m in variants.items():
                wav = griffin_lim_wav(torch.as_tensor(m).float(), audio).numpy()
                s = scores_from_features(world_features(wav, 16000, F0_RANGES["slt"]), ref)
                rows.setdefault(label, []).append((float(np.abs(m - mel).mean()), s.mcd_db, s.f0_rmse_hz))
        for label, values in rows.items():
            l1, mcd, f0 = np.nanmean(values, axis=0)
            print(f"| {name} | {label} | {l1:.3f} | {mcd:.2f} | {f0:.1f} |", flush=True)
    audio = AudioConfig(sample_rate=16000, n_fft=1024, win_length=800, hop_length=200, n_mels=80, fmin=0.0,
                        fmax=8000.0, griffin_lim_power=1.0)
    front = AudioFrontEnd(audio)
    mean_frame = np.concatenate([front.features(load_wav(f, 16000)).mel.T.numpy() for f in train]).mean(0)
    copy, mean = [], []
    for path in [wav_dir / f"arctic_b{n:04d}.wav" for n in range(340, 440)]:
        mel = front.features(load_wav(path, 16000)).mel.T  # (T, n_mels)
        copy.append(float((previous_step_copy(mel[None], 4)[0] - mel).abs().mean()))
        mean.append(float(np.abs(mel.numpy() - mean_frame).mean()))
    print(f"\nslt dev targets (100), real preset front end: L1 of the previous-step copy (r = 4) {np.mean(copy):.4f}; "
          f"of the mean training frame {np.mean(mean):.4f}")


if __name__ == "__main__":
    main()
