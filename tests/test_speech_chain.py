"""The speech chain over checkpoints: ``python -m zoo synthesize`` and ``python -m zoo convert`` with a post-net and a
WaveNet vocoder, end to end on checkpoints trained here for two batches at tiny sizes (real corpus layouts), and the
clear error of every stage mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import make_arctic_tree, make_ljspeech_tree
from tests.families import SEEDED, tiny
from zoo.audio import AudioConfig
from zoo.cli import main

ROOT = Path(__file__).resolve().parent.parent
LJ = AudioConfig()  # the LJSpeech DataModule's (and the ARCTIC one's) default front end
# two training batches teach no stop token: near-certainty keeps inference running to the 24-frame guard
_TTS_FAST = ["--model.init_args.training.max_decoder_frames", "24", "--model.init_args.training.stop_threshold", "0.999999"]

def _fit(config: str, root: Path, out: Path, *overrides: str) -> Path:
    main(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), *overrides,
          "--data.init_args.source", "real", "--data.init_args.root", str(root), "--data.init_args.download", "false",
          "--data.init_args.val_size", "2", "--data.init_args.test_size", "2",
          "--trainer.max_epochs", "1", "--trainer.max_steps", "-1", "--trainer.max_time", "null",
          "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
          "--trainer.logger", "false", "--trainer.callbacks", "[]", "--trainer.enable_progress_bar", "false",
          "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.default_root_dir", str(out)])
    return max(out.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    base = tmp_path_factory.mktemp("chain")
    lj = base / "lj"
    make_ljspeech_tree(lj, n=12)
    arctic = base / "arctic"
    arctic_tree = make_arctic_tree(arctic, n=12)
    ckpts = {
        "tacotron2": _fit("tacotron2", lj, base / "t2", *tiny("tacotron2"), *_TTS_FAST),
        "tacotron": _fit("tacotron", lj, base / "t1", *tiny("tacotron"), *_TTS_FAST),
        "wavenet": _fit("wavenet_mol", lj, base / "wn", *tiny("wavenet_mol")),
        "postnet": _fit("postnet_pix2pix", lj, base / "pn", *tiny("postnet_pix2pix"), "--data.init_args.num_workers", "0"),
        "vc": _fit("vc_teacher", arctic, base / "vc", *tiny("vc_teacher"), *SEEDED),
    }
    # A WaveNet trained at the 16 kHz / hop-200 front end of the real ARCTIC preset: every chain above must refuse it.
    from zoo.losses.output_distribution import OutputConfig
    from zoo.models.wavenet import WaveNetVocoder
    from zoo.nn.wavenet import WaveNetConfig

    other = AudioConfig(sample_rate=16000, n_fft=1024, hop_length=200, win_length=800, n_mels=80, fmax=8000.0)
    vocoder = WaveNetVocoder(audio=other, net=WaveNetConfig(layers=2, stacks=1, residual_channels=4, gate_channels=4,
                                                            skip_channels=4, upsample_scales=(2, 4, 5, 5),
                                                            output=OutputConfig(num_mixtures=2)))
    ckpts["wavenet_16k"] = base / "wavenet_16k.ckpt"
    torch.save({"state_dict": vocoder.state_dict(),
                "hyper_parameters": {**vocoder.hparams, "_class_path": "zoo.models.wavenet.WaveNetVocoder"}},
               ckpts["wavenet_16k"])
    ckpts["arctic"] = arctic_tree
    return ckpts


def _check_wav(path: Path, frames: int, hop: int, exact: bool, audible: bool = True) -> None:
    wav, sr = sf.read(path, dtype="float32")
    assert sr == LJ.sample_rate
    assert np.isfinite(wav).all()
    # (a linear spectrogram two batches into training sits below -90 dB: silent once written as 16-bit PCM)
    assert wav.std() > 0 or not audible, f"{path} is silent"
    if exact:  # WaveNet: hop samples per frame
        assert len(wav) == frames * hop
    else:  # Griffin-Lim's inverse STFT: (frames - 1) * hop, or one FFT window at least
        assert abs(len(wav) - (max(frames, LJ.n_fft // hop + 1) - 1) * hop) <= hop


def test_synthesize_with_postnet_and_wavenet_then_tacotron_own_path(chain, tmp_path: Path):
    out = tmp_path / "t2"
    main(["synthesize", "--tts", str(chain["tacotron2"]), "--postnet", str(chain["postnet"]), "--vocoder",
          str(chain["wavenet"]), "--text", "Printing, in the only sense.", "--text", "Short one.", "--out", str(out),
          "--batch-size", "2", "--no-progress"])
    record = json.loads((out / "synthesis.json").read_text())
    assert [Path(f["wav"]).name for f in record["files"]] == ["0001.wav", "0002.wav"]
    for f in record["files"]:
        _check_wav(Path(f["wav"]), f["frames"], LJ.hop_length, exact=True)
        assert Path(f["wav"]).with_suffix(".png").is_file()
        assert 1 <= f["frames"] <= 24

    # Tacotron (linear spectrogram, Griffin-Lim) from an LJSpeech-style ID|text file
    texts = tmp_path / "prompts.txt"
    texts.write_text("LJ900-0001|The earliest book printed.\n\nLJ900-0002|It was printed in 1865.\n", encoding="utf-8")
    out1 = tmp_path / "t1"
    main(["synthesize", "--tts", str(chain["tacotron"]), "--text-file", str(texts), "--out", str(out1), "--no-progress"])
    files = json.loads((out1 / "synthesis.json").read_text())["files"]
    assert [Path(f["wav"]).stem for f in files] == ["LJ900-0001", "LJ900-0002"]
    for f in files:
        _check_wav(Path(f["wav"]), f["frames"], LJ.hop_length, exact=False, audible=False)


def test_python_api_in_three_lines(chain):
    from zoo.pipeline import Synthesizer

    for name in ("tacotron2", "tacotron"):
        tts = Synthesizer.from_checkpoint(chain[name], vocoder="griffin-lim", device="cpu")
        (utt,) = tts.synthesize(["Roman type was first used in Italy."])
        assert utt.wav.ndim == 1 and utt.mel.shape[1] == LJ.n_mels and utt.alignment.shape[0] == -(-utt.mel.shape[0] // tts.model.reduction_factor)
        assert torch.isfinite(utt.wav).all() and utt.wav.std() > 0


def test_convert_with_postnet_and_wavenet(chain, tmp_path: Path):
    src = chain["arctic"] / "cmu_us_bdl_arctic" / "wav"
    out = tmp_path / "converted"
    main(["convert", "--vc", str(chain["vc"]), "--postnet", str(chain["postnet"]), "--vocoder", str(chain["wavenet"]),
          "--wav", str(src / "arctic_a0001.wav"), "--out", str(out), "--no-progress"])
    (record,) = json.loads((out / "conversions.json").read_text())["files"]
    assert Path(record["wav"]).name == "arctic_a0001.wav"
    _check_wav(Path(record["wav"]), record["frames"], LJ.hop_length, exact=True)


def _error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_every_stage_mismatch_is_one_clear_error(chain, tmp_path: Path, capsys):
    out = str(tmp_path / "x")
    wavs = str(chain["arctic"] / "cmu_us_bdl_arctic" / "wav")
    # a vocoder trained at another sample rate / hop, after TTS and after VC
    err = _error(capsys, ["synthesize", "--tts", str(chain["tacotron2"]), "--vocoder", str(chain["wavenet_16k"]),
                          "--text", "Hello.", "--out", out])
    assert "sample_rate 22050 vs 16000" in err and "hop_length 256 vs 200" in err and "text-to-speech" in err
    err = _error(capsys, ["convert", "--vc", str(chain["vc"]), "--vocoder", str(chain["wavenet_16k"]),
                          "--wav", wavs, "--out", out])
    assert "voice-conversion" in err and "sample_rate 22050 vs 16000" in err
    # a checkpoint of the wrong kind in each slot
    err = _error(capsys, ["synthesize", "--tts", str(chain["wavenet"]), "--text", "Hello.", "--out", out])
    assert "WaveNetVocoder" in err and "Tacotron" in err
    err = _error(capsys, ["synthesize", "--tts", str(chain["tacotron2"]), "--postnet", str(chain["tacotron"]),
                          "--text", "Hello.", "--out", out])
    assert "post-net" in err and "zoo.models.tacotron.Tacotron" in err
    err = _error(capsys, ["convert", "--vc", str(chain["vc"]), "--vocoder", str(chain["postnet"]),
                          "--wav", wavs, "--out", out])
    assert "vocoder" in err and "Pix2PixPostnet" in err
    err = _error(capsys, ["convert", "--vc", str(chain["tacotron2"]), "--wav", wavs, "--out", out])
    assert "Tacotron2" in err and "VoiceConversion" in err
    # text with no character the model knows, and a missing text file
    err = _error(capsys, ["synthesize", "--tts", str(chain["tacotron2"]), "--text", "世界", "--out", out])
    assert "no character" in err
    err = _error(capsys, ["synthesize", "--tts", str(chain["tacotron2"]), "--text-file", str(tmp_path / "none.txt"),
                          "--out", out])
    assert "does not exist" in err
    assert not Path(out).exists()  # nothing written by a refused chain


def test_reproduce_postnet_on_an_upstream_models_outputs(chain, tmp_path: Path):
    from datamodules.postnet import read_pairs_index

    out = tmp_path / "pn"
    main(["reproduce", "postnet", "--preset", "tiny", "--upstream", str(chain["vc"]), "--arctic-root", str(chain["arctic"]),
          "--split", "seeded", "--out", str(out), "--data-root", str(tmp_path / "data"), "--eval-workers", "1",
          "--lambda-adversarial", "0.1", "--lambda-gv", "2"])
    rows = read_pairs_index(out / "pairs")
    assert {r[3] for r in rows} == {"train", "val"}  # the corpus split, fixed in the index
    for utt_id, inp, tgt, _ in rows:
        assert np.load(out / "pairs" / inp).shape == np.load(out / "pairs" / tgt).shape  # frame-aligned with the truth
    report = json.loads((out / "report.json").read_text())
    assert report["upstream"] == str(chain["vc"]) and report["discriminator"]["receptive_field"] == 34
    assert report["generator"] == {"lambda_l1": 100.0, "lambda_adversarial": 0.1, "lambda_gv": 2.0, "residual": True}
    assert set(report["free_running"]) == {"target_natural", "target_copy_synthesis", "converted", "converted_postnet"}
    for key in ("gv_gap_at_most_half_the_input", "l1_no_worse_than_input", "mcd_no_worse"):
        assert isinstance(report["criteria"][key], bool)
    assert sorted(p.name for p in (out / "wavs" / "converted_postnet").glob("*.wav"))
    assert "Free-running dev conversions" in (out / "report.md").read_text()


def test_cli_predict_writes_through_the_one_prediction_writer(chain, tmp_path: Path):
    """``python -m zoo predict`` on a trained checkpoint: the model returns its predictions and the callback the CLI
    adds writes wav, alignment figure and mel per prompt (no model carries an output folder of its own)."""
    out = tmp_path / "pred"
    main(["predict", "--config", str(ROOT / "configs" / "tacotron2.yaml"), *tiny("tacotron2"), *_TTS_FAST,
          "--ckpt_path", str(chain["tacotron2"]), "--data", "datamodules.text_prompts.TextPromptDataModule",
          "--data.texts", '["Hello world.", "A second one."]', "--trainer.logger", "false", "--trainer.callbacks", "[]",
          "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
          "--trainer.default_root_dir", str(out)])
    folder = out / "predictions"
    for utt_id in ("prompt000", "prompt001"):
        mel = np.load(folder / "mels" / f"{utt_id}.npy")
        assert mel.shape[1] == LJ.n_mels and 1 <= mel.shape[0] <= 24
        assert (folder / f"{utt_id}.png").is_file()
        _check_wav(folder / f"{utt_id}.wav", mel.shape[0], LJ.hop_length, exact=False)
