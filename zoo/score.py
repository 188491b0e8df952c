"""``python -m zoo score --converted DIR --arctic-root DIR [--target-speaker slt]``: score a folder of converted wavs
(named like their CMU ARCTIC prompts, as ``python -m zoo convert`` writes them) against the natural target speaker's
recordings with the field's metrics: MCD, F0 RMSE / CORR, DDUR (the published ARCTIC protocol), DNSMOS P.835 and
PocketSphinx WER/CER against the prompt texts. Writes ``DIR/scores.json`` (per utterance and the means) and prints
the row. E.g. the eval part of the standard split, after ``--data.download true`` fetched it:

    python -m zoo convert --vc OUT/distilled/checkpoints/last.ckpt --wav eval_bdl/ --out converted/
    python -m zoo score --converted converted/ --arctic-root data/cmu_arctic
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoo.errors import exit_on_user_error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo score", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--converted", required=True, type=Path, help="folder of <prompt id>.wav files")
    parser.add_argument("--arctic-root", required=True, type=Path,
                        help="the cmu_arctic folder (holding cmu_us_<speaker>_arctic/) or the folder above it")
    parser.add_argument("--target-speaker", default="slt")
    parser.add_argument("--workers", type=int, default=None, help="scoring processes (default: 2)")
    parser.add_argument("--out", type=Path, default=None, help="the json file (default: CONVERTED/scores.json)")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be >= 1, but got {args.workers}")
    from datamodules.cmu_arctic import read_arctic_speaker, speaker_dir
    from zoo.evaluation import Scorer
    from zoo.metrics.mcd import F0_RANGES
    from zoo.pipeline import wav_files

    root = args.arctic_root if args.arctic_root.name == "cmu_arctic" else args.arctic_root / "cmu_arctic"
    with exit_on_user_error(FileNotFoundError, ValueError):
        files = {p.stem: p for p in wav_files(args.converted)}
        natural = {u.id: u for u in read_arctic_speaker(speaker_dir(root, args.target_speaker), args.target_speaker)}
        unknown = sorted(set(files) - set(natural))
        if unknown:
            raise ValueError(f"{len(unknown)} converted files have no natural {args.target_speaker} recording in {root}: "
                             f"{', '.join(unknown[:5])}")
        ids = sorted(files)
        f0_range = F0_RANGES.get(args.target_speaker, (60.0, 400.0))
        with Scorer({i: natural[i].wav_path for i in ids}, {i: natural[i].text for i in ids}, f0_range,
                    args.workers) as scorer:
            row = scorer.score(files)
    out = args.out or args.converted / "scores.json"
    out.write_text(json.dumps({"converted": str(args.converted), "target_speaker": args.target_speaker, **row},
                              indent=1))
    keys = ("mcd_db", "f0_rmse_hz", "f0_corr", "ddur_s", "dnsmos_ovrl", "wer", "cer")
    print(f"{row['n']} utterances: " + ", ".join(f"{k} {row[k]:.3f}" for k in keys) + f"  ({out})")
    for utt_id, note in row["notes"].items():
        print(f"  {utt_id}: {note}")


if __name__ == "__main__":
    main()
