"""Data-path benchmark: embedded corpus generation, feature caching and loader throughput.

python bench/bench_data.py [--out DIR] [--utterances 200]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from datamodules import CMUArcticDataModule, LJSpeechDataModule
from zoo.corpora import write_cmu_arctic, write_ljspeech


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--utterances", type=int, default=200)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    shutil.rmtree(root / "embedded", ignore_errors=True)
    rows = []

    t = time.perf_counter()
    write_ljspeech(root / "embedded", n_utterances=args.utterances, seed=1234, progress=False)
    rows.append(("generate embedded LJSpeech", args.utterances, time.perf_counter() - t))
    t = time.perf_counter()
    write_cmu_arctic(root / "embedded" / "cmu_arctic", n_prompts=100, seed=1234, progress=False)
    rows.append(("generate embedded CMU ARCTIC (2 voices)", 200, time.perf_counter() - t))

    dm = LJSpeechDataModule(root=str(root), source="embedded", embedded_size=args.utterances, load_linear=True,
                            batch_size=32, progress=False)
    t = time.perf_counter()
    dm.prepare_data()
    rows.append(("cache mel+linear features (LJSpeech)", args.utterances, time.perf_counter() - t))
    dm.setup()
    t = time.perf_counter()
    n = sum(len(b.ids) for b in dm.train_dataloader())
    rows.append(("iterate train loader (mel+linear, batch 32)", n, time.perf_counter() - t))

    dm = CMUArcticDataModule(root=str(root), source="embedded", batch_size=32, progress=False)
    t = time.perf_counter()
    dm.prepare_data()
    rows.append(("cache mel features (ARCTIC, 2 speakers)", 200, time.perf_counter() - t))

    print("| step | items | seconds | items/s |")
    print("|---|---|---|---|")
    for name, items, seconds in rows:
        print(f"| {name} | {items} | {seconds:.2f} | {items / seconds:.0f} |")
    if args.out is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
