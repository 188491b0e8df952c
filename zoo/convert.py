"""``python -m zoo convert --vc CKPT [--postnet CKPT] [--vocoder CKPT | griffin-lim] --wav FILE_OR_DIR --out DIR``:
convert a wav file or a folder of wavs with a trained voice-conversion checkpoint (teacher or student), an optional
pix2pix post-net and a vocoder (Griffin-Lim at the model's AudioConfig by default, or a WaveNet or WORLD vocoder
checkpoint); outputs are named like their sources (``OUT/<name>.wav`` and the alignment ``OUT/<name>.png``), plus ``OUT/conversions.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoo.audio import AudioError
from zoo.errors import exit_on_user_error


def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags ``python -m zoo convert`` and ``python -m zoo synthesize`` share."""
    parser.add_argument("--postnet", default=None, help="a pix2pix post-net checkpoint (optional)")
    parser.add_argument("--vocoder", default="griffin-lim", help="'griffin-lim' (default), or a WaveNet or WORLD vocoder checkpoint")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: CUDA when present)")
    parser.add_argument("--no-figures", action="store_true", help="skip the alignment figures")
    parser.add_argument("--no-progress", action="store_true")


def parse_chain_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, but got {args.batch_size}")
    return args


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo convert", description=__doc__)
    parser.add_argument("--vc", required=True, help="a VoiceConversion checkpoint (e.g. OUT/distilled/checkpoints/last.ckpt)")
    parser.add_argument("--wav", required=True, help="a source-speaker wav file or a folder of them")
    add_chain_arguments(parser)
    args = parse_chain_arguments(parser, argv)
    from zoo.pipeline import VoiceConverter, wav_files

    with exit_on_user_error(AudioError, FileNotFoundError, ValueError):
        files = wav_files(args.wav)
        converter = VoiceConverter.from_checkpoint(args.vc, args.device, postnet=args.postnet, vocoder=args.vocoder)
        records = converter.convert_files(files, args.out, args.batch_size, progress=not args.no_progress,
                                          figures=not args.no_figures)
    (args.out / "conversions.json").write_text(json.dumps({"checkpoint": str(args.vc), "postnet": args.postnet, "vocoder": args.vocoder,
                                                           "files": records}, indent=2))
    print(f"converted {len(records)} file(s) into {args.out}")


if __name__ == "__main__":
    main()
