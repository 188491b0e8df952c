"""Voice conversion with attention distillation: the pyramid encoder, the distillation loss, MCD, the experiment
(frozen teacher, init_from) and the reproduce chain on its tiny preset."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.batches import ParallelBatch, SpeechBatch
from zoo.audio import AudioConfig
from zoo.errors import CheckpointError
from zoo.losses.distillation import attention_distillation_loss
from zoo.metrics.mel_distance import dtw_path, mel_cepstral_distance_proxy, normalized_mel_to_log_amplitude
from zoo.checkpoints import load_net_weights
from zoo.models.vc import VCTrainingConfig, VoiceConversion, distill_weight_at
from zoo.nn.tacotron_blocks import PostnetConfig
from zoo.nn.vc import VC_DECODER, PyramidalBLSTMEncoder, PyramidalEncoderConfig, Seq2SeqVC, Seq2SeqVCConfig, pyramid_lengths

N_MELS = 6
AUDIO = AudioConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=128, n_mels=N_MELS, fmax=4000.0)
TINY_DECODER = dataclasses.replace(VC_DECODER, prenet_sizes=(8, 8), attention_rnn_dim=8, decoder_rnn_dims=(8,),
                                   attention_dim=8, attention_filters=2, attention_kernel_size=3)


def _net(encoder_hidden: int = 4, reduction_factor: int = 2, postnet_channels: int = 0) -> Seq2SeqVCConfig:
    """A tiny voice-conversion network: the one place the tests size it."""
    return Seq2SeqVCConfig(
        encoder=PyramidalEncoderConfig(hidden=encoder_hidden, pyramid_layers=2),
        decoder=dataclasses.replace(TINY_DECODER, reduction_factor=reduction_factor),
        postnet=PostnetConfig(channels=postnet_channels, n_convs=2),
    )


def _vc(net: Seq2SeqVCConfig | None = None, **training) -> VoiceConversion:
    return VoiceConversion(audio=AUDIO, net=net or _net(), training=VCTrainingConfig(**training))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --- attention distillation loss --------------------------------------------------------------------------------


def test_attention_ce_hand_computed_and_ignores_padding():
    # utterance 0: 2 decoder steps over 3 encoder steps; utterance 1: 1 decoder step over 2 encoder steps
    teacher = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                            [[0.5, 0.5, 0.7], [0.0, 0.0, 1.0]]])  # padded cells of utterance 1 hold junk
    student = torch.tensor([[[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]],
                            [[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]]], requires_grad=True)
    dec, enc = torch.tensor([2, 1]), torch.tensor([3, 2])
    loss = attention_distillation_loss(teacher, student, dec, enc, eps=1e-12)
    # -log 0.5 twice, then -(0.5 log 0.25 + 0.5 log 0.75); averaged over the 3 valid decoder steps
    expected = (2 * math.log(2.0) - 0.5 * math.log(0.25) - 0.5 * math.log(0.75)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert student.grad[1, 1].abs().sum() == 0 and student.grad[1, 0, 2] == 0  # padded cells get no gradient
    # changing what sits in padded cells changes nothing
    teacher2, student2 = teacher.clone(), student.detach().clone()
    teacher2[1, 1] = torch.tensor([0.3, 0.3, 0.4])
    student2[1, 0, 2] = 0.9
    assert attention_distillation_loss(teacher2, student2, dec, enc, eps=1e-12).item() == pytest.approx(expected, rel=1e-6)


def test_attention_ce_is_minimal_when_student_equals_teacher_and_checks_shapes():
    p = torch.softmax(torch.randn(2, 4, 5), dim=-1)
    lengths_dec, lengths_enc = torch.tensor([4, 4]), torch.tensor([5, 5])
    entropy = attention_distillation_loss(p, p, lengths_dec, lengths_enc)
    other = attention_distillation_loss(p, torch.softmax(torch.randn(2, 4, 5), dim=-1), lengths_dec, lengths_enc)
    assert entropy < other
    with pytest.raises(ValueError, match="same shape"):
        attention_distillation_loss(p, p[:, :3], lengths_dec, lengths_enc)


def test_distill_weight_schedules():
    assert distill_weight_at(2.0, "constant", None, 7.5) == 2.0
    assert distill_weight_at(2.0, "step", 3, 2.9) == 2.0 and distill_weight_at(2.0, "step", 3, 3.0) == 0.0
    assert distill_weight_at(2.0, "linear", 4, 1.0) == pytest.approx(1.5) and distill_weight_at(2.0, "linear", 4, 5) == 0


# --- pyramid encoder --------------------------------------------------------------------------------------------


def test_pyramid_lengths_round_odd_lengths_up():
    assert pyramid_lengths(torch.tensor([7, 5, 4, 1]), 1).tolist() == [4, 3, 2, 1]
    assert pyramid_lengths(torch.tensor([7, 5, 4, 1]), 2).tolist() == [2, 2, 1, 1]
    assert pyramid_lengths(torch.tensor([9]), 3).tolist() == [2]


def test_pyramid_encoder_odd_lengths_masks_and_padding_invariance():
    enc = PyramidalBLSTMEncoder(N_MELS, hidden=4, n_pyramid_layers=2).eval()
    lengths = torch.tensor([7, 5, 1])
    x = torch.randn(3, 7, N_MELS)
    x = x.masked_fill(torch.arange(7)[None, :, None] >= lengths[:, None, None], 0.0)
    out, out_lengths = enc(x, lengths)
    assert out.shape == (3, 2, 8) and enc.downsampling == 4
    assert out_lengths.tolist() == [2, 2, 1]
    assert out[2, 1].abs().sum() == 0  # past the (downsampled) length: zeros
    assert out[2, 0].abs().sum() > 0
    # padding does not leak: an utterance encoded alone equals it inside the padded batch
    alone, alone_lengths = enc(x[1:2, :5], lengths[1:2])
    assert alone_lengths.tolist() == [2]
    torch.testing.assert_close(alone[0], out[1, :2])
    out.sum().backward()
    with pytest.raises(ValueError, match="lengths must lie"):
        enc(x, torch.tensor([8, 5, 1]))


def test_seq2seq_vc_shapes_and_inference():
    net = Seq2SeqVC(N_MELS, _net(postnet_channels=4))
    src, tgt = torch.rand(2, 11, N_MELS), torch.rand(2, 9, N_MELS)
    out = net(src, torch.tensor([11, 6]), tgt, torch.tensor([9, 5]))
    assert out.mel.shape == out.mel_postnet.shape == (2, 9, N_MELS)
    assert out.alignments.shape == (2, 5, 3) and out.memory_lengths.tolist() == [3, 2]
    assert out.alignments[1, :, 2].abs().sum() == 0  # padded encoder step gets no attention
    (out.mel_postnet.sum() + out.stop_logits.sum()).backward()
    inf = net.eval().infer(src, torch.tensor([11, 6]), max_frames=8)
    assert inf.mel.shape[1] <= 8 and inf.lengths.shape == (2,)


# --- MCD --------------------------------------------------------------------------------------------------------


def test_dtw_path_hand_computed():
    cost = np.array([[0.0, 5.0, 5.0], [0.0, 5.0, 5.0], [5.0, 0.0, 5.0], [5.0, 5.0, 0.0]])
    assert dtw_path(cost) == [(0, 0), (1, 0), (2, 1), (3, 2)]


def test_mel_cd_proxy_hand_computed_c0_excluded_and_time_warped():
    w = math.pi / N_MELS * (torch.arange(N_MELS, dtype=torch.float64) + 0.5)
    a = torch.zeros(1, N_MELS, dtype=torch.float64)
    b = (0.5 * torch.cos(w)).unsqueeze(0)  # the log-mel whose cepstrum is c1 = 0.5 (SPTK's convention), others 0
    assert mel_cepstral_distance_proxy(a, b) == pytest.approx(10 / math.log(10) * math.sqrt(2) * 0.5)
    assert mel_cepstral_distance_proxy(b + 3.0, b) == pytest.approx(0.0, abs=1e-9)  # a level offset is c0 only
    assert mel_cepstral_distance_proxy(b.repeat(3, 1), b) == pytest.approx(0.0, abs=1e-9)  # slower but same: DTW
    mel = torch.tensor([[0.0, 1.0]])
    log_amp = normalized_mel_to_log_amplitude(mel, AUDIO)
    assert log_amp.tolist()[0] == pytest.approx([(AUDIO.min_db + AUDIO.ref_db) * math.log(10) / 20,
                                                 AUDIO.ref_db * math.log(10) / 20])


# --- the experiment ---------------------------------------------------------------------------------------------


def _batch(b: int = 2) -> ParallelBatch:
    return ParallelBatch(ids=[f"u{i}" for i in range(b)], src_mel=torch.rand(b, 11, N_MELS),
                         src_lengths=torch.tensor([11, 7][:b]), tgt_mel=torch.rand(b, 9, N_MELS),
                         tgt_lengths=torch.tensor([9, 6][:b]), text=torch.ones(b, 3, dtype=torch.long),
                         text_lengths=torch.tensor([3, 3][:b]))


def _save(model: VoiceConversion, path: Path) -> Path:
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def test_teacher_is_frozen_in_eval_and_outside_the_student(tmp_path: Path):
    teacher_ckpt = _save(_vc(_net(encoder_hidden=8)), tmp_path / "teacher.ckpt")
    student = _vc(teacher_checkpoint=str(teacher_ckpt), distill_weight=1.0)
    student.setup("fit")
    teacher = student.teacher
    assert teacher is not None and not teacher.training
    assert not any(k.startswith("_teacher") or "teacher" in k for k in student.state_dict())
    assert {id(p) for p in student.parameters()}.isdisjoint(id(p) for p in teacher.parameters())
    student.train()  # Lightning's train() on the student must not reach the teacher
    assert not teacher.training
    batch = _batch()
    out = student.net(batch.src_mel, batch.src_lengths, batch.tgt_mel, batch.tgt_lengths)
    losses = student._losses(out, batch, "train")
    assert "attention_ce" in losses and losses["attention_ce"] > 0
    losses["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(not p.requires_grad for p in teacher.parameters())
    assert student.net.encoder.bottom.rnn.weight_ih_l0.grad is not None
    assert not teacher.training
    # the optimiser sees the student only
    opt = student.configure_optimizers()
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in student.parameters())


def test_output_distillation_adds_the_weighted_frame_loss_against_the_teachers_frames(tmp_path: Path):
    teacher_ckpt = _save(_vc(_net(encoder_hidden=8, postnet_channels=4)), tmp_path / "teacher.ckpt")
    batch = _batch()
    plain = _vc(_net(postnet_channels=4), teacher_checkpoint=str(teacher_ckpt), distill_weight=1.0)
    taught = _vc(_net(postnet_channels=4), teacher_checkpoint=str(teacher_ckpt), distill_weight=1.0,
                 distill_output_weight=0.5)
    taught.net.load_state_dict(plain.net.state_dict())
    for model in (plain, taught):
        model.setup("fit")
    out = taught.net(batch.src_mel, batch.src_lengths, batch.tgt_mel, batch.tgt_lengths)
    losses = {}
    for name, model in (("without", plain), ("with", taught)):
        torch.manual_seed(1)  # the teacher's pre-net keeps its dropout on (Tacotron 2): the same draw each time
        losses[name] = model._losses(out, batch, "train")
    without, with_outputs = losses["without"], losses["with"]
    assert "output_distillation" not in without
    # by hand: the L1 of both student outputs against the teacher's post-net frames over the valid frames only
    torch.manual_seed(1)
    frames = taught.teacher(batch.src_mel, batch.src_lengths, batch.tgt_mel, batch.tgt_lengths).mel_postnet
    expected = 0.0
    for pred in (out.mel, out.mel_postnet):
        expected += sum((pred[i, :n] - frames[i, :n]).abs().sum() for i, n in enumerate(batch.tgt_lengths.tolist())) / (
            int(batch.tgt_lengths.sum()) * N_MELS)
    expected = float(expected.detach())
    assert with_outputs["output_distillation"].item() == pytest.approx(expected, rel=1e-5)
    assert (with_outputs["loss"] - without["loss"]).item() == pytest.approx(0.5 * expected, rel=1e-4)
    with_outputs["loss"].backward()
    assert all(p.grad is None for p in taught.teacher.parameters())
    # output distillation alone also reads the teacher, and needs one
    assert _vc(teacher_checkpoint=str(teacher_ckpt), distill_output_weight=1.0).training_config.distils
    with pytest.raises(ValueError, match="distill_output_weight > 0 needs a teacher"):
        _vc(distill_output_weight=1.0)
    with pytest.raises(ValueError, match="distill_output_weight"):
        _vc(teacher_checkpoint=str(teacher_ckpt), distill_output_weight=-1.0)


def test_missing_or_mismatched_teacher_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="needs a teacher"):
        _vc(distill_weight=1.0)
    student = _vc(teacher_checkpoint=str(tmp_path / "nope.ckpt"), distill_weight=1.0)
    with pytest.raises(CheckpointError, match="nope.ckpt"):
        student.setup("fit")
    other_r = _save(_vc(_net(reduction_factor=3)), tmp_path / "r3.ckpt")
    student = _vc(teacher_checkpoint=str(other_r), distill_weight=1.0)
    with pytest.raises(CheckpointError, match="reduction factor 3"):
        student.setup("fit")


def test_init_from_loads_weights_and_mismatch_names_file_and_keys(tmp_path: Path):
    source = _vc()
    ckpt = _save(source, tmp_path / "pretrain.ckpt")
    model = _vc(init_from=str(ckpt))
    model.setup("fit")
    for (k, a), b in zip(source.net.state_dict().items(), model.net.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    bigger = _vc(_net(encoder_hidden=6), init_from=str(ckpt))
    with pytest.raises(CheckpointError, match=r"pretrain\.ckpt does not match.*different shapes.*encoder\.bottom\.rnn\.\w+: checkpoint \(\d+(, \d+)?,?\) vs model"):
        bigger.setup("fit")
    with_postnet = _vc(_net(postnet_channels=4))
    with pytest.raises(CheckpointError, match="missing from the checkpoint.*postnet"):
        load_net_weights(with_postnet.net, ckpt)


def test_autoencoder_batches_and_validation_figures():
    model = _vc(mcd_max_utterances=1, max_decoder_frames=12)
    mel = torch.rand(2, 9, N_MELS)
    speech = SpeechBatch(ids=["a", "b"], text=torch.ones(2, 3, dtype=torch.long), text_lengths=torch.tensor([3, 3]),
                         mel=mel, mel_lengths=torch.tensor([9, 5]))
    out = model.net(mel, speech.mel_lengths, mel, speech.mel_lengths)
    assert set(model._losses(out, speech, "train")) == {"mel", "stop", "loss"}
    mcd, ratio = model.conversion_figures(mel, speech.mel_lengths, mel, speech.mel_lengths)
    assert mcd > 0 and 0 < ratio <= 2.0 + 1e-6
    sample = model.media_sample(_batch())
    assert sample.alignments.shape == (2, 5, 3)


def test_previous_step_copy_by_hand_and_logged_beside_the_frame_loss():
    from zoo.losses.tacotron import masked_spectrogram_loss
    from zoo.metrics.spectral import previous_step_copy

    target = torch.arange(1.0, 8.0).view(1, 7, 1)  # frames 1..7, one bin
    # r = 3: steps [1 2 3] [4 5 6] [7]; fed: go frame 0, then frame 3, then frame 6
    assert previous_step_copy(target, 3).flatten().tolist() == [0, 0, 0, 3, 3, 3, 6]
    assert previous_step_copy(target, 1).flatten().tolist() == [0, 1, 2, 3, 4, 5, 6]
    # L1 over the first 5 valid frames: |1| + |2| + |3| + |4-3| + |5-3| = 9, / 5
    loss = masked_spectrogram_loss(previous_step_copy(target, 3), target, torch.tensor([5]))
    assert loss.item() == pytest.approx(9 / 5)
    with pytest.raises(ValueError, match="reduction_factor"):
        previous_step_copy(target, 0)
    model = _vc()
    logged = {}
    model.log_dict = lambda logs, **kw: logged.update(logs)  # type: ignore[method-assign]
    model._common_step(_batch(), "val")
    assert {"val/mel", "val/mel_previous_step_copy"} <= set(logged)


def test_predict_writes_wav_and_alignment(tmp_path: Path):
    from zoo.media import write_prediction

    model = _vc(max_decoder_frames=10).eval()
    results = [write_prediction(tmp_path, p) for p in model.predict_step(_batch(), 0)]
    assert [r["id"] for r in results] == ["u0", "u1"]
    assert (tmp_path / "u0.wav").is_file() and (tmp_path / "u1.png").is_file()


# --- the reproduction, end to end -------------------------------------------------------------------------------


def test_reproduce_chain_tiny_preset_then_convert_a_folder(tmp_path: Path):
    import shutil

    from zoo.cli import main
    from zoo.reproduce_vc import ROWS, students_side_by_side

    out = tmp_path / "report"
    main(["reproduce", "attention-distillation", "--preset", "tiny", "--out", str(out), "--data-root",
          str(tmp_path / "data"), "--no-wandb"])
    report = json.loads((out / "report.json").read_text())
    for name in ("distilled", "baseline"):
        figures = report["students"][name]
        for key in ("diagonality_epoch0", "focus_rate_epoch0", "diagonality", "focus_rate", "cd_proxy_db"):
            assert 0.0 <= figures[key] < 100.0, (name, key)
        assert figures["probe_steps"], "no alignment probe inside epoch 0"
    assert report["students"]["distilled"]["steps"] == report["students"]["baseline"]["steps"]
    # on a CPU with two cores (CI's) the students trained at once, one process each, and the report says so
    assert report["students_side_by_side"] == students_side_by_side()
    assert ("side by side" in (out / "report.md").read_text()) == report["students_side_by_side"]
    rows = report["rows"]
    assert list(rows) == list(ROWS)
    assert rows["target_natural"]["mcd_db"] == pytest.approx(0.0, abs=1e-9)  # the metric's floor
    for name in ROWS[1:]:
        assert math.isfinite(rows[name]["mcd_db"]) and rows[name]["mcd_db"] > 0, name
        assert 0.0 <= rows[name]["wer"] and 1.0 <= rows[name]["dnsmos_ovrl"] <= 5.0, name
    assert rows["distilled"]["checkpoint"].endswith("distilled/checkpoints/last.ckpt")
    assert rows["target_natural"]["checkpoint"] is None
    # no WORLD vocoder stage on the embedded corpora: Griffin-Lim, recorded for every synthesised row
    assert report["vocoder"] == "griffin-lim" and rows["distilled"]["vocoder"] == rows["mean_frame"]["vocoder"] == "griffin-lim"
    assert rows["target_natural"]["vocoder"] is None and rows["target_world_resynthesis"]["vocoder"] is None
    # what resynthesis alone costs: the natural target through WORLD with its own F0, saved beside the other rows
    assert rows["target_world_resynthesis"]["mcd_db"] < rows["mean_frame"]["mcd_db"]
    dev_ids = [u["id"] for u in json.loads((out / "utterances.json").read_text())["distilled"]]
    assert dev_ids and all((out / "wavs" / row / f"{i}.wav").is_file()
                           for i in dev_ids for row in ("distilled", "target_world_resynthesis"))
    assert (out / "alignments.png").is_file() and (out / "diagonality_vs_step.png").is_file()
    assert "| distilled: " in (out / "report.md").read_text()
    distilled_args = (out / "distilled" / "overrides.yaml").read_text()
    assert "teacher_checkpoint" in distilled_args and "distill_weight: 1.0" in distilled_args

    # a folder of source wavs converted by the distilled student: outputs named like their sources
    sources = tmp_path / "sources"
    sources.mkdir()
    for wav in sorted((tmp_path / "data" / "embedded" / "cmu_arctic" / "cmu_us_bdl_arctic" / "wav").glob("*.wav"))[:3]:
        shutil.copy(wav, sources / wav.name)
    converted = tmp_path / "converted"
    main(["convert", "--vc", rows["distilled"]["checkpoint"], "--wav", str(sources), "--out", str(converted),
          "--no-progress"])
    names = sorted(p.stem for p in sources.glob("*.wav"))
    assert sorted(p.stem for p in converted.glob("*.wav")) == names
    assert sorted(p.stem for p in converted.glob("*.png")) == names
    record = json.loads((converted / "conversions.json").read_text())
    assert record["checkpoint"] == rows["distilled"]["checkpoint"] and len(record["files"]) == 3
    # ... and scored against the natural target speaker
    main(["score", "--converted", str(converted), "--arctic-root", str(tmp_path / "data" / "embedded" / "cmu_arctic"),
          "--workers", "1"])
    scores = json.loads((converted / "scores.json").read_text())
    assert scores["n"] == 3 and math.isfinite(scores["mcd_db"]) and sorted(u["id"] for u in scores["utterances"]) == names
    # reusing every trained stage rescores without training again
    report2 = main(["reproduce", "attention-distillation", "--preset", "tiny", "--out", str(out), "--data-root",
                    str(tmp_path / "data"), "--no-wandb", "--reuse"])
    again = json.loads((out / "report.json").read_text())
    assert again["train_seconds"] == dict.fromkeys(again["train_seconds"], 0.0) and report2 is None
    assert again["rows"]["distilled"]["mcd_db"] == pytest.approx(rows["distilled"]["mcd_db"])
    # a stage trained again retrains the stages that read its checkpoint (the distilled student reads the teacher's),
    # and only those: here the teacher's saved settings differ from this run's, so it trains again
    import yaml

    saved = yaml.safe_load((out / "teacher" / "overrides.yaml").read_text())
    saved["trainer"]["max_steps"] = 999
    (out / "teacher" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    main(["reproduce", "attention-distillation", "--preset", "tiny", "--out", str(out), "--data-root",
          str(tmp_path / "data"), "--no-wandb", "--reuse", "--eval-utterances", "1"])
    third = json.loads((out / "report.json").read_text())["train_seconds"]
    assert third["teacher_pretrain"] == third["baseline"] == 0.0 and third["teacher"] > 0 and third["distilled"] > 0


def test_dev_evaluation_through_a_world_vocoder(tmp_path: Path):
    """The real and paper presets' vocoder stage and dev evaluation: the converters' ground-truth-aligned predictions
    under one index, a WORLD vocoder trained on them, and every synthesised row through it, recorded as such (a tiny
    16 kHz converter and a few steps' vocoder on the embedded corpus; the converter stands in for every converter)."""
    from zoo.cli import main
    from zoo.reproduce_vc import ROWS, evaluate_dev

    audio = {"sample_rate": 16000, "n_fft": 1024, "win_length": 800, "hop_length": 320, "n_mels": 16, "fmax": 8000.0}
    data = {"root": str(tmp_path / "data"), "source": "embedded", "embedded_size": 20, "split": "seeded",
            "val_size": 2, "test_size": 2, "audio": audio}
    audio_args = [a for k, v in audio.items() for a in (f"--data.init_args.audio.{k}", str(v))]
    common = ["--data.init_args.root", data["root"], "--data.init_args.source", "embedded", "--data.init_args.embedded_size",
              "20", "--data.init_args.split", "seeded", *audio_args, "--trainer.max_steps", "2", "--trainer.logger", "false",
              "--trainer.enable_progress_bar", "false"]
    main(["fit", "--config", "configs/vc_teacher.yaml", "--config", "configs/presets/vc_teacher/tiny.yaml", *common,
          "--trainer.default_root_dir", str(tmp_path / "vc")])
    converter = next((tmp_path / "vc").rglob("*.ckpt"))
    # the vocoder stage's inputs: each converter's ground-truth-aligned predictions under one index
    from zoo.reproduce_vc import dump_converters

    predictions = tmp_path / "gta_predictions"
    counts = dump_converters({"teacher": converter, "distilled": converter}, str(tmp_path / "data" / "embedded"),
                             str(tmp_path / "data"), predictions, split="seeded")
    index = (predictions / "index.tsv").read_text().splitlines()
    assert counts["teacher"] == counts["distilled"] == len(index) // 2 >= 10
    assert index[1].split("\t")[1].startswith("teacher/inputs/") and index[-1].split("\t")[1].startswith("distilled/")
    main(["fit", "--config", "configs/world_vocoder.yaml", *common, "--data.init_args.val_size", "2",
          "--data.init_args.test_size", "2", "--data.init_args.crop_frames", "8", "--data.init_args.batch_size", "4",
          "--data.init_args.workers", "1", "--data.init_args.pairs_dir", str(predictions),
          "--model.init_args.net.channels", "8", "--model.init_args.net.layers", "1",
          "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1", "--trainer.default_root_dir",
          str(tmp_path / "vocoder")])
    vocoder = next((tmp_path / "vocoder").rglob("*.ckpt"))
    checkpoints = {"teacher": converter, "distilled": converter, "baseline": converter, "vocoder": vocoder}
    out = tmp_path / "eval"
    rows = evaluate_dev(out, {"data": {"init_args": data}}, checkpoints, n_utterances=2, workers=1)
    assert list(rows) == list(ROWS)
    for name in ("target_copy_synthesis", "mean_frame", "teacher", "distilled", "baseline"):
        assert rows[name]["vocoder"] == str(vocoder) and rows[name]["n"] == 2, name
        assert math.isfinite(rows[name]["mcd_db"]) and rows[name]["mcd_db"] > 0, name
        assert len(list((out / "wavs" / name).glob("*.wav"))) == 2, name
    assert rows["target_natural"]["vocoder"] is None and rows["distilled"]["checkpoint"] == str(converter)
    # WORLD codes no aperiodicity band below 12 kHz: an 8 kHz vocoder is a clear error, not a crash inside WORLD
    from zoo.audio import AudioConfig
    from zoo.models.world_vocoder import WorldVocoder

    with pytest.raises(ValueError, match="at least 12000 Hz"):
        WorldVocoder(audio=AudioConfig(sample_rate=8000, n_fft=512, win_length=400, hop_length=100, fmax=4000.0))


def test_convert_refuses_other_checkpoints_and_missing_inputs(tmp_path: Path, capsys):
    from zoo.cli import main

    ckpt = tmp_path / "vae.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "zoo.models.vae.VAE"}}, ckpt)
    wav_dir = tmp_path / "wavs"
    wav_dir.mkdir()
    import soundfile as sf

    sf.write(wav_dir / "a.wav", np.zeros(800, dtype=np.float32), 8000)
    for args, message in (
        (["--vc", str(ckpt), "--wav", str(wav_dir)], "was written by zoo.models.vae.VAE"),
        (["--vc", str(tmp_path / "nope.ckpt"), "--wav", str(wav_dir)], "does not exist"),
        (["--vc", str(ckpt), "--wav", str(tmp_path / "missing")], "does not exist"),
        (["--vc", str(ckpt), "--wav", str(tmp_path)], "holds no .wav file"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["convert", *args, "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_real_preset_stages_and_their_configs(tmp_path: Path):
    """The real preset: the teacher pretrains as an autoencoder on both ARCTIC speakers' training prompts (after an
    LJSpeech stage when LJSpeech is under the data root), every ARCTIC stage on the standard split at 16 kHz."""
    from zoo.reproduce_vc import _stage_overrides, load_presets, stages

    presets = load_presets("real")
    # its converters predict WORLD parameters, synthesised by WORLD: no vocoder stage; with mel targets it has one
    assert stages(presets, str(tmp_path)) == ("teacher_pretrain", "teacher", "distilled", "baseline")
    assert all(presets[s]["data"]["init_args"]["target_features"] == "world" for s in ("teacher", "distilled"))
    assert "target_features" not in presets["teacher_pretrain"]["data"]["init_args"]  # the autoencoder: mels
    from zoo.reproduce_common import merge_configs

    mel = {**presets, "distilled": merge_configs(presets["distilled"], {"data": {"init_args": {"target_features": "mel"}}})}
    assert stages(mel, str(tmp_path)) == ("teacher_pretrain", "teacher", "distilled", "baseline", "vocoder")
    assert "vocoder" not in stages(load_presets("demo"), str(tmp_path))  # Griffin-Lim alone on the embedded corpora
    (tmp_path / "LJSpeech-1.1").mkdir()
    (tmp_path / "LJSpeech-1.1" / "metadata.csv").write_text("LJ001-0001|a|a\n")
    assert stages(presets, str(tmp_path))[0] == "teacher_pretrain_lj"
    assert stages(load_presets("demo"), str(tmp_path))[0] == "teacher_pretrain"  # demo pretrains on LJSpeech itself
    arctic = str(tmp_path / "arctic")
    pre = _stage_overrides("teacher_pretrain", presets["teacher_pretrain"], tmp_path, str(tmp_path), arctic, None,
                           tmp_path / "lj.ckpt", False)
    assert pre["data"]["class_path"] == "datamodules.CMUArcticDataModule"
    assert pre["data"]["init_args"]["mode"] == "pooled" and pre["data"]["init_args"]["split"] == "standard"
    assert pre["data"]["init_args"]["audio"]["sample_rate"] == 16000 and pre["data"]["init_args"]["audio"]["n_mels"] == 80
    assert pre["model"]["init_args"]["training"]["init_from"] == str(tmp_path / "lj.ckpt")
    lj = _stage_overrides("teacher_pretrain_lj", presets["teacher_pretrain_lj"], tmp_path, str(tmp_path), arctic, None,
                          None, False)
    assert "class_path" not in lj["data"] and lj["data"]["init_args"]["source"] == "real"  # the LJSpeech config's
    assert lj["data"]["init_args"]["root"] == str(tmp_path)  # LJSpeech from the data root, not the ARCTIC folder
    student = _stage_overrides("distilled", presets["distilled"], tmp_path, str(tmp_path), arctic, tmp_path / "t.ckpt",
                               None, False)
    args = student["data"]["init_args"]
    assert args["split"] == "standard" and args["root"] == arctic and args["batch_size"] == 4
    assert student["model"]["init_args"]["training"]["teacher_checkpoint"] == str(tmp_path / "t.ckpt")
    baseline = _stage_overrides("baseline", presets["baseline"], tmp_path, str(tmp_path), arctic, tmp_path / "t.ckpt",
                                None, False)["model"]["init_args"]["training"]
    assert baseline["distill_weight"] == 0.0 and baseline["teacher_checkpoint"] is None
    # the WORLD vocoder: real slt on the standard split at the converters' front end, their predictions as inputs
    vocoder = _stage_overrides("vocoder", presets["vocoder"], tmp_path, str(tmp_path), arctic, tmp_path / "t.ckpt",
                               None, False)["data"]["init_args"]
    assert vocoder["root"] == arctic and vocoder["source"] == "real" and vocoder["split"] == "standard"
    assert vocoder["pairs_dir"] == str(tmp_path / "gta_predictions") and vocoder["speaker"] == "slt"
    assert vocoder["audio"] == presets["distilled"]["data"]["init_args"]["audio"]
    # --student-epochs rescales the decaying distillation weight's epochs with the students' epochs
    rescaled = load_presets("real", student_epochs=20)["distilled"]  # the preset's fraction 0.15: 3 of 20 epochs
    assert rescaled["trainer"]["max_epochs"] == 20 and rescaled["model"]["init_args"]["training"]["distill_epochs"] == 3
    preset = load_presets("real")["distilled"]  # the fraction is the preset's own distill_epochs / max_epochs
    assert round(preset["reproduce"]["distill_decay_fraction"] * preset["trainer"]["max_epochs"]) == (
        preset["model"]["init_args"]["training"]["distill_epochs"])


def test_stop_after_names_a_stage(tmp_path: Path):
    from zoo.reproduce_vc import run

    with pytest.raises(ValueError, match="stop_after"):
        run("tiny", tmp_path, stop_after="students")
    with pytest.raises(ValueError, match="no vocoder stage"):  # only the real-speech presets train a WORLD vocoder
        run("tiny", tmp_path, stop_after="vocoder")


def test_stages_side_by_side_name_the_stage_that_failed(tmp_path: Path, capfd):
    from zoo.reproduce_common import CONFIG_DIR, fit_stages_side_by_side

    bad = {"model": {"init_args": {"training": {"distill_weight": -1.0}}}}
    with pytest.raises(RuntimeError, match="stage bad_student stopped"):
        fit_stages_side_by_side([(CONFIG_DIR / "vc_distill.yaml", bad, tmp_path / "bad_student")])
    assert "distill_weight" in capfd.readouterr().err  # the worker printed the user error's own line
    assert (tmp_path / "bad_student" / "overrides.yaml").is_file()


def test_bench_vc_train_step_runs_the_real_preset_teacher_step():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "vc_train_step.py"
    spec = importlib.util.spec_from_file_location("vc_train_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, batch = module.build(2, frames=(20, 40))
    assert model.net.decoder.reduction_factor == 4 and model.net.encoder.out_dim == 256
    assert batch.src_mel.shape[0] == 2 and int(batch.src_lengths.min()) >= 20
    model.train()
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.net.encoder.parameters())


def test_a_stage_trained_again_sets_its_previous_run_aside(tmp_path, capsys):
    from zoo.reproduce_common import set_aside_previous_run

    run = tmp_path / "distilled"
    assert set_aside_previous_run(run) is None  # nothing there yet
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"old weights")
    aside = set_aside_previous_run(run)
    assert not run.exists() and (aside / "checkpoints" / "last.ckpt").read_bytes() == b"old weights"  # kept, not lost
    assert aside.name.startswith("distilled.replaced-") and str(aside) in capsys.readouterr().err
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"newer weights")
    second = set_aside_previous_run(run)  # within the same second: its own name, the first one untouched
    assert second != aside and (aside / "checkpoints" / "last.ckpt").read_bytes() == b"old weights"


def test_world_parameter_converters_from_training_to_dev_report(tmp_path: Path, capsys):
    """The real and paper presets' converters: a teacher predicting slt's WORLD parameters, fine-tuned from a mel
    autoencoder where shapes agree, a student distilled from it, both scored on dev through WORLD synthesis with the
    copy-synthesis and mean-frame rows in WORLD space; the mel-only stages after them refuse them clearly."""
    from zoo.cli import main
    from zoo.errors import StageMismatchError
    from zoo.models.vc import load_model, load_teacher
    from zoo.pipeline import VoiceConverter
    from zoo.reproduce_vc import ROWS, evaluate_dev
    from zoo.world import world_dim

    audio = {"sample_rate": 16000, "n_fft": 1024, "win_length": 800, "hop_length": 320, "n_mels": 16, "fmax": 8000.0}
    data = {"root": str(tmp_path / "data"), "source": "embedded", "embedded_size": 20, "split": "seeded",
            "val_size": 2, "test_size": 2, "audio": audio, "target_features": "world", "world_workers": 1}
    audio_args = [a for k, v in audio.items() for a in (f"--data.init_args.audio.{k}", str(v))]
    common = ["--data.init_args.root", data["root"], "--data.init_args.source", "embedded", "--data.init_args.embedded_size",
              "20", "--data.init_args.split", "seeded", *audio_args, "--trainer.max_steps", "2", "--trainer.logger", "false",
              "--trainer.enable_progress_bar", "false"]
    teacher_cfg = ["--config", "configs/vc_teacher.yaml", "--config", "configs/presets/vc_teacher/tiny.yaml"]
    main(["fit", *teacher_cfg, *common, "--trainer.default_root_dir", str(tmp_path / "mel")])
    mel_ckpt = next((tmp_path / "mel").rglob("*.ckpt"))
    world = ["--data.init_args.target_features", "world", "--data.init_args.world_workers", "1"]
    main(["fit", *teacher_cfg, *common, *world, "--model.init_args.training.init_from", str(mel_ckpt),
          "--trainer.default_root_dir", str(tmp_path / "teacher")])
    teacher_ckpt = next((tmp_path / "teacher").rglob("*.ckpt"))
    model = load_model(teacher_ckpt)
    assert model.target_features == "world" and model.net.out_dim == world_dim(16000) and bool(model.net.scale_set)
    # every tensor whose shape the mel autoencoder shares came from it (the encoder here; 2 steps barely move it)
    mel_state = torch.load(mel_ckpt, weights_only=True)["state_dict"]
    first = "net.encoder.bottom.rnn.weight_ih_l0"
    assert torch.allclose(torch.load(teacher_ckpt, weights_only=True)["state_dict"][first], mel_state[first], atol=0.05)
    # the student distils from it; a mel student cannot distil from a WORLD teacher (it feeds the teacher its targets)
    student_cfg = ["--config", "configs/vc_distill.yaml", "--config", "configs/presets/vc_distill/tiny.yaml"]
    main(["fit", *student_cfg, *common, *world, "--model.init_args.training.teacher_checkpoint", str(teacher_ckpt),
          "--trainer.default_root_dir", str(tmp_path / "student")])
    student_ckpt = next((tmp_path / "student").rglob("*.ckpt"))
    with pytest.raises(SystemExit):
        main(["fit", *student_cfg, *common, "--model.init_args.training.teacher_checkpoint", str(teacher_ckpt),
              "--trainer.default_root_dir", str(tmp_path / "mel_student")])
    assert "both must predict the same features" in capsys.readouterr().err
    assert load_teacher(teacher_ckpt).out_dim == world_dim(16000)
    # the dev report: every synthesised row through WORLD synthesis
    checkpoints = {"teacher": teacher_ckpt, "distilled": student_ckpt, "baseline": student_ckpt}
    rows = evaluate_dev(tmp_path / "eval", {"data": {"init_args": data}}, checkpoints, n_utterances=2, workers=1)
    assert list(rows) == list(ROWS)
    for name in ("target_copy_synthesis", "mean_frame", "teacher", "distilled", "baseline"):
        assert rows[name]["vocoder"] == "world-synthesis" and rows[name]["n"] == 2, name
        assert math.isfinite(rows[name]["mcd_db"]) and rows[name]["mcd_db"] > 0, name
    # copy-synthesis of the target's own parameters is far closer to it than their mean frame
    assert rows["target_copy_synthesis"]["mcd_db"] < rows["mean_frame"]["mcd_db"] - 1.0
    # the report's alignment figure runs every converter teacher-forced on its own (WORLD) targets
    import shutil

    from zoo.reproduce_vc import _alignment_plots

    chain = tmp_path / "chain"
    for stage, ckpt, names in (("teacher", teacher_ckpt, ("last.ckpt",)), ("distilled", student_ckpt,
                               ("epoch=0-step=2.ckpt", "last.ckpt")), ("baseline", student_ckpt,
                               ("epoch=0-step=2.ckpt", "last.ckpt"))):
        (chain / stage / "checkpoints").mkdir(parents=True)
        for name in names:
            shutil.copy(ckpt, chain / stage / "checkpoints" / name)
    assert _alignment_plots(chain, {"data": {"init_args": data}}) == ["alignments.png"]
    assert (chain / "alignments.png").stat().st_size > 0
    # a WORLD cache built at another hop does not fit the mels: a clear error naming the file, not a silent misalignment
    from datamodules import CMUArcticDataModule
    from zoo.audio import AudioConfig
    from zoo.errors import DatasetFormatError

    dm = CMUArcticDataModule(mode="parallel", **{**data, "audio": AudioConfig(**audio)})
    dm.setup("fit")
    first = dm.datasets["train"].pairs[0][1].id
    cached = dm.world_dir() / f"{first}.npy"
    np.save(cached, np.load(cached)[:-3])
    with pytest.raises(DatasetFormatError, match=f"{first}.npy has .* frames.*another hop"):
        dm.datasets["train"][0]
    cached.unlink()  # and a missing one leaves its pair out with a warning
    # conversion of files: WORLD-synthesised wavs named like their sources; no mel post-net or vocoder after it
    converter = VoiceConverter.from_checkpoint(teacher_ckpt, device="cpu", max_frames=40)
    src_wav = sorted((tmp_path / "data" / "embedded" / "cmu_arctic" / "cmu_us_bdl_arctic" / "wav").glob("*.wav"))[0]
    records = converter.convert_files([src_wav], tmp_path / "converted", progress=False, figures=False)
    assert (tmp_path / "converted" / src_wav.name).is_file() and records[0]["source"] == str(src_wav)
    with pytest.raises(StageMismatchError, match="predicts WORLD parameters"):
        VoiceConverter.from_checkpoint(teacher_ckpt, device="cpu", vocoder=teacher_ckpt)
    from zoo.reproduce_postnet import dump_upstream

    with pytest.raises(StageMismatchError, match="cannot train a mel post-net"):
        dump_upstream(teacher_ckpt, str(tmp_path / "data" / "embedded"), str(tmp_path / "data"), tmp_path / "d")
