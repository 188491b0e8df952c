"""From trained checkpoints to wav files, in Python: the zoo's speech chain.

    from zoo.pipeline import Synthesizer, VoiceConverter
    tts = Synthesizer.from_checkpoint("tacotron2.ckpt", postnet="postnet.ckpt", vocoder="wavenet.ckpt")
    tts.synthesize_to_files(["Printing, in the only sense with which we are at present concerned."], "out/")
    vc = VoiceConverter.from_checkpoint("runs/vc/distilled/checkpoints/last.ckpt")   # Griffin-Lim by default
    vc.convert_files(["arctic_b0340.wav"], "converted/")     # or: wav = vc.convert([waveform])[0].wav

text -> Tacotron / Tacotron 2 -> (pix2pix post-net) -> vocoder -> wav, and source wav -> voice conversion ->
(post-net) -> vocoder -> wav. Every stage runs in length-sorted batches on CUDA when present. The stages must have
been trained on the same audio front end (sample rate, FFT, hop, mel bands, levels): a mismatch is a
``StageMismatchError`` naming both stages and every differing field, raised when the chain is built. Griffin-Lim
needs no checkpoint and uses the upstream model's own ``AudioConfig`` (power, iterations); Tacotron's own path
(Griffin-Lim on its linear spectrogram) is used when it runs without a post-net and without a neural vocoder.
``python -m zoo synthesize`` and ``python -m zoo convert`` are these classes on the command line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from zoo.audio import AudioConfig, AudioFrontEnd, griffin_lim_wav, load_wav
from zoo.checkpoints import datamodule_hparams, load_experiment, load_weights_only
from zoo.errors import CheckpointError, StageMismatchError
from zoo.media import Prediction, write_prediction
from zoo.text import DEFAULT_CHARACTERS, SymbolTable

VC_CLASS = "zoo.models.vc.VoiceConversion"
TTS_CLASSES = {"zoo.models.tacotron.Tacotron2": "a Tacotron 2 model (configs/tacotron2.yaml)",
               "zoo.models.tacotron.Tacotron": "a Tacotron model (configs/tacotron.yaml)"}
POSTNET_CLASSES = {"zoo.models.pix2pix.Pix2PixPostnet": "a pix2pix post-net (configs/postnet_pix2pix.yaml)"}
VOCODER_CLASSES = {"zoo.models.wavenet.WaveNetVocoder": "a WaveNet vocoder (configs/wavenet_mol.yaml or wavenet_gaussian.yaml)",
                   "zoo.models.world_vocoder.WorldVocoder": "a WORLD vocoder (configs/world_vocoder.yaml)"}
# The front-end fields two stages must share for one stage's mel frames to mean the same to the next.
STAGE_FIELDS = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "fmin", "fmax", "ref_db", "min_db",
                "preemphasis")


def check_stages_agree(upstream: str, upstream_audio: AudioConfig, downstream: str, downstream_audio: AudioConfig) -> None:
    """Raise StageMismatchError naming both stages and each differing front-end field (STAGE_FIELDS)."""
    diffs = [f"{f} {getattr(upstream_audio, f)} vs {getattr(downstream_audio, f)}" for f in STAGE_FIELDS
             if getattr(upstream_audio, f) != getattr(downstream_audio, f)]
    if diffs:
        raise StageMismatchError(f"{upstream} and {downstream} were trained on different audio front ends "
                                 f"({upstream} vs {downstream}: {'; '.join(diffs)}); retrain one of them at the "
                                 "other's audio settings")


def _length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar lengths (longest first, so the slowest batch shows in the progress bar early)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _pad(frames: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """(T_i, C) tensors -> zero-padded (B, T_max, C) and lengths (B,)."""
    lengths = torch.tensor([f.shape[0] for f in frames])
    out = frames[0].new_zeros(len(frames), int(lengths.max()), frames[0].shape[1])
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out, lengths


def _progress(iterable: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="batch", dynamic_ncols=True)


class GriffinLim:
    """The checkpoint-free vocoder: Griffin-Lim at an AudioConfig's power and iterations (the upstream model's)."""

    name = "griffin-lim"

    def __init__(self, audio: AudioConfig) -> None:
        self.audio = audio

    def vocode(self, mels: Sequence[Tensor], batch_size: int = 8, progress: bool = False) -> list[Tensor]:
        """(T_i, n_mels) normalised mels -> (S_i,) waveforms."""
        return [griffin_lim_wav(m, self.audio) for m in _progress(mels, progress, "griffin-lim")]


class WaveNet:
    """A trained ``WaveNetVocoder`` (Gaussian or MoL output), cached generation in length-sorted batches."""

    name = "wavenet"

    def __init__(self, model: Any, device: str | torch.device | None = None, seed: int = 0) -> None:
        self.model = model.eval().to(_device(device))
        self.audio: AudioConfig = model.audio
        self.seed = seed

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None, seed: int = 0) -> WaveNet:
        return cls(load_experiment(path, VOCODER_CLASSES, "the vocoder"), device, seed)

    def vocode(self, mels: Sequence[Tensor], batch_size: int = 8, progress: bool = False) -> list[Tensor]:
        """(T_i, n_mels) normalised mels -> (S_i = T_i * hop,) waveforms, in input order."""
        results: list[Any] = [None] * len(mels)
        for idx in _progress(_length_batches([m.shape[0] for m in mels], batch_size), progress, "wavenet"):
            mel, lengths = _pad([mels[i].float() for i in idx])
            for i, wav in zip(idx, self.model.vocode(mel, lengths, seed=self.seed, progress=False)):
                results[i] = wav.clamp(-1.0, 1.0)
        return results


class World:
    """A trained ``WorldVocoder``: mel -> WORLD parameters (its network) -> WORLD synthesis, one utterance at a time."""

    name = "world"

    def __init__(self, model: Any, device: str | torch.device | None = None) -> None:
        self.model = model.eval().to(_device(device))
        self.audio: AudioConfig = model.audio

    def vocode(self, mels: Sequence[Tensor], batch_size: int = 8, progress: bool = False) -> list[Tensor]:
        """(T_i, n_mels) normalised mels -> (S_i = T_i * hop,) waveforms, in input order."""
        return [self.model.vocode([m])[0] for m in _progress(mels, progress, "world")]


def load_vocoder(vocoder: str | Path | None, upstream: str, upstream_audio: AudioConfig,
                 device: str | torch.device | None = None) -> GriffinLim | WaveNet | World:
    """``None`` or ``"griffin-lim"``: Griffin-Lim at the upstream's AudioConfig; else a WaveNet or WORLD vocoder
    checkpoint, which must share the upstream's front end."""
    if vocoder is None or str(vocoder) == "griffin-lim":
        return GriffinLim(upstream_audio)
    from zoo.models.world_vocoder import WorldVocoder

    model = load_experiment(vocoder, VOCODER_CLASSES, "the vocoder")
    stage = World(model, device) if isinstance(model, WorldVocoder) else WaveNet(model, device)
    check_stages_agree(upstream, upstream_audio, f"the vocoder {vocoder}", stage.audio)
    return stage


