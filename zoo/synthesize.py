"""``python -m zoo synthesize --tts CKPT [--postnet CKPT] [--vocoder CKPT | griffin-lim] (--text "..." | --text-file
FILE) --out DIR``: text to wav through a trained Tacotron / Tacotron 2, an optional pix2pix post-net and a vocoder
(Griffin-Lim at the model's AudioConfig by default, or a WaveNet checkpoint). Writes ``OUT/<name>.wav``, the alignment
``OUT/<name>.png`` and ``OUT/synthesis.json``; a text file holds one utterance per line, or ``ID|text`` lines
(LJSpeech's ``metadata.csv`` layout) that name their wavs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoo.convert import add_chain_arguments, parse_chain_arguments
from zoo.errors import exit_on_user_error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo synthesize", description=__doc__)
    parser.add_argument("--tts", required=True, help="a Tacotron or Tacotron 2 checkpoint")
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", action="append", help="a text to speak (repeat for several)")
    text.add_argument("--text-file", type=Path, help="a UTF-8 file: one text per line, or ID|text lines")
    add_chain_arguments(parser)
    args = parse_chain_arguments(parser, argv)
    from zoo.pipeline import Synthesizer, read_texts

    with exit_on_user_error(FileNotFoundError, ValueError):
        names, texts = read_texts(args.text_file) if args.text_file else (None, args.text)
        synthesizer = Synthesizer.from_checkpoint(args.tts, args.postnet, args.vocoder, args.device)
        records = synthesizer.synthesize_to_files(texts, args.out, names, args.batch_size,
                                                  progress=not args.no_progress, figures=not args.no_figures)
    (args.out / "synthesis.json").write_text(json.dumps(
        {"tts": str(args.tts), "postnet": args.postnet, "vocoder": args.vocoder, "files": records}, indent=2))
    print(f"synthesized {len(records)} utterance(s) into {args.out}")


if __name__ == "__main__":
    main()
