"""Throughput of the speech chain, per stage: ``python -m zoo convert`` (VC -> post-net -> vocoder) and
``python -m zoo synthesize`` (TTS -> post-net -> vocoder) through ``zoo.pipeline``, on this machine.

    python bench/speech_chain.py --vc VC.ckpt [--postnet P.ckpt] [--vocoder W.ckpt] --wav DIR [--tts TTS.ckpt] [-n 10]

Each stage is timed on its own over the same utterances (the chain's batches): the model (conversion or text to
mel), the post-net, and the vocoder (Griffin-Lim at the model's AudioConfig, and the WaveNet when given). Real-time
factor = stage seconds / seconds of audio produced (below 1 is faster than real time). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vc", help="a VoiceConversion checkpoint")
    parser.add_argument("--wav", help="source wavs for --vc (a folder)")
    parser.add_argument("--tts", help="a Tacotron / Tacotron 2 checkpoint")
    parser.add_argument("--postnet", help="a pix2pix post-net checkpoint")
    parser.add_argument("--vocoder", help="a WaveNet checkpoint")
    parser.add_argument("-n", type=int, default=10, help="utterances")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    from zoo.audio import load_wav
    from zoo.pipeline import GriffinLim, Synthesizer, VoiceConverter, load_postnet, load_vocoder, wav_files

    rows = []

    def stages(name: str, mels: list[torch.Tensor], model_seconds: float, audio) -> None:
        seconds_of_audio = sum(m.shape[0] for m in mels) * audio.hop_length / audio.sample_rate
        rows.append((name, "model", len(mels), model_seconds, seconds_of_audio))
        if args.postnet:
            postnet = load_postnet(args.postnet, name, audio, "cpu")
            mels, t = _timed(lambda: postnet.polish(mels, args.batch_size))
            rows.append((name, "post-net", len(mels), t, seconds_of_audio))
        _, t = _timed(lambda: GriffinLim(audio).vocode(mels))
        rows.append((name, "Griffin-Lim", len(mels), t, seconds_of_audio))
        if args.vocoder:
            wavenet = load_vocoder(args.vocoder, name, audio, "cpu")
            _, t = _timed(lambda: wavenet.vocode(mels, args.batch_size))
            rows.append((name, "WaveNet", len(mels), t, seconds_of_audio))

    if args.vc:
        vc = VoiceConverter.from_checkpoint(args.vc, device="cpu")
        files = wav_files(args.wav)[: args.n]
        src = [vc.mel(load_wav(f, vc.audio.sample_rate)) for f in files]
        torch.manual_seed(0)
        converted, t = _timed(lambda: vc.convert_mels(src, args.batch_size))
        stages("convert", [m for m, _, _ in converted], t, vc.audio)
    if args.tts:
        tts = Synthesizer.from_checkpoint(args.tts, device="cpu")
        texts = ["Printing, in the only sense with which we are at present concerned, differs from most if not "
                 "from all the arts and crafts represented in the Exhibition."] * args.n
        out, t = _timed(lambda: tts.synthesize(texts, args.batch_size))
        stages("synthesize", [u.mel for u in out], t, tts.audio)

    load = os.getloadavg()
    print(f"threads {torch.get_num_threads()}, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n")
    print("| command | stage | utterances | seconds | utterances/s | audio s | real-time factor |")
    print("|---|---|---|---|---|---|---|")
    for name, stage, n, seconds, audio_s in rows:
        print(f"| {name} | {stage} | {n} | {seconds:.1f} | {n / seconds:.2f} | {audio_s:.1f} | {seconds / audio_s:.2f} |")


if __name__ == "__main__":
    main()
