"""The field's speech metrics (WORLD/SPTK MCD, F0, DDUR, DNSMOS, WER/CER), the training-time proxy, the standard CMU
ARCTIC split and the evaluation runner, on real-format audio."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import make_arctic_tree, tone
from zoo.audio import AudioConfig
from zoo.metrics.asr import error_rates, normalize_transcript
from zoo.metrics.mcd import (F0_RANGES, mcd_from_mcep, normalized_power_db, objective_scores, two_pass_f0_range,
                             world_features, world_resynthesis)
from zoo.metrics.mel_distance import dct_cepstrum, mel_cepstral_distance_proxy

SR = 16000
F0_RANGE = (60.0, 400.0)


def speech_like(seconds: float = 1.2, freq: float = 180.0, seed: int = 0) -> np.ndarray:
    """Voiced harmonics with a slow pitch glide and amplitude envelope, a pause, then more: real-format 16 kHz audio."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(freq * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.3 + 0.7 * np.sin(np.pi * t / seconds) ** 2)
    x[int(0.45 * len(x)) : int(0.55 * len(x))] *= 0.001
    return 0.3 * x / np.abs(x).max() + 0.002 * rng.standard_normal(len(t))


# --- MCD, F0, DDUR ---------------------------------------------------------------------------------------------


def test_mcd_of_identical_signals_is_zero():
    x = speech_like()
    s = objective_scores(x, x, SR, F0_RANGE)
    assert s.mcd_db == pytest.approx(0.0, abs=1e-9) and s.f0_rmse_hz == pytest.approx(0.0, abs=1e-9)
    assert s.f0_corr == pytest.approx(1.0) and s.ddur_s == 0.0 and s.note == ""


def test_mcd_of_a_known_cepstral_offset_is_hand_computed():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 40))
    delta = np.zeros(40)
    delta[1], delta[2] = 0.1, 0.2
    # every frame differs by delta: 10 / ln 10 * sqrt(2 * (0.1^2 + 0.2^2)) dB; DTW pairs each frame with itself
    assert mcd_from_mcep(a + delta, a) == pytest.approx(10 / math.log(10) * math.sqrt(2 * 0.05), rel=1e-9)
    delta[0] = 1.0  # c0 is included in the published protocol
    assert mcd_from_mcep(a + delta, a) == pytest.approx(10 / math.log(10) * math.sqrt(2 * 1.05), rel=1e-9)