class Postnet:
    """A trained pix2pix post-net (``Pix2PixPostnet``) polishing whole mel spectrograms, in eval mode."""

    def __init__(self, model: Any, device: str | torch.device | None = None) -> None:
        self.model = model.eval().to(_device(device))
        self.audio: AudioConfig = model.audio

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None) -> Postnet:
        return cls(load_experiment(path, POSTNET_CLASSES, "the post-net"), device)

    @torch.no_grad()
    def polish(self, mels: Sequence[Tensor], batch_size: int = 8) -> list[Tensor]:
        """(T_i, n_mels) normalised mels -> polished (T_i, n_mels), in input order."""
        device = next(self.model.parameters()).device
        results: list[Any] = [None] * len(mels)
        for idx in _length_batches([m.shape[0] for m in mels], batch_size):
            mel, lengths = _pad([mels[i].float() for i in idx])
            out = self.model.polish(mel.to(device), lengths.to(device))
            for row, i in enumerate(idx):
                results[i] = out[row, : int(lengths[row])].float().cpu()
        return results


def load_postnet(path: str | Path | None, upstream: str, upstream_audio: AudioConfig,
                 device: str | torch.device | None = None) -> Postnet | None:
    if path is None:
        return None
    postnet = Postnet.from_checkpoint(path, device)
    check_stages_agree(upstream, upstream_audio, f"the post-net {path}", postnet.audio)
    return postnet


