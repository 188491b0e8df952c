"""Feature caching in one process vs in worker processes (``FeatureStore.build(workers=...)``), on real recordings
or on the embedded LJSpeech corpus (eSpeak NG clips in LJSpeech-1.1's layout, written to a temporary folder first).

    python bench/feature_cache.py --speaker-dir ../shared/data/cmu_arctic/cmu_us_slt_arctic -n 300
    python bench/feature_cache.py --embedded-ljspeech -n 300

Caches mel + linear (LJSpeech's AudioConfig: 22.05 kHz, 1024-point FFT, 80 mels, 513 bins; the files are resampled on
load, as a 16 kHz corpus at that config is) for the first ``n`` utterances, once with 1 process and once with every
core, into fresh temporary caches; prints seconds, audio seconds per second, the speed-up, and the extrapolated time
for LJSpeech's 13,100 clips (23.9 hours of audio) at the measured audio rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

LJSPEECH_HOURS = 23.92


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--speaker-dir", type=Path, help="a CMU ARCTIC speaker folder")
    source.add_argument("--embedded-ljspeech", action="store_true", help="the embedded LJSpeech corpus, n clips")
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    import soundfile as sf

    from datamodules.cmu_arctic import read_arctic_speaker
    from datamodules.ljspeech import read_ljspeech_metadata
    from datamodules.speech import FeatureStore
    from zoo.audio import AudioConfig
    from zoo.corpora import write_ljspeech

    if args.embedded_ljspeech:
        corpus_tmp = tempfile.TemporaryDirectory()  # removed when the script ends
        folder = write_ljspeech(corpus_tmp.name, n_utterances=args.n, seed=1234, progress=False)
        utterances = read_ljspeech_metadata(folder)
    else:
        folder = args.speaker_dir
        utterances = read_arctic_speaker(folder, folder.name.split("_")[2])[: args.n]
    audio_seconds = sum(sf.info(str(u.wav_path)).duration for u in utterances)
    rows = []
    for workers in (1, os.cpu_count() or 1):
        with tempfile.TemporaryDirectory() as tmp:
            store = FeatureStore(folder, AudioConfig(), cache_root=tmp)
            start = time.perf_counter()
            store.build(utterances, ("mel", "linear"), progress=False, workers=workers)
            rows.append((workers, time.perf_counter() - start))
    load = os.getloadavg()
    print(f"{len(utterances)} utterances, {audio_seconds / 60:.1f} min of audio; load average {load[0]:.2f} / "
          f"{load[1]:.2f} / {load[2]:.2f}\n")
    print("| processes | seconds | utterances/s | audio s per s | LJSpeech (13,100 clips) extrapolated |")
    print("|---|---|---|---|---|")
    for workers, seconds in rows:
        rate = audio_seconds / seconds
        print(f"| {workers} | {seconds:.1f} | {len(utterances) / seconds:.1f} | {rate:.0f} | "
              f"{LJSPEECH_HOURS * 3600 / rate / 60:.1f} min |")
    print(f"\nspeed-up {rows[0][1] / rows[-1][1]:.2f}x with {rows[-1][0]} processes")


if __name__ == "__main__":
    main()