def test_mcd_agrees_with_a_direct_pyworld_pysptk_fastdtw_computation(tmp_path: Path):
    import pysptk
    import pyworld
    import scipy.spatial.distance
    from fastdtw import fastdtw
    from scipy.signal import firwin, lfilter

    # two real-format 16-bit wav files, read back as the evaluation reads them
    for name, freq, seed in (("a", 170.0, 1), ("b", 200.0, 2)):
        sf.write(tmp_path / f"{name}.wav", speech_like(1.0, freq, seed), SR, subtype="PCM_16")
    a, b = (sf.read(tmp_path / f"{n}.wav")[0] for n in ("a", "b"))

    def direct(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = lfilter(firwin(255, 70 / (SR // 2), pass_zero=False), 1, x * 32767)
        f0, t = pyworld.harvest(x, SR, f0_floor=F0_RANGE[0], f0_ceil=F0_RANGE[1], frame_period=5.0)
        sp = pyworld.cheaptrick(x, f0, t, SR, fft_size=1024)
        power = np.array([(row[0] + row[-1] + 2 * row[1:-1].sum()) / 1024 for row in sp])
        return f0, pysptk.sp2mc(sp, 39, 0.466), 10 * np.log10(power / power.mean())

    (fa, ma, pa), (fb, mb, pb) = direct(a), direct(b)
    ma_s, mb_s = ma[pa > -20], mb[pb > -20]
    _, path = fastdtw(ma_s, mb_s, dist=scipy.spatial.distance.euclidean)
    i, j = np.array(path).T
    expected_mcd = np.mean(10 / np.log(10) * np.sqrt(2 * ((ma_s[i] - mb_s[j]) ** 2).sum(1)))
    va, vb = fa > 0, fb > 0
    _, path = fastdtw(ma[va], mb[vb], dist=scipy.spatial.distance.euclidean)
    i, j = np.array(path).T
    expected_rmse = np.sqrt(np.mean((fa[va][i] - fb[vb][j]) ** 2))

    s = objective_scores(a, b, SR, F0_RANGE)
    assert s.mcd_db == pytest.approx(expected_mcd, rel=1e-9)
    assert s.f0_rmse_hz == pytest.approx(expected_rmse, rel=1e-9)
    assert 2.0 < s.mcd_db < 30.0


def test_two_pass_f0_range_is_three_quarters_of_q25_to_one_and_a_half_q75():
    """Steady tones at 100, 150 and 200 Hz, one second each: the voiced frames' quartiles are 100 and 200 Hz, so
    the rule gives (75, 300) Hz (Harvest's edges of each tone move the quartiles by a hertz or two at most)."""
    wavs = [tone(1.0, SR, freq=f).astype(np.float64) for f in (100.0, 150.0, 200.0)]
    low, high = two_pass_f0_range(wavs, SR)
    assert low == pytest.approx(0.75 * 100.0, abs=2.0) and high == pytest.approx(1.5 * 200.0, abs=4.0)
    with pytest.raises(ValueError, match="no voiced frame"):
        two_pass_f0_range([np.zeros(SR)], SR)
    # the shipped ranges are the rule's on the training prompts (module comment), rounded outwards to 5 Hz
    assert F0_RANGES == {"bdl": (85.0, 220.0), "slt": (115.0, 280.0)}


def test_world_resynthesis_keeps_the_envelope_and_f0():
    """WORLD analysis-synthesis of a voiced signal scores near, but not at, the metrics' floor: an MCD of a few
    dB, the F0 contour kept, the length unchanged."""
    x = speech_like()
    y = world_resynthesis(x, SR, F0_RANGE)
    assert y.shape == x.shape and np.abs(y).max() <= 1.0
    s = objective_scores(y, x, SR, F0_RANGE)
    assert 0.0 < s.mcd_db < 4.0 and s.f0_rmse_hz < 5.0 and s.f0_corr > 0.9
    # a recording band-limited to 4 kHz (8 kHz resampled to 16 kHz, as the reports score 8 kHz models): D4C leaves
    # NaN aperiodicities above the band, which must not reach the waveform
    import librosa

    narrow = librosa.resample(speech_like()[::2].copy(), orig_sr=SR // 2, target_sr=SR)
    assert np.isfinite(world_resynthesis(narrow, SR, F0_RANGE)).all()


def test_normalized_power_of_a_flat_envelope_is_zero_db():
    assert normalized_power_db(np.ones((3, 513))) == pytest.approx(np.zeros(3))
    # twice the power in one frame: +10 log10(2 / 1.5) and 10 log10(1 / 1.5) dB against the mean
    npow = normalized_power_db(np.stack([np.ones(513), 2 * np.ones(513)]))
    assert npow == pytest.approx([10 * math.log10(1 / 1.5), 10 * math.log10(2 / 1.5)])


def test_bad_audio_is_a_clear_error_or_a_named_nan():
    x = speech_like()
    with pytest.raises(ValueError, match="empty"):
        objective_scores(np.zeros(0), x, SR, F0_RANGE)
    with pytest.raises(ValueError, match="NaN"):
        objective_scores(np.full(100, np.nan), x, SR, F0_RANGE)
    silent = objective_scores(np.zeros(SR), x, SR, F0_RANGE)
    assert math.isnan(silent.mcd_db) and math.isnan(silent.f0_rmse_hz) and "silent" in silent.note
    noise = np.random.default_rng(0).standard_normal(SR) * 0.1  # speech-level but unvoiced throughout
    unvoiced = objective_scores(noise, x, SR, (300.0, 400.0))
    assert math.isfinite(unvoiced.mcd_db)
    assert math.isnan(unvoiced.f0_rmse_hz) == ("voiced" in unvoiced.note)


def test_world_features_shapes():
    f = world_features(speech_like(0.5), SR, F0_RANGE)
    assert f.mcep.shape == (len(f.f0), 40) and f.npow.shape == f.f0.shape and not f.silent
    assert 0.3 < f.trimmed_seconds <= 0.5 and (f.f0 > 0).mean() > 0.5


# --- WER / CER, DNSMOS -----------------------------------------------------------------------------------------


def test_error_rates_hand_computed_and_normalised():
    assert normalize_transcript("Author of the danger trail, Philip Steels, etc.") == \
        "author of the danger trail philip steels etc"
    rates = error_rates(["These quick little joys.", "Tom, apologized Whittemore"],
                        ["the script little joys", "tom apologized whittemore"])
    assert rates.wer == pytest.approx(100 * 2 / 7)  # two substitutions over seven reference words
    # characters, spaces included, summed over the corpus: 1 substitution in "cat sat" (7), 1 deletion in "dog" (3)
    assert error_rates(["Cat sat.", "dog"], ["cat set", "dg"]).cer == pytest.approx(100 * 2 / 10)
    assert error_rates(["a b c"], [""]).wer == 100.0  # nothing recognised: every word deleted
    with pytest.raises(ValueError, match="as many"):
        error_rates(["a"], [])


def test_pocketsphinx_transcribes_and_dnsmos_ranks_clean_over_noise():
    from zoo.metrics.asr import PocketSphinxRecognizer
    from zoo.metrics.dnsmos import dnsmos

    x = speech_like(1.5)
    assert isinstance(PocketSphinxRecognizer().transcribe(x, SR), str)
    clean, noisy = dnsmos(x, SR), dnsmos(x + 0.2 * np.random.default_rng(0).standard_normal(len(x)), SR)
    assert 1.0 <= noisy.ovrl < clean.ovrl <= 5.0 and noisy.bak < clean.bak
    assert math.isnan(dnsmos(np.zeros(SR), SR).ovrl)
    with pytest.raises(ValueError, match="non-empty"):
        dnsmos(np.zeros(0), SR)
    eight_k = dnsmos(x[::2], 8000)  # another rate is resampled, not rejected
    assert 1.0 <= eight_k.ovrl <= 5.0


# --- the proxy ---------------------------------------------------------------------------------------------------


def test_proxy_cepstrum_has_sptk_convention():
    """log|X(w_k)| = c0 + sum_{m>=1} c_m cos(m w_k): a unit cosine gives c1 = 1, as SPTK's sp2mc does."""
    n = 8
    w = math.pi / n * (torch.arange(n, dtype=torch.float64) + 0.5)
    c = dct_cepstrum(torch.cos(w).unsqueeze(0))[0]
    assert c[1].item() == pytest.approx(1.0) and c[0].item() == pytest.approx(0.0, abs=1e-12)
    x = torch.randn(3, n, dtype=torch.float64)
    c = dct_cepstrum(x)
    m = torch.arange(1, n, dtype=torch.float64)
    rebuilt = c[:, :1] + (c[:, 1:].unsqueeze(-1) * torch.cos(m.unsqueeze(-1) * w)).sum(1)
    torch.testing.assert_close(rebuilt, x)
    # a c1 offset of 0.5 costs 10 / ln 10 * sqrt(2) * 0.5 dB
    assert mel_cepstral_distance_proxy(0.5 * torch.cos(w).unsqueeze(0), torch.zeros(1, n, dtype=torch.float64)) == \
        pytest.approx(10 / math.log(10) * math.sqrt(2) * 0.5)


# --- the standard CMU ARCTIC split --------------------------------------------------------------------------------


def test_standard_split_puts_exactly_the_published_ids_in_each_part():
    from datamodules.cmu_arctic import standard_split_part
    from zoo.corpora.layouts import arctic_prompt_id

    ids = sorted(arctic_prompt_id(i) for i in range(1132))
    parts = [standard_split_part(i) for i in ids]
    assert parts == ["train"] * 932 + ["dev"] * 100 + ["eval"] * 100  # sorted ids: first 932, next 100, last 100
    assert ids[931] == "arctic_b0339" and ids[932] == "arctic_b0340" and ids[1031] == "arctic_b0439"
    assert ids[1032] == "arctic_b0440" and ids[-1] == "arctic_b0539"
    with pytest.raises(ValueError, match="not a CMU ARCTIC prompt id"):
        standard_split_part("arctic_b0540")


def test_standard_split_without_eval_trains_validates_and_says_so(tmp_path: Path, caplog):
    import datamodules
    from zoo.errors import DatasetFormatError

    ids = ["arctic_a0001", "arctic_a0593", "arctic_b0339", "arctic_b0340", "arctic_b0439"]  # no eval prompt
    make_arctic_tree(tmp_path, ids=ids)
    audio = AudioConfig(sample_rate=16000, n_fft=512, win_length=512, hop_length=256, n_mels=16)
    for mode, per_prompt in (("parallel", 1), ("pooled", 2)):
        dm = datamodules.CMUArcticDataModule(root=str(tmp_path), mode=mode, split="standard", audio=audio,
                                            progress=False, batch_size=2)
        dm.prepare_data()
        with caplog.at_level(logging.WARNING):
            dm.setup("fit")
        assert "eval part" in caplog.text and "test split is empty" in caplog.text
        assert len(dm.datasets["train"]) == 3 * per_prompt and len(dm.datasets["val"]) == 2 * per_prompt
        with pytest.raises(DatasetFormatError, match="eval part"):
            dm.test_dataloader()
        batch = next(iter(dm.train_dataloader()))
        assert batch.mel.shape[-1] == 16 if mode == "pooled" else batch.src_mel.shape[-1] == 16


def test_standard_split_without_dev_is_a_clear_error(tmp_path: Path):
    import datamodules
    from zoo.errors import DatasetFormatError

    make_arctic_tree(tmp_path, n=4)  # arctic_a0001..a0004: train prompts only
    dm = datamodules.CMUArcticDataModule(root=str(tmp_path), split="standard", progress=False,
                                        audio=AudioConfig(sample_rate=16000, n_fft=512, win_length=512,
                                                          hop_length=256, n_mels=16))
    dm.prepare_data()
    with pytest.raises(DatasetFormatError, match="0 dev prompts"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="split must be"):
        datamodules.CMUArcticDataModule(split="random")


# --- the evaluation runner ------------------------------------------------------------------------------------


def test_scorer_rows_with_bad_files_named_not_crashed(tmp_path: Path):
    from zoo.evaluation import Scorer

    ref = {f"u{i}": tmp_path / f"ref{i}.wav" for i in range(3)}
    for i, path in enumerate(ref.values()):
        sf.write(path, speech_like(0.8, 150 + 20 * i, i), SR, subtype="PCM_16")
    texts = {k: "printing in the only sense" for k in ref}
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00not audio")
    import librosa

    u1 = sf.read(ref["u1"])[0]
    sf.write(tmp_path / "u1_8k.wav", librosa.resample(u1, orig_sr=SR, target_sr=8000), 8000)  # resampled to 16 kHz
    with Scorer(ref, texts, F0_RANGE, workers=1) as scorer:
        same = scorer.score(ref)
        assert same["mcd_db"] == pytest.approx(0.0, abs=1e-9) and same["n"] == 3 and not same["notes"]
        row = scorer.score({"u0": np.zeros(SR), "u1": tmp_path / "u1_8k.wav", "u2": tmp_path / "corrupt.wav"})
    assert row["mcd_db_undefined"] == 2 and "silent" in row["notes"]["u0"] and "cannot be read" in row["notes"]["u2"]
    back = librosa.resample(sf.read(tmp_path / "u1_8k.wav")[0], orig_sr=8000, target_sr=SR)
    assert row["mcd_db"] == pytest.approx(objective_scores(back, u1, SR, F0_RANGE).mcd_db, rel=1e-6)
    assert row["wer"] >= 0.0 and len(row["utterances"]) == 3
    with pytest.raises(ValueError, match="no reference"):
        Scorer(ref, texts, F0_RANGE, workers=1).__enter__().score({"unknown": np.zeros(10)})


def test_tone_fixture_is_voiced():
    f = world_features(tone(0.5, SR, 200.0).astype(np.float64), SR, F0_RANGE)
    assert np.median(f.f0[f.f0 > 0]) == pytest.approx(200.0, rel=0.05)