def _attach_stages(upstream: str, audio: AudioConfig, postnet: Postnet | None,
                   vocoder: GriffinLim | WaveNet | World | None) -> tuple[Postnet | None, GriffinLim | WaveNet | World]:
    """The stages after a model, checked against its front end; no vocoder means Griffin-Lim at its AudioConfig."""
    for name, stage in (("the post-net", postnet), ("the vocoder", vocoder)):
        if stage is not None:
            check_stages_agree(upstream, audio, name, stage.audio)
    return postnet, vocoder or GriffinLim(audio)


class Synthesis(NamedTuple):
    """One synthesised utterance: wav (S,) in [-1, 1]; mel (T, n_mels) normalised (after the post-net, if any);
    alignment (ceil(T / r), L) over the text's symbols; stopped (False when the max-length guard ended it)."""

    wav: Tensor
    mel: Tensor
    alignment: Tensor
    stopped: bool


class Synthesizer:
    """A trained Tacotron / Tacotron 2, an optional post-net and a vocoder, from text to waveforms."""

    def __init__(self, model: Any, symbols: SymbolTable, postnet: Postnet | None = None,
                 vocoder: GriffinLim | WaveNet | World | None = None, device: str | torch.device | None = None) -> None:
        self.model = model.eval().to(_device(device))
        self.audio: AudioConfig = model.audio
        if len(symbols) != model.hparams.vocab_size:
            raise CheckpointError(f"the text-to-speech model has {model.hparams.vocab_size} symbols, but the symbol "
                                  f"table has {len(symbols)}: pass the characters it was trained with")
        self.symbols = symbols
        self.postnet, self.vocoder = _attach_stages("the text-to-speech model", self.audio, postnet, vocoder)

    @classmethod
    def from_checkpoint(cls, tts: str | Path, postnet: str | Path | None = None, vocoder: str | Path | None = None,
                        device: str | torch.device | None = None, characters: str | None = None) -> Synthesizer:
        """Load the chain; the symbol table is the one the TTS checkpoint's DataModule recorded (``characters``),
        else the default. ``vocoder``: ``None``/``"griffin-lim"`` or a WaveNet checkpoint."""
        model = load_experiment(tts, TTS_CLASSES, "the text-to-speech model")
        chars = characters or datamodule_hparams(tts).get("characters") or DEFAULT_CHARACTERS
        name = f"the text-to-speech model {tts}"
        return cls(model, SymbolTable(chars), load_postnet(postnet, name, model.audio, device),
                   load_vocoder(vocoder, name, model.audio, device), device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, texts: Sequence[str]) -> list[Tensor]:
        """Symbol ids of each text (normalised, EOS added); a text with no character the model knows is a ValueError."""
        ids = []
        for i, text in enumerate(texts):
            encoded = self.symbols.encode(text)
            if len(encoded.ids) <= 1:  # EOS alone
                raise ValueError(f"text {i} ({text[:40]!r}) has no character the text-to-speech model knows "
                                 f"(its symbols: {''.join(sorted(set(self.symbols.characters)))!r})")
            ids.append(torch.as_tensor(encoded.ids, dtype=torch.long))
        return ids

    @torch.no_grad()
    def synthesize(self, texts: Sequence[str], batch_size: int = 8, progress: bool = False) -> list[Synthesis]:
        """Texts -> utterances, in input order: text batches of similar lengths, then post-net and vocoder."""
        ids = self.encode(texts)
        hp = self.model.training_config
        r = self.model.reduction_factor
        guard = math.ceil(hp.max_decoder_frames / r) * r
        mels: list[Any] = [None] * len(ids)
        linears: list[Any] = [None] * len(ids)
        aligns: list[Any] = [None] * len(ids)
        stopped: list[bool] = [False] * len(ids)
        for idx in _progress(_length_batches([len(t) for t in ids], batch_size), progress, "synthesizing"):
            text = torch.zeros(len(idx), max(len(ids[i]) for i in idx), dtype=torch.long)
            for row, i in enumerate(idx):
                text[row, : len(ids[i])] = ids[i]
            lengths = torch.tensor([len(ids[i]) for i in idx])
            out = self.model.synthesize(text.to(self.device), lengths.to(self.device))
            mel = self.model.predicted_mel(out)
            for row, i in enumerate(idx):
                n = int(out.lengths[row])
                mels[i] = mel[row, :n].clamp(0.0, 1.0).float().cpu()
                linears[i] = out.linear[row, :n].float().cpu() if hasattr(out, "linear") else None
                aligns[i] = out.alignments[row, : math.ceil(n / r), : int(lengths[row])].float().cpu()
                stopped[i] = n < guard
        if self.postnet is not None:
            mels = self.postnet.polish(mels, batch_size)
        if self.postnet is None and isinstance(self.vocoder, GriffinLim) and linears[0] is not None:
            wavs = [griffin_lim_wav(lin, self.audio, kind="linear") for lin in linears]  # Tacotron's own path
        else:
            wavs = self.vocoder.vocode(mels, batch_size, progress)
        return [Synthesis(w, m, a, s) for w, m, a, s in zip(wavs, mels, aligns, stopped)]

    def synthesize_to_files(self, texts: Sequence[str], out_dir: str | Path, names: Sequence[str] | None = None,
                            batch_size: int = 8, progress: bool = True, figures: bool = True) -> list[dict[str, Any]]:
        """Write ``out_dir/<name>.wav`` (+ ``<name>.png``, the alignment) per text; names default to 0001, 0002, ..."""
        names = list(names) if names is not None else [f"{i + 1:04d}" for i in range(len(texts))]
        if len(names) != len(texts):
            raise ValueError(f"{len(names)} names for {len(texts)} texts")
        _check_unique(names)
        self.encode(texts)  # every text checked before anything runs or is written
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        records = []
        for start in range(0, len(texts), 4 * batch_size):
            part = slice(start, start + 4 * batch_size)
            for name, text, syn in zip(names[part], texts[part], self.synthesize(texts[part], batch_size, progress)):
                records.append(_write_utterance(out, name, syn, self.audio, figures) | {"text": text})
        return records


