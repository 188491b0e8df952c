"""Choose the Griffin-Lim path that converted mels take to the metrics: copy-synthesis of natural slt dev speech
(mel -> Griffin-Lim) through several front ends, scored against the natural recordings with the published protocol.

    python docs/results/attention-distillation/vocoder_sweep.py --arctic-root ../shared/data/cmu_arctic --out DIR

Writes DIR/vocoder.md and DIR/vocoder.json (the table in docs/results/attention-distillation/vocoder.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from datamodules.cmu_arctic import read_arctic_speaker, standard_split_part
from zoo.audio import AudioConfig, AudioFrontEnd, load_wav
from zoo.evaluation import Scorer
from zoo.metrics.mcd import F0_RANGES

BASE = {"sample_rate": 16000, "n_fft": 1024, "n_mels": 80}
VARIANTS = {
    "hop 256, 80-7600 Hz (ESPnet ARCTIC), power 1.0": {"hop_length": 256, "win_length": 1024, "fmin": 80.0,
                                                       "fmax": 7600.0, "griffin_lim_power": 1.0},
    "hop 256, 0-8000 Hz, power 1.0": {"hop_length": 256, "win_length": 1024, "fmin": 0.0, "fmax": 8000.0,
                                      "griffin_lim_power": 1.0},
    "hop 200, 0-8000 Hz, power 1.5 (Tacotron's)": {"hop_length": 200, "win_length": 800, "fmin": 0.0, "fmax": 8000.0,
                                                   "griffin_lim_power": 1.5},
    "hop 200, 0-8000 Hz, power 1.2": {"hop_length": 200, "win_length": 800, "fmin": 0.0, "fmax": 8000.0,
                                      "griffin_lim_power": 1.2},
    "hop 200, 0-8000 Hz, power 1.0 (chosen)": {"hop_length": 200, "win_length": 800, "fmin": 0.0, "fmax": 8000.0,
                                               "griffin_lim_power": 1.0},
    "hop 200, 0-8000 Hz, power 1.0, 32 iterations": {"hop_length": 200, "win_length": 800, "fmin": 0.0,
                                                     "fmax": 8000.0, "griffin_lim_power": 1.0, "griffin_lim_iters": 32},
    "hop 160, 0-8000 Hz, power 1.0": {"hop_length": 160, "win_length": 640, "fmin": 0.0, "fmax": 8000.0,
                                      "griffin_lim_power": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arctic-root", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--every", type=int, default=3, help="every N-th dev utterance (3: 34 of 100)")
    args = parser.parse_args()
    root = args.arctic_root if args.arctic_root.name == "cmu_arctic" else args.arctic_root / "cmu_arctic"
    utts = [u for u in read_arctic_speaker(root / "cmu_us_slt_arctic", "slt") if standard_split_part(u.id) == "dev"]
    utts = utts[:: args.every]
    args.out.mkdir(parents=True, exist_ok=True)
    refs, texts = {u.id: u.wav_path for u in utts}, {u.id: u.text for u in utts}
    rows = {}
    with Scorer(refs, texts, F0_RANGES["slt"]) as scorer:
        rows["natural slt"] = scorer.score(refs)
        for name, variant in VARIANTS.items():
            audio = AudioConfig(**BASE, **variant)
            front = AudioFrontEnd(audio)
            start = time.perf_counter()
            with torch.no_grad():
                wavs = {u.id: front.mel_to_wav(front.mel(load_wav(u.wav_path, 16000))).clamp(-1, 1).double().numpy()
                        for u in utts}
            seconds = time.perf_counter() - start
            rows[name] = {**scorer.score(wavs), "griffin_lim_seconds_per_utterance": seconds / len(utts)}
    keys = ("mcd_db", "f0_rmse_hz", "f0_corr", "ddur_s", "dnsmos_ovrl", "wer", "cer")
    lines = [f"Copy-synthesis of {len(utts)} slt dev utterances (every {args.every}rd of arctic_b0340-b0439), "
             "scored against the natural recordings.", "",
             "| front end -> Griffin-Lim (60 iterations unless said) | " + " | ".join(keys) + " | GL s/utt |",
             "|---" * (len(keys) + 2) + "|"]
    for name, row in rows.items():
        gl = row.get("griffin_lim_seconds_per_utterance")
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in keys) +
                     f" | {'' if gl is None else f'{gl:.2f}'} |")
    (args.out / "vocoder.md").write_text("\n".join(lines) + "\n")
    (args.out / "vocoder.json").write_text(json.dumps(
        {k: {kk: vv for kk, vv in v.items() if kk != "utterances"} for k, v in rows.items()}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
