"""Could a converter take its F0 from the source instead of predicting it? (``cpu-budget.md``)

A measurement script, not a training entry point. The classic F0 conversion of WORLD-based voice conversion maps
the source's log F0 linearly onto the target's (mean and standard deviation of voiced log F0 over every 20th
training prompt of each speaker). This resynthesises the first ``N`` dev utterances of bdl with WORLD (Harvest in
bdl's range, CheapTrick, D4C at 5 ms) with that transformed F0 (``transformed``), and with a flat contour at slt's
mean (``flat_mean``), and scores F0 RMSE / correlation against natural slt with the published protocol
(``zoo.metrics.mcd``: fastdtw on the mel-cepstra of voiced frames). An attention-warped copy of the source contour
can at best follow the source's intonation, which is what ``transformed`` measures.

    python docs/results/attention-distillation/source_f0_transform.py --arctic-root ../shared/data/cmu_arctic --n 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from datamodules.cmu_arctic import standard_split_part  # noqa: E402
from zoo.audio import load_wav  # noqa: E402
from zoo.metrics.mcd import F0_RANGES, low_cut, scores_from_features, world_features  # noqa: E402
from zoo.world import INT16  # noqa: E402

SAMPLE_RATE = 16000


def main() -> None:
    import pyworld

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arctic-root", required=True, help="folder holding cmu_us_bdl_arctic/ and cmu_us_slt_arctic/")
    p.add_argument("--n", type=int, default=20, help="first dev utterances scored")
    a = p.parse_args()
    root = Path(a.arctic_root)
    root = root / "cmu_arctic" if (root / "cmu_arctic").is_dir() else root
    prompts = sorted(w.stem for w in (root / "cmu_us_slt_arctic" / "wav").glob("*.wav"))
    train = [i for i in prompts if standard_split_part(i) == "train"][::20]
    dev = [i for i in prompts if standard_split_part(i) == "dev"][: a.n]

    def analyse(speaker: str, utt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        wav = load_wav(root / f"cmu_us_{speaker}_arctic" / "wav" / f"{utt}.wav", SAMPLE_RATE).double().numpy()
        x = low_cut(wav * INT16, SAMPLE_RATE)
        lo, hi = F0_RANGES[speaker]
        f0, times = pyworld.harvest(x, SAMPLE_RATE, f0_floor=lo, f0_ceil=hi, frame_period=5.0)
        return x, f0, times

    def log_f0_stats(speaker: str) -> tuple[float, float]:
        lf0 = np.concatenate([np.log(f0[f0 > 0]) for _, f0, _ in (analyse(speaker, u) for u in train)])
        return float(lf0.mean()), float(lf0.std())

    (ms, ss), (mt, st) = log_f0_stats("bdl"), log_f0_stats("slt")
    print(f"voiced log F0: bdl mean {np.exp(ms):.1f} Hz, sd {ss:.3f}; slt mean {np.exp(mt):.1f} Hz, sd {st:.3f}")
    scores: dict[str, list[tuple[float, float]]] = {"transformed": [], "flat_mean": []}
    for utt in dev:
        x, f0, times = analyse("bdl", utt)
        sp, ap = pyworld.cheaptrick(x, f0, times, SAMPLE_RATE), pyworld.d4c(x, f0, times, SAMPLE_RATE)
        natural = load_wav(root / "cmu_us_slt_arctic" / "wav" / f"{utt}.wav", SAMPLE_RATE).double().numpy()
        reference = world_features(natural, SAMPLE_RATE, F0_RANGES["slt"])
        voiced = f0 > 0
        contours = {"transformed": np.exp((np.log(np.where(voiced, f0, 1.0)) - ms) / ss * st + mt),
                    "flat_mean": np.full(len(f0), np.exp(mt))}
        for name, contour in contours.items():
            y = pyworld.synthesize(np.where(voiced, contour, 0.0), sp, ap, SAMPLE_RATE, 5.0) / INT16
            sc = scores_from_features(world_features(y, SAMPLE_RATE, F0_RANGES["slt"]), reference)
            scores[name].append((sc.f0_rmse_hz, sc.f0_corr))
    for name, rows in scores.items():
        rmse, corr = np.nanmean(np.array(rows), 0)
        print(f"{name}: F0 RMSE {rmse:.1f} Hz, F0 CORR {corr:.3f} ({len(dev)} dev utterances)")


if __name__ == "__main__":
    main()