def _check_unique(names: Sequence[str]) -> None:
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise ValueError(f"two inputs would write the same output file: {', '.join(dupes[:5])}")


def _write_utterance(out: Path, name: str, utt: Any, audio: AudioConfig, figures: bool) -> dict[str, Any]:
    """``<name>.wav``, ``<name>.png`` (alignment) and ``mels/<name>.npy``, as every stage writes them."""
    record = write_prediction(out, Prediction(name, utt.wav, audio.sample_rate, utt.mel, utt.alignment, utt.stopped),
                              figures)
    return {k: v for k, v in record.items() if k != "id"}


class Conversion(NamedTuple):
    """One converted utterance: wav (S,) in [-1, 1]; mel (T, n_mels) normalised (what the vocoder heard; a WORLD
    converter's: the mel of its wav); alignment (ceil(T / r), T_enc); stopped (False when the max-length guard ended
    it)."""

    wav: Tensor
    mel: Tensor
    alignment: Tensor
    stopped: bool


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def checkpoint_class(path: str | Path) -> str | None:
    """The LightningModule class a zoo checkpoint was written by (as the CLI records it), or None if unrecorded."""
    return load_weights_only(path).get("hyper_parameters", {}).get("_class_path")


_WORLD_ONLY = ("{name} predicts WORLD parameters, not mels: it is synthesised by WORLD directly, and a post-net or "
               "vocoder cannot follow it (drop --postnet/--vocoder, or use a converter trained with target_features: "
               "mel)")


