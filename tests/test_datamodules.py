"""The DataModules over real on-disk formats built by the tests: LJSpeech, CMU ARCTIC, MNIST IDX."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from datamodules import CMUArcticDataModule, LJSpeechDataModule, MNISTDataModule
from datamodules.base import split_indices
from datamodules.mnist import read_idx
from datamodules.sampling import BucketBatchSampler
from tests.conftest import make_ljspeech_tree, make_mnist_tree, tone, write_idx
from zoo.audio import AudioConfig, AudioFrontEnd
from zoo.errors import DatasetFormatError, DatasetNotFoundError

SMALL = AudioConfig(n_mels=40)


def lj(root: Path, **kw) -> LJSpeechDataModule:
    kw = {"root": str(root), "audio": SMALL, "batch_size": 4, "progress": False, "val_size": 1, "test_size": 1, **kw}
    dm = LJSpeechDataModule(**kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


# --- LJSpeech -----------------------------------------------------------------------------------------------
def test_ljspeech_batches_have_padded_features_and_lengths(lj_root):
    dm = lj(lj_root, load_linear=True, load_wav=True)
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 10, "val": 1, "test": 1}
    batch = next(iter(dm.train_dataloader()))
    b = len(batch.ids)
    assert batch.mel.shape[0] == b and batch.mel.shape[2] == 40
    assert batch.linear.shape[2] == SMALL.n_freq and batch.linear.shape[1] == batch.mel.shape[1]
    assert batch.mel_lengths.max() == batch.mel.shape[1]
    assert batch.text.dtype == torch.long and (batch.text[:, 0] != dm.symbols.pad_id).all()
    for i in range(b):  # padding after the valid frames is exactly zero, the text ends in EOS
        assert (batch.mel[i, batch.mel_lengths[i]:] == 0).all()
        assert batch.text[i, batch.text_lengths[i] - 1] == dm.symbols.eos_id
        frames = 1 + int(batch.wav_lengths[i]) // SMALL.hop_length
        assert frames == int(batch.mel_lengths[i])  # wav and mel of one utterance agree through the hop length


def test_ljspeech_features_match_the_front_end_and_are_cached(lj_root):
    dm = lj(lj_root)
    item = dm.datasets["train"][0]
    wav, sr = sf.read(dm.folder / "wavs" / f"{item['id']}.wav", dtype="float32")
    expected = AudioFrontEnd(SMALL).mel(torch.from_numpy(wav)).T
    assert torch.allclose(item["mel"], expected, atol=1e-5)
    cache = next((dm.folder / ".zoo_features").iterdir())
    stamp = (cache / "mel.bin").stat().st_mtime_ns
    lj(lj_root)  # same config: cache reused, not rewritten
    assert (cache / "mel.bin").stat().st_mtime_ns == stamp
    lj(lj_root, audio=AudioConfig(n_mels=32))  # changed config: another cache
    assert len(list((dm.folder / ".zoo_features").iterdir())) == 2


def test_splits_are_deterministic_and_disjoint():
    a = split_indices(100, 10, 5, seed=3)
    assert np.array_equal(a["val"], split_indices(100, 10, 5, seed=3)["val"])
    assert not np.array_equal(a["val"], split_indices(100, 10, 5, seed=4)["val"])
    sets = [set(a[k].tolist()) for k in ("train", "val", "test")]
    assert sum(map(len, sets)) == 100 and len(set.union(*sets)) == 100
    with pytest.raises(ValueError, match="no training data"):
        split_indices(10, 5, 5, seed=0)


def test_ljspeech_bad_inputs_are_handled_as_documented(tmp_path, caplog):
    folder = make_ljspeech_tree(tmp_path, n=12)
    # a truncated WAV: header promises more frames than present -> left out, with a warning naming it
    good = (folder / "wavs" / "LJ001-0003.wav").read_bytes()
    (folder / "wavs" / "LJ001-0003.wav").write_bytes(good[: len(good) // 2])
    # a WAV at the wrong sample rate -> resampled on load to the config's rate
    sf.write(folder / "wavs" / "LJ001-0004.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    # an empty transcript line -> left out with a warning; characters outside the symbol table -> dropped, counted
    lines = (folder / "metadata.csv").read_text().splitlines()
    lines[4] = "LJ001-0005||"
    lines[5] = "LJ001-0006|Price: 5€ #1 — naïve café|Price: 5€ #1 — naïve café"
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        dm = lj(tmp_path, val_size=1, test_size=1)
    ids = {u.id for ds in dm.datasets.values() for u in ds.utterances}
    assert "LJ001-0003" not in ids and "LJ001-0005" not in ids and "LJ001-0004" in ids
    assert "truncated" in caplog.text and "LJ001-0003" in caplog.text
    assert "empty transcript" in caplog.text and "LJ001-0005" in caplog.text
    assert "outside the symbol table" in caplog.text and "'#'" in caplog.text
    resampled = next(ds for ds in dm.datasets.values() if any(u.id == "LJ001-0004" for u in ds.utterances))
    i = [u.id for u in resampled.utterances].index("LJ001-0004")
    assert resampled[i]["mel"].shape[0] == 1 + int(0.5 * 22050) // SMALL.hop_length
    holder = next(ds for ds in dm.datasets.values() if any(u.id == "LJ001-0006" for u in ds.utterances))
    text = dm.symbols.decode(holder.text[[u.id for u in holder.utterances].index("LJ001-0006")])
    assert text.startswith("price") and "#" not in text and "cafe" in text  # accents transliterated, '#' dropped


def test_ljspeech_malformed_metadata_and_missing_wavs_fail_clearly(tmp_path):
    folder = make_ljspeech_tree(tmp_path, n=12)
    (folder / "wavs" / "LJ001-0002.wav").unlink()
    with pytest.raises(DatasetFormatError, match="LJ001-0002"):
        lj(tmp_path)
    (folder / "metadata.csv").write_text("no separator here\n")
    with pytest.raises(DatasetFormatError, match=r"metadata.csv:1"):
        lj(tmp_path)


def test_missing_dataset_names_the_offline_switch(tmp_path):
    for dm in (LJSpeechDataModule(root=str(tmp_path)), CMUArcticDataModule(root=str(tmp_path)),
               MNISTDataModule(root=str(tmp_path))):
        with pytest.raises(DatasetNotFoundError, match="--data.source embedded"):
            dm.prepare_data()
    assert not (tmp_path / "embedded").exists()  # the embedded corpus is never used silently in place of real data


def test_bad_datamodule_arguments_raise_value_errors(tmp_path):
    with pytest.raises(ValueError, match="source"):
        LJSpeechDataModule(source="fake")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        MNISTDataModule(batch_size=0)
    with pytest.raises(ValueError, match="target_speaker"):
        CMUArcticDataModule(target_speaker="nobody")
    with pytest.raises(ValueError, match="two different speakers"):
        CMUArcticDataModule(source_speaker="slt", target_speaker="slt")


# --- CMU ARCTIC ---------------------------------------------------------------------------------------------
def test_arctic_parallel_pairs_share_prompts_and_split_by_prompt(arctic_root):
    dm = CMUArcticDataModule(root=str(arctic_root), audio=SMALL, batch_size=3, progress=False, val_size=2, test_size=1)
    dm.prepare_data()
    dm.setup()
    ids = {k: {t.id for _, t in ds.pairs} for k, ds in dm.datasets.items()}
    assert len(ids["val"]) == 1 and len(ids["test"]) == 1  # capped at 10% of 12 prompts
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"])
    for s, t in dm.datasets["train"].pairs:
        assert s.id == t.id and s.speaker == "bdl" and t.speaker == "slt" and s.text == t.text
    batch = next(iter(dm.train_dataloader()))
    assert batch.src_mel.shape[2] == 40 and batch.tgt_mel.shape[2] == 40
    assert (batch.src_lengths != batch.tgt_lengths).any()  # the two speakers differ in timing
    # 16 kHz files resampled to the config's 22.05 kHz on load
    s, t = dm.datasets["train"].pairs[0]
    seconds = sf.info(s.wav_path).duration
    assert abs(dm.datasets["train"].src_store.length(s.id) - (1 + int(seconds * 22050) // SMALL.hop_length)) <= 1


def test_arctic_single_speaker_mode(arctic_root):
    dm = CMUArcticDataModule(root=str(arctic_root), mode="single", target_speaker="slt", audio=SMALL, batch_size=4,
                             progress=False, load_wav=True)
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.wav is not None and batch.mel.shape[2] == 40
    assert all(u.speaker == "slt" for u in dm.datasets["train"].utterances)


def test_arctic_malformed_prompt_file(arctic_root):
    prompts = arctic_root / "cmu_arctic" / "cmu_us_bdl_arctic" / "etc" / "txt.done.data"
    prompts.write_text('( arctic_a0001 "fine" )\narctic_a0002 missing parentheses\n')
    dm = CMUArcticDataModule(root=str(arctic_root), audio=SMALL, progress=False)
    with pytest.raises(DatasetFormatError, match="txt.done.data:2"):
        dm.prepare_data()


# --- MNIST --------------------------------------------------------------------------------------------------
def test_idx_written_byte_by_byte_reads_back(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x-idx3-ubyte", images)
    assert np.array_equal(read_idx(tmp_path / "x-idx3-ubyte"), images)
    raw = (tmp_path / "x-idx3-ubyte").read_bytes()
    (tmp_path / "bad-idx3-ubyte").write_bytes(raw[:-3])
    with pytest.raises(DatasetFormatError, match="promises shape"):
        read_idx(tmp_path / "bad-idx3-ubyte")
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetFormatError, match="not an IDX file"):
        read_idx(tmp_path / "junk")


def test_mnist_datamodule_reads_idx_and_npz(tmp_path):
    make_mnist_tree(tmp_path, n_train=40, n_test=20)
    dm = MNISTDataModule(root=str(tmp_path), batch_size=8, val_size=8)
    dm.prepare_data()
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 32, "val": 8, "test": 20}
    batch = next(iter(dm.train_dataloader()))
    assert batch.images.shape == (8, 1, 28, 28) and 0 <= batch.images.min() and batch.images.max() <= 1
    # the same data as a Keras-style mnist.npz
    npz_root = tmp_path / "npz"
    (npz_root / "mnist").mkdir(parents=True)
    rng = np.random.default_rng(1)
    np.savez(npz_root / "mnist" / "mnist.npz", x_train=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8),
             y_train=np.arange(30) % 10, x_test=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8), y_test=np.arange(10))
    dm = MNISTDataModule(root=str(npz_root), val_size=5)
    dm.prepare_data()
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 25, "val": 5, "test": 10}


def test_mnist_embedded_digits_look_like_mnist():
    dm = MNISTDataModule(source="embedded", batch_size=16)
    dm.prepare_data()
    dm.setup()
    assert sum(len(v) for v in dm.datasets.values()) == 1797
    batch = next(iter(dm.val_dataloader()))
    assert batch.images.shape == (16, 1, 28, 28)
    assert batch.images[:, :, :4].max() == 0 and batch.images[:, :, :, -4:].max() == 0  # MNIST's 4-pixel margin
    assert set(batch.labels.tolist()) <= set(range(10))


# --- bucketing ------------------------------------------------------------------------------------------------
def test_bucket_sampler_groups_lengths_and_shards_evenly():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=103)
    shards = [list(BucketBatchSampler(lengths, 8, num_replicas=2, rank=r, seed=5, bucket_batches=4)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(BucketBatchSampler(lengths, 8, num_replicas=2, rank=0))
    seen = [i for shard in shards for batch in shard for i in batch]
    assert set(seen) == set(range(103))  # nothing lost; the odd batch out is repeated, as DistributedSampler pads
    # bucketing: the spread of lengths inside a batch is far below the spread of random batches
    spread = np.mean([np.ptp(lengths[b]) for shard in shards for b in shard])
    assert spread < 0.5 * np.mean([np.ptp(lengths[rng.permutation(103)[:8]]) for _ in range(50)])
    # epochs reshuffle; the same epoch replays identically
    s = BucketBatchSampler(lengths, 8, seed=5)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first
    s.set_epoch(0)
    assert list(s) == first
    dropped = [list(BucketBatchSampler(lengths, 8, num_replicas=2, rank=r, drop_last=True)) for r in (0, 1)]
    flat = [i for shard in dropped for b in shard for i in b]
    assert len(flat) == len(set(flat)) and all(len(b) == 8 for shard in dropped for b in shard)


# --- embedded corpora through the DataModules --------------------------------------------------------------
def test_embedded_speech_corpora_load_through_the_same_parsers(tmp_path):
    dm = LJSpeechDataModule(root=str(tmp_path), source="embedded", embedded_size=12, audio=SMALL, batch_size=4,
                            progress=False)
    dm.prepare_data()
    dm.setup()
    assert (tmp_path / "embedded" / "LJSpeech-1.1" / "metadata.csv").is_file()
    assert not (tmp_path / "LJSpeech-1.1").exists()  # never mixed with where real data would be
    batch = next(iter(dm.train_dataloader()))
    assert batch.mel.shape[2] == 40 and batch.mel_lengths.min() > 20  # real speech, seconds long
    arctic = CMUArcticDataModule(root=str(tmp_path), source="embedded", embedded_size=10, audio=SMALL, batch_size=4,
                                 progress=False)
    arctic.prepare_data()
    arctic.setup()
    pair = arctic.datasets["train"][0]
    # the two embedded voices read the same prompt at different speaking rates
    assert pair["src_mel"].shape[0] != pair["tgt_mel"].shape[0]


def test_feature_cache_can_live_outside_a_read_only_corpus(lj_root, tmp_path):
    cache = tmp_path / "cache"
    dm = lj(lj_root, cache_dir=str(cache))
    assert not (dm.folder / ".zoo_features").exists()
    assert list(cache.glob("LJSpeech-1.1-*/*/mel.bin"))
    assert len(dm.datasets["train"]) == 10


def test_preparing_data_leaves_the_random_streams_alone(tmp_path):
    """Generating a corpus and caching its features must not shift the random numbers training draws next."""
    import random

    import numpy as np
    import torch

    from datamodules import LJSpeechDataModule

    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    expected = (torch.rand(2), np.random.rand(2), random.random())
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    dm = LJSpeechDataModule(root=str(tmp_path), source="embedded", embedded_size=12, val_size=1, test_size=1, progress=False)
    dm.prepare_data()
    dm.setup("fit")
    got = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_parallel_feature_caching_writes_the_same_cache_as_one_process(tmp_path):
    from datamodules.ljspeech import read_ljspeech_metadata
    from datamodules.speech import FeatureStore
    from tests.conftest import make_ljspeech_tree
    from zoo.audio import AudioConfig

    folder = make_ljspeech_tree(tmp_path / "lj", n=6)
    (folder / "wavs" / "LJ001-0003.wav").write_bytes(b"RIFF not a wav")  # unreadable: skipped by both
    utterances = read_ljspeech_metadata(folder)
    audio = AudioConfig()
    one = FeatureStore(folder, audio, cache_root=tmp_path / "serial")
    two = FeatureStore(folder, audio, cache_root=tmp_path / "parallel")
    one.build(utterances, ("mel", "linear", "wav"), progress=False, workers=1)
    two.build(utterances, ("mel", "linear", "wav"), progress=False, workers=2)
    for kind in ("mel", "linear", "wav"):
        assert (one.dir / f"{kind}.bin").read_bytes() == (two.dir / f"{kind}.bin").read_bytes()
        assert json.loads((one.dir / f"{kind}.json").read_text()) == json.loads((two.dir / f"{kind}.json").read_text())
    two.load(("mel",))
    assert "LJ001-0003" in two.skipped() and not two.has("LJ001-0003") and two.has("LJ001-0001")
    with pytest.raises(ValueError, match="workers"):
        FeatureStore(folder, audio, cache_root=tmp_path / "x").build(utterances, ("mel",), progress=False, workers=0)
