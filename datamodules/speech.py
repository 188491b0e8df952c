"""What the speech DataModules share: utterance lists, the on-disk feature cache, datasets and collation."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.base import Source, ZooDataModule, progress_iter, split_indices
from datamodules.batches import ParallelBatch, SpeechBatch, pad_sequences
from zoo.audio import AudioConfig, AudioError, AudioFrontEnd, load_wav
from zoo.errors import DatasetFormatError
from zoo.text import DEFAULT_CHARACTERS, SymbolTable

log = logging.getLogger(__name__)

FeatureKind = Literal["mel", "linear", "wav"]
# mel is a training target (float32); linear is large (n_freq = 513 channels) and only a target of Tacotron's
# post-net, where float16's 1e-3 resolution on [0, 1] is far below the loss; wav is stored as 16-bit PCM.
_KIND_DTYPES = {"mel": np.float32, "linear": np.float16, "wav": np.int16}


@dataclass(frozen=True)
class Utterance:
    """One recording: its id, wav file, transcript and speaker."""

    id: str
    wav_path: Path
    text: str
    speaker: str = ""


def _fingerprint(utterances: Sequence[Utterance]) -> str:
    """Changes when the utterance list or any wav file (size, mtime) changes, so stale caches are rebuilt."""
    h = hashlib.sha256()
    for u in utterances:
        st = u.wav_path.stat()
        h.update(f"{u.id}\t{u.wav_path.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def listed_utterances(listing: Path, entries: Iterable[tuple[str, str]], wav_dir: Path, speaker: str, *,
                      missing_wav_is_error: bool) -> list[Utterance]:
    """A corpus listing's ``(id, transcript)`` entries as utterances with ``wav_dir/<id>.wav``: an empty transcript is
    left out with a warning naming it; a missing wav is left out with a warning, or with ``missing_wav_is_error``
    (a corpus that ships every listed wav) a format error naming the first five; no utterance left is a format
    error."""
    utterances, empty, missing = [], [], []
    for utt_id, text in entries:
        wav = wav_dir / f"{utt_id}.wav"
        if not text:
            empty.append(utt_id)
        elif not wav.is_file():
            missing.append(utt_id)
        else:
            utterances.append(Utterance(utt_id, wav, text, speaker))
    if empty:
        log.warning("%s: %d entries with an empty transcript are left out: %s", listing, len(empty), ", ".join(empty[:5]))
    if missing and missing_wav_is_error:
        raise DatasetFormatError(f"{listing} lists {len(missing)} utterances whose wav file is missing from {wav_dir}: "
                                 f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if missing:
        log.warning("%s: %d entries have no wav file in %s and are left out: %s", listing, len(missing), wav_dir,
                    ", ".join(missing[:5]))
    if not utterances:
        raise DatasetFormatError(f"{listing} lists no usable utterance")
    return utterances


class FeatureStore:
    """Features of a corpus computed once per ``AudioConfig`` and stored beside the data, then memory-mapped.

    Layout: ``<corpus>/.zoo_features/<AudioConfig.cache_key()>/<kind>.bin`` (or ``<cache_root>/<corpus name>-<path
    hash>/<key>/`` when a cache root is given, for corpora on read-only or shared storage) (all utterances concatenated along
    time) and ``<kind>.json`` (per-utterance offset and length, the fingerprint of the wav files, and the files
    that could not be read). A changed AudioConfig gets another folder; changed wav files rebuild the kind.
    """

    def __init__(self, corpus_dir: str | Path, audio: AudioConfig, cache_root: str | Path | None = None) -> None:
        self.audio = audio
        corpus_dir = Path(corpus_dir)
        if cache_root is None:
            base = corpus_dir / ".zoo_features"
        else:  # a corpus on read-only or shared storage: one folder per corpus path under the given root
            tag = hashlib.sha256(str(corpus_dir.resolve()).encode()).hexdigest()[:8]
            base = Path(cache_root) / f"{corpus_dir.name}-{tag}"
        self.dir = base / audio.cache_key()
        self._index: dict[str, dict[str, Any]] = {}
        self._data: dict[str, np.ndarray] = {}

    def _dim(self, kind: str) -> int:
        return {"mel": self.audio.n_mels, "linear": self.audio.n_freq, "wav": 1}[kind]

    def _valid(self, kind: str, fingerprint: str) -> bool:
        meta = self.dir / f"{kind}.json"
        if not meta.is_file() or not (self.dir / f"{kind}.bin").is_file():
            return False
        try:
            return json.loads(meta.read_text())["fingerprint"] == fingerprint
        except (ValueError, KeyError):
            return False

    def build(self, utterances: Sequence[Utterance], kinds: Sequence[str], progress: bool = True,
              workers: int | None = None) -> None:
        """Compute the missing or stale kinds in one pass over the audio (one STFT gives mel and linear).

        ``workers`` processes analyse the files (default 1: on a 2-core machine one process caches 583 s of audio per
        second and two workers only 282, spawn start-up and shipping the arrays back costing more than the second
        core gives: ``bench/README.md``); this process writes the cache in corpus order, so the result is the same
        byte for byte whatever the number of workers."""
        fingerprint = _fingerprint(utterances)
        todo = [k for k in dict.fromkeys(kinds) if not self._valid(k, fingerprint)]
        if not todo:
            return
        if workers is None:
            workers = 1
        if workers < 1:
            raise ValueError(f"workers must be >= 1, but got {workers}")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = {k: self.dir / f"{k}.bin.tmp{os.getpid()}" for k in todo}
        files = {k: open(tmp[k], "wb") for k in todo}
        entries: dict[str, dict[str, list[int]]] = {k: {} for k in todo}
        offsets = dict.fromkeys(todo, 0)
        skipped: dict[str, str] = {}
        pool = None
        try:
            desc = f"caching {'/'.join(todo)} features ({self.dir.parent.parent.name})"
            jobs = [(str(u.wav_path), self.audio, tuple(todo)) for u in utterances]
            if workers > 1:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_analysis_worker_init)
                results = pool.map(_analyse_utterance, jobs, chunksize=max(1, min(32, len(jobs) // (8 * workers))))
            else:
                results = map(_analyse_utterance, jobs)
            for u, (arrays, error) in progress_iter(zip(utterances, results), len(utterances), desc, progress):
                if error is not None:
                    # unreadable, truncated, vanished or too short for one STFT frame: left out and listed
                    skipped[u.id] = error
                    continue
                for k in todo:
                    a = np.ascontiguousarray(arrays[k], dtype=_KIND_DTYPES[k])
                    files[k].write(a.tobytes())
                    entries[k][u.id] = [offsets[k], len(a)]
                    offsets[k] += len(a)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            for f in files.values():
                f.close()
        for k in todo:
            os.replace(tmp[k], self.dir / f"{k}.bin")
            meta = {"fingerprint": fingerprint, "dim": self._dim(k), "dtype": np.dtype(_KIND_DTYPES[k]).str,
                    "audio": self.audio.__dict__, "entries": entries[k], "skipped": skipped}
            (self.dir / f"{k}.json.tmp").write_text(json.dumps(meta))
            os.replace(self.dir / f"{k}.json.tmp", self.dir / f"{k}.json")
        if skipped:
            log.warning("%d of %d audio files could not be read and are left out (listed in %s): %s",
                        len(skipped), len(utterances), self.dir, "; ".join(list(skipped.values())[:3]))

    def load(self, kinds: Sequence[str]) -> None:
        """Memory-map the cached kinds (built before by ``build``, e.g. on rank zero in ``prepare_data``)."""
        for k in dict.fromkeys(kinds):
            meta_path = self.dir / f"{k}.json"
            if not meta_path.is_file():
                raise RuntimeError(f"feature cache {meta_path} is missing: call build() (prepare_data) first")
            meta = json.loads(meta_path.read_text())
            self._index[k] = meta
            n = sum(length for _, length in meta["entries"].values())
            self._data[k] = (
                np.memmap(self.dir / f"{k}.bin", dtype=np.dtype(meta["dtype"]), mode="r", shape=(n, meta["dim"]))
                if n else np.zeros((0, meta["dim"]), dtype=np.dtype(meta["dtype"]))
            )

    def skipped(self) -> dict[str, str]:
        return next(iter(self._index.values()))["skipped"] if self._index else {}

    def has(self, utt_id: str) -> bool:
        return all(utt_id in meta["entries"] for meta in self._index.values())

    def length(self, utt_id: str, kind: str = "mel") -> int:
        return self._index[kind]["entries"][utt_id][1]

    def get(self, utt_id: str, kind: str) -> torch.Tensor:
        """(frames, channels) float32 for mel/linear, (samples,) float32 in [-1, 1] for wav."""
        offset, length = self._index[kind]["entries"][utt_id]
        a = np.array(self._data[kind][offset : offset + length], dtype=np.float32)  # a copy: memmaps are read-only
        if kind == "wav":
            return torch.from_numpy(a[:, 0] / 32767.0)
        return torch.from_numpy(a)


_WORKER_FRONT_ENDS: dict[AudioConfig, AudioFrontEnd] = {}


def _analysis_worker_init() -> None:
    torch.set_num_threads(1)  # one process per core, not every process on every core


def _analyse_utterance(job: tuple[str, AudioConfig, tuple[str, ...]]) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """One file's arrays for the cache (mel (T, n_mels), linear (T, n_freq), wav (S, 1) as 16-bit levels), or the
    reason it cannot be read. Runs in the building process or in a worker."""
    path, audio, todo = job
    front = _WORKER_FRONT_ENDS.get(audio)
    if front is None:
        front = _WORKER_FRONT_ENDS[audio] = AudioFrontEnd(audio)
    try:
        wav = load_wav(path, audio.sample_rate)  # (S,)
        arrays: dict[str, np.ndarray] = {"wav": np.round(wav.numpy() * 32767.0)[:, None]}  # (S, 1)
        if "mel" in todo or "linear" in todo:
            with torch.no_grad():
                feats = front.features(wav)
            arrays["mel"] = feats.mel.T.numpy()  # (frames, n_mels)
            arrays["linear"] = feats.linear.T.numpy()  # (frames, n_freq)
        return arrays, None
    except (AudioError, FileNotFoundError, ValueError) as err:
        return None, str(err)


def _fits(frames: int, max_frames: int | None) -> bool:
    return max_frames is None or frames <= max_frames


def encode_transcripts(utterances: Sequence[Utterance], symbols: SymbolTable) -> list[torch.Tensor]:
    """Symbol ids of every transcript; characters outside the table are dropped and reported once, with counts."""
    dropped: Counter[str] = Counter()
    out = []
    for u in utterances:
        enc = symbols.encode(u.text)
        dropped.update(enc.dropped)
        out.append(torch.tensor(enc.ids, dtype=torch.long))
    if dropped:
        log.warning("dropped %d characters outside the symbol table: %s", sum(dropped.values()),
                    ", ".join(f"{c!r}×{n}" for c, n in dropped.most_common(10)))
    return out


class UtteranceDataset(Dataset):
    """Utterances with their transcripts and cached features (only those that could be read)."""

    def __init__(self, utterances: Sequence[Utterance], store: FeatureStore, symbols: SymbolTable,
                 kinds: Sequence[str], speakers: Sequence[str] = (), max_frames: int | None = None) -> None:
        self.utterances = [u for u in utterances if store.has(u.id) and _fits(store.length(u.id), max_frames)]
        self.store, self.kinds = store, tuple(kinds)
        self.text = encode_transcripts(self.utterances, symbols)
        self.speaker_index = {s: i for i, s in enumerate(speakers)}

    def __len__(self) -> int:
        return len(self.utterances)

    def lengths(self) -> list[int]:
        return [self.store.length(u.id, self.kinds[0]) for u in self.utterances]

    def __getitem__(self, i: int) -> dict[str, Any]:
        u = self.utterances[i]
        item: dict[str, Any] = {"id": u.id, "text": self.text[i], "speaker": self.speaker_index.get(u.speaker, 0)}
        for k in self.kinds:
            item[k] = self.store.get(u.id, k)
        return item


class PooledDataset(Dataset):
    """Several UtteranceDatasets (e.g. one per speaker) as one, with their lengths, for pooled training."""

    def __init__(self, parts: Sequence[UtteranceDataset]) -> None:
        self.parts = list(parts)
        self._index = [(p, i) for p, part in enumerate(self.parts) for i in range(len(part))]

    def __len__(self) -> int:
        return len(self._index)

    def lengths(self) -> list[int]:
        return [n for part in self.parts for n in part.lengths()]

    def __getitem__(self, i: int) -> dict[str, Any]:
        p, j = self._index[i]
        return self.parts[p][j]


class ParallelDataset(Dataset):
    """Pairs of utterances of the same prompt by a source and a target speaker, for voice conversion; with
    ``tgt_world_dir``, items also carry the target's cached WORLD parameters (``<dir>/<id>.npy``; pairs without one
    are left out)."""

    def __init__(self, pairs: Sequence[tuple[Utterance, Utterance]], src_store: FeatureStore,
                 tgt_store: FeatureStore, symbols: SymbolTable, max_frames: int | None = None,
                 tgt_world_dir: Path | None = None) -> None:
        self.pairs = [
            (s, t) for s, t in pairs
            if src_store.has(s.id) and tgt_store.has(t.id)
            and _fits(max(src_store.length(s.id), tgt_store.length(t.id)), max_frames)
            and (tgt_world_dir is None or (tgt_world_dir / f"{t.id}.npy").is_file())
        ]
        self.src_store, self.tgt_store = src_store, tgt_store
        self.tgt_world_dir = tgt_world_dir
        self.text = encode_transcripts([t for _, t in self.pairs], symbols)

    def __len__(self) -> int:
        return len(self.pairs)

    def lengths(self) -> list[int]:
        return [max(self.src_store.length(s.id), self.tgt_store.length(t.id)) for s, t in self.pairs]

    def __getitem__(self, i: int) -> dict[str, Any]:
        s, t = self.pairs[i]
        item = {"id": t.id, "src_mel": self.src_store.get(s.id, "mel"), "tgt_mel": self.tgt_store.get(t.id, "mel"),
                "text": self.text[i]}
        if self.tgt_world_dir is not None:
            world = torch.from_numpy(np.load(self.tgt_world_dir / f"{t.id}.npy"))  # (T, world_dim)
            if len(world) != len(item["tgt_mel"]):
                raise DatasetFormatError(f"{self.tgt_world_dir / f'{t.id}.npy'} has {len(world)} frames, the mel of "
                                         f"{t.id} {len(item['tgt_mel'])}: the WORLD cache was built at another hop; "
                                         "delete the folder to rebuild it")
            item["tgt_world"] = world
        return item


def collate_speech(items: Sequence[dict[str, Any]], pad_id: int) -> SpeechBatch:
    """Pad a list of UtteranceDataset items into a SpeechBatch (spectrograms padded with 0, text with pad_id)."""
    text, text_lengths = pad_sequences([it["text"] for it in items], value=pad_id)
    fields: dict[str, Any] = {"mel": None, "mel_lengths": None}
    if "mel" in items[0]:
        fields["mel"], fields["mel_lengths"] = pad_sequences([it["mel"] for it in items])
    if "linear" in items[0]:
        fields["linear"], _ = pad_sequences([it["linear"] for it in items])
    if "wav" in items[0]:
        fields["wav"], fields["wav_lengths"] = pad_sequences([it["wav"] for it in items])
    speakers = torch.tensor([it["speaker"] for it in items], dtype=torch.long)
    return SpeechBatch(ids=[it["id"] for it in items], text=text, text_lengths=text_lengths, speakers=speakers, **fields)


def collate_parallel(items: Sequence[dict[str, Any]], pad_id: int) -> ParallelBatch:
    """Pad a list of ParallelDataset items into a ParallelBatch."""
    src, src_lengths = pad_sequences([it["src_mel"] for it in items])
    tgt, tgt_lengths = pad_sequences([it["tgt_mel"] for it in items])
    text, text_lengths = pad_sequences([it["text"] for it in items], value=pad_id)
    world = pad_sequences([it["tgt_world"] for it in items])[0] if "tgt_world" in items[0] else None
    return ParallelBatch(ids=[it["id"] for it in items], src_mel=src, src_lengths=src_lengths, tgt_mel=tgt,
                         tgt_lengths=tgt_lengths, text=text, text_lengths=text_lengths, tgt_world=world)


def split_sizes(n: int, val_size: int, test_size: int) -> tuple[int, int]:
    """Validation and test sizes capped at 10% of the corpus each (so small corpora still train)."""
    cap = max(1, n // 10)
    return min(val_size, cap), min(test_size, cap)


class SpeechDataModule(ZooDataModule):
    """Base of the speech DataModules: the AudioConfig, the symbol table, feature caching and bucketing."""

    # what a sequence model trained on this data predicts (linked to a voice converter's ``target_features``): mel
    # frames, unless a DataModule yields other targets (CMUArcticDataModule's WORLD parameters)
    target_features: str = "mel"

    def __init__(self, *, val_size: int, test_size: int, root: str = "data", source: Source = "real",
                 download: bool = False, audio: AudioConfig = AudioConfig(), characters: str = DEFAULT_CHARACTERS,
                 load_linear: bool = False, load_wav: bool = False, batch_size: int = 32, num_workers: int = 0,
                 max_frames: int | None = None, seed: int = 1234, progress: bool = True,
                 cache_dir: str | None = None) -> None:
        """The arguments every speech corpus takes (a subclass declares its own and passes these on as
        ``**kwargs``: the CLI reads them from here); ``val_size`` and ``test_size`` are the corpus's own defaults."""
        super().__init__(source=source, root=root, download=download, batch_size=batch_size,
                         num_workers=num_workers, seed=seed)
        if not isinstance(audio, AudioConfig):
            raise ValueError(f"audio must be an AudioConfig, but got {type(audio).__name__}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or null, but got {max_frames}")
        self.audio = audio
        self.symbols = SymbolTable(characters)
        self.kinds: tuple[str, ...] = ("mel",) + (("linear",) if load_linear else ()) + (("wav",) if load_wav else ())
        self.val_size, self.test_size = val_size, test_size
        self.max_frames = max_frames
        self.progress = progress
        self.cache_dir = cache_dir

    def feature_store(self, corpus_dir: Path) -> FeatureStore:
        """The feature cache of one corpus folder (beside it, or under ``cache_dir`` when set)."""
        return FeatureStore(corpus_dir, self.audio, self.cache_dir)

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def lengths(self, stage: str) -> list[int]:
        return self._dataset(stage).lengths()  # type: ignore[attr-defined]

    def _split(self, keys: Sequence[str]) -> dict[str, set[str]]:
        """Seeded split of sorted keys (utterance or prompt ids) into train/val/test sets."""
        keys = sorted(keys)
        val, test = split_sizes(len(keys), self.val_size, self.test_size)
        parts = split_indices(len(keys), val, test, self.seed)
        return {stage: {keys[i] for i in idx} for stage, idx in parts.items()}

    def collate(self, items: Sequence[dict[str, Any]]) -> Any:
        if "src_mel" in items[0]:
            return collate_parallel(items, self.symbols.pad_id)
        return collate_speech(items, self.symbols.pad_id)


__all__ = ["DEFAULT_CHARACTERS", "FeatureStore", "ParallelDataset", "PooledDataset", "SpeechDataModule", "Utterance", "UtteranceDataset"]