class VoiceConverter:
    """A trained ``VoiceConversion`` (teacher or student), an optional post-net and a vocoder (Griffin-Lim by
    default), over waveforms or files."""

    def __init__(self, model: Any, device: str | torch.device | None = None, max_frames: int | None = None,
                 postnet: Postnet | None = None, vocoder: GriffinLim | WaveNet | World | None = None) -> None:
        self.model = model.eval().to(_device(device))
        self.audio: AudioConfig = model.audio
        self.front = AudioFrontEnd(self.audio)
        self.max_frames = max_frames
        # a converter of WORLD parameters is heard through WORLD synthesis: no mel post-net or vocoder fits after it
        self.world_output = getattr(model, "target_features", "mel") == "world"
        if self.world_output and (postnet is not None or not (vocoder is None or isinstance(vocoder, GriffinLim))):
            raise StageMismatchError(_WORLD_ONLY.format(name="the voice-conversion model"))
        self.postnet, self.vocoder = ((None, None) if self.world_output  # type: ignore[assignment]
                                      else _attach_stages("the voice-conversion model", self.audio, postnet, vocoder))

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None,
                        max_frames: int | None = None, postnet: str | Path | None = None,
                        vocoder: str | Path | None = None) -> VoiceConverter:
        """Load a VoiceConversion checkpoint (weights only), and optionally a post-net and a WaveNet vocoder
        checkpoint; another experiment's checkpoint is a CheckpointError naming both."""
        from zoo.models.vc import load_model

        saved = checkpoint_class(path)
        if saved is not None and saved != VC_CLASS:
            raise CheckpointError(f"checkpoint {path} was written by {saved}, but voice conversion needs a {VC_CLASS} "
                                  "checkpoint (configs/vc_teacher.yaml or configs/vc_distill.yaml)")
        model = load_model(path)
        name = f"the voice-conversion model {path}"
        if model.target_features == "world" and (postnet is not None or str(vocoder) not in ("None", "griffin-lim")):
            raise StageMismatchError(_WORLD_ONLY.format(name=name))
        return cls(model, device, max_frames, load_postnet(postnet, name, model.audio, device),
                   load_vocoder(vocoder, name, model.audio, device))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def mel(self, wav: Tensor) -> Tensor:
        """(S,) waveform at the model's sample rate -> (T, n_mels) normalised mel, as the DataModules cache it."""
        with torch.no_grad():
            return self.front.mel(wav.float().cpu()).T

    @torch.no_grad()
    def convert_mels(self, mels: Sequence[Tensor], batch_size: int = 8) -> list[tuple[Tensor, Tensor, bool]]:
        """(T_i, n_mels) source mels -> [(converted frames, alignment, stopped)], in input order: the converted mel
        (T'_i, n_mels), or a WORLD-parameter converter's (T'_i, world_dim) parameters on their own scale
        (``zoo.world``); batches of similar lengths, the max-length guard at twice the longest source of a batch (or
        ``max_frames``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        for i, m in enumerate(mels):
            if m.ndim != 2 or m.shape[1] != self.audio.n_mels:
                raise ValueError(f"source {i}: expected a (frames, {self.audio.n_mels}) mel, but got {tuple(m.shape)}")
        order = sorted(range(len(mels)), key=lambda i: mels[i].shape[0])
        hp = self.model.training_config
        results: list[Any] = [None] * len(mels)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            lengths = torch.tensor([mels[i].shape[0] for i in idx])
            src = torch.zeros(len(idx), int(lengths.max()), self.audio.n_mels)
            for row, i in enumerate(idx):
                src[row, : mels[i].shape[0]] = mels[i]
            guard = self.max_frames or min(hp.max_decoder_frames, 2 * int(lengths.max()) + 20)
            out = self.model.net.infer(src.to(self.device), lengths.to(self.device), guard, hp.stop_threshold)
            r = self.model.reduction_factor
            for row, i in enumerate(idx):
                n = int(out.lengths[row])
                steps = math.ceil(n / r)
                results[i] = (self.model.net.destandardise(out.mel_postnet[row, :n]).float().cpu(),
                              out.alignments[row, :steps, : int(out.memory_lengths[row])].float().cpu(),
                              bool(out.stopped[row]))
        return results

    def convert(self, wavs: Sequence[Tensor], batch_size: int = 8, progress: bool = False) -> list[Conversion]:
        """(S_i,) source waveforms at the model's sample rate -> converted utterances, in input order."""
        converted = self.convert_mels([self.mel(w) for w in wavs], batch_size)
        if self.world_output:  # WORLD synthesis of the converted parameters; the mel is that wav's, for figures
            from zoo.world import world_synthesize

            wavs_out = [torch.from_numpy(world_synthesize(p.double().numpy(), self.audio.sample_rate,
                                                          self.audio.hop_length)).float() for p, _, _ in converted]
            return [Conversion(w, self.front.frames_of(w), align, stopped)
                    for w, (_, align, stopped) in zip(wavs_out, converted)]
        mels = [mel for mel, _, _ in converted]
        if self.postnet is not None:
            mels = self.postnet.polish(mels, batch_size)
        wavs_out = self.vocoder.vocode(mels, batch_size, progress)
        return [Conversion(w, m, align, stopped) for w, m, (_, align, stopped) in zip(wavs_out, mels, converted)]

    def convert_files(self, paths: Sequence[str | Path], out_dir: str | Path, batch_size: int = 8,
                      progress: bool = True, figures: bool = True) -> list[dict[str, Any]]:
        """Convert wav files into ``out_dir/<same name>.wav`` (+ ``<name>.png``, the alignment); returns one record per
        file. Unreadable files are a ``zoo.audio.AudioError`` naming the file, raised before anything is written."""
        paths = [Path(p) for p in paths]
        if not paths:
            raise ValueError("no wav files to convert")
        _check_unique([p.stem for p in paths])
        wavs = [load_wav(p, self.audio.sample_rate) for p in paths]  # reads (and checks) every file first
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        records = []
        chunks = range(0, len(paths), 4 * batch_size)
        for start in _progress(chunks, progress, "converting"):
            part = slice(start, start + 4 * batch_size)
            for path, conv in zip(paths[part], self.convert(wavs[part], batch_size)):
                records.append({"source": str(path)} | _write_utterance(out, path.stem, conv, self.audio, figures))
        return records


def wav_files(path: str | Path) -> list[Path]:
    """A wav file, or the sorted ``*.wav`` files of a folder; a missing path or an empty folder is a clear error."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.wav"))
        if not files:
            raise FileNotFoundError(f"{path} holds no .wav file")
        return files
    raise FileNotFoundError(f"{path} does not exist")


def read_texts(path: str | Path) -> tuple[list[str], list[str]]:
    """Texts of a text file, one utterance per non-empty line, as (names, texts). ``ID|text`` lines (LJSpeech's
    ``metadata.csv`` layout; a third ``|`` field, the normalised text, is used when present) name their wav ``ID``;
    plain lines are numbered 0001, 0002, ..."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    names, texts = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) >= 2 and fields[0].strip() and " " not in fields[0].strip():
            names.append(fields[0].strip())
            texts.append(fields[2] if len(fields) >= 3 and fields[2].strip() else fields[1])
        else:
            names.append(f"{len(names) + 1:04d}")
            texts.append(line.strip())
    if not texts:
        raise ValueError(f"{path} holds no text")
    return names, texts


__all__ = ["Conversion", "GriffinLim", "Postnet", "Synthesis", "Synthesizer", "VoiceConverter", "WaveNet",
           "check_stages_agree", "checkpoint_class", "load_postnet", "load_vocoder", "read_texts", "wav_files"]
