"""``reproduce attention-distillation``: voice conversion with attention distillation, the whole chain in one go.

1. teacher pretraining (``configs/vc_teacher_pretrain.yaml``): the large model as an autoencoder, each utterance
   reconstructing itself: on the embedded LJSpeech-layout corpus (``tiny``, ``demo``), or on every training prompt of
   both CMU ARCTIC speakers (``real``, ``paper``; after an LJSpeech stage when ``<data-root>/LJSpeech-1.1`` exists);
2. teacher fine-tuning (``configs/vc_teacher.yaml``) on CMU ARCTIC pairs bdl -> slt, initialised from 1;
3. the small student with attention distillation from 2 (``configs/vc_distill.yaml``);
4. the same student without it (``distill_weight 0``): same seed, data, sizes and steps.

Every stage runs through the zoo CLI from its config plus an override file written beside its results
(``OUT/<stage>/overrides.yaml``, the exact settings). Then every row of the report is converted on the validation
(dev) split, written as wavs (``OUT/wavs/<row>/<id>.wav``) and scored with the field's metrics against the natural
target: natural target and source speech, target copy-synthesis, a mean-frame converter, the teacher and both students
(MCD, F0 RMSE/CORR, DDUR, DNSMOS, WER/CER; ``zoo.evaluation``). ``OUT/report.md`` and ``OUT/report.json`` hold those
figures with the checkpoint behind each row, and per student the teacher-forced focus rate and diagonality at the end
of epoch 0 and at the end, the diagonality every few steps inside epoch 0, and plots of the alignments.

    python -m zoo reproduce attention-distillation --preset demo --out OUT        # embedded corpora, CPU, minutes
    python -m zoo reproduce attention-distillation --preset real --out OUT --arctic-root ../shared/data/cmu_arctic
    python -m zoo reproduce attention-distillation --preset paper --out OUT --arctic-root DIR   # blog sizes, GPU
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from zoo.reproduce_common import AUDIO_16K, fit_stage, natural_16k, read_metrics, stage_datamodule, stage_loggers, wandb_ids

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
STAGES = ("teacher_pretrain", "teacher", "distilled", "baseline")
CONFIGS = {"teacher_pretrain_lj": "vc_teacher_pretrain.yaml", "teacher_pretrain": "vc_teacher_pretrain.yaml", "teacher": "vc_teacher.yaml",
           "distilled": "vc_distill.yaml", "baseline": "vc_distill.yaml"}

_AUDIO_8K = {"sample_rate": 8000, "n_fft": 512, "win_length": 512, "hop_length": 320, "n_mels": 40, "fmax": 4000.0}

_SMALL_ATTENTION = {"attention_dim": 64, "attention_filters": 8, "attention_kernel_size": 15}

# A preset: the AudioConfig, corpus sizes, the teacher's and the student's sizes, and each stage's budget.
PRESETS: dict[str, dict[str, Any]] = {
    # seconds: the test suite runs the whole chain with this one
    "tiny": {
        "audio": {**_AUDIO_8K, "n_mels": 16},
        "lj_size": 20, "arctic_size": 10, "batch_size": 4, "lj_max_frames": None, "distill_weight": 1.0,
        "split": "seeded",
        "teacher": {"encoder_hidden": 16, "attention_rnn_dim": 16, "decoder_rnn_dims": [16], "prenet_sizes": [8, 8],
                    "attention_dim": 8, "attention_filters": 2, "attention_kernel_size": 3, "postnet_channels": 0},
        "student": {"encoder_hidden": 8, "attention_rnn_dim": 8, "decoder_rnn_dims": [8], "prenet_sizes": [8, 8],
                    "attention_dim": 8, "attention_filters": 2, "attention_kernel_size": 3, "postnet_channels": 0},
        "common": {"reduction_factor": 2, "mcd_max_utterances": 2, "probe_every_n_steps": 1},
        "pretrain": {"max_steps": 2, "limit_train_batches": 2}, "finetune": {"max_steps": 2, "limit_train_batches": 2},
        "students": {"max_epochs": 2, "limit_train_batches": 2}, "eval": {"utterances": 1, "workers": 1},
    },
    # <= 15 minutes on a 2-core CPU (docs/results/attention-distillation/)
    "demo": {
        "audio": _AUDIO_8K,
        "lj_size": 200, "arctic_size": 800, "batch_size": 8, "lj_max_frames": 150, "distill_weight": 5.0,
        # the embedded corpus's 800 prompts have no dev/eval ids of the standard split: a seeded split of them
        "split": "seeded",
        # lambda decays linearly to 0 over the first half of the students' epochs: the attention is learnt from the
        # teacher early, then the mel loss has the student to itself (a constant lambda = 5 leaves the mel term a
        # fiftieth of the loss, and the distilled student's MCD behind the baseline's)
        "distill_decay_fraction": 0.5,
        "teacher": {"encoder_hidden": 64, "attention_rnn_dim": 128, "decoder_rnn_dims": [128], "prenet_sizes": [64, 64],
                    **_SMALL_ATTENTION, "postnet_channels": 0, "mcd_max_utterances": 8, "lr": 0.003,
                    "guided_attention_weight": 5.0},
        # one stop frame per utterance against hundreds of "go on" frames: weighting the positives lets the small
        # students learn to stop within two epochs, so free-running MCD compares conversions, not overruns
        "student": {"encoder_hidden": 32, "attention_rnn_dim": 64, "decoder_rnn_dims": [64], "prenet_sizes": [64, 64],
                    **_SMALL_ATTENTION, "postnet_channels": 0, "lr": 0.003, "stop_pos_weight": 8.0},
        "common": {"reduction_factor": 4, "mcd_max_utterances": 16, "probe_every_n_steps": 5},
        "pretrain": {"max_steps": 60, "limit_val_batches": 1}, "finetune": {"max_steps": 120, "limit_val_batches": 2},
        "students": {"max_epochs": 6}, "eval": {"utterances": 16, "workers": 2},
    },
    # real CMU ARCTIC (bdl -> slt, the standard split: train on its 932 train prompts, report on its 100 dev prompts) at
    # 16 kHz / 80 mels; the teacher pretrains as an autoencoder on every training prompt of both speakers (and on
    # LJSpeech first when <data-root>/LJSpeech-1.1 is there). Sized for <= 60 minutes on a 2-core CPU.
    "real": {
        "audio": AUDIO_16K, "lj_size": None, "arctic_size": None, "batch_size": 16, "lj_max_frames": 400,
        # batch 4 for the students: an epoch of the 932 pairs is 233 optimiser steps, enough for the attention to be
        # learnt from the teacher within it (at batch 8, 117 steps, the distilled student was at 0.38 by its end)
        "student_batch_size": 4,
        "distill_weight": 5.0, "distill_decay_fraction": 0.5, "pretrain_on": "arctic", "split": "standard",
        # guided attention 50: the loss is a mean over all (decoder, encoder) cells, so weight 5 is ~0.07 per step
        "teacher": {"encoder_hidden": 128, "attention_rnn_dim": 256, "decoder_rnn_dims": [256], "prenet_sizes": [128, 128],
                    "attention_dim": 128, "attention_filters": 16, "attention_kernel_size": 15, "postnet_channels": 128,
                    "mcd_max_utterances": 8, "lr": 0.002, "guided_attention_weight": 50.0, "stop_pos_weight": 8.0},
        "student": {"encoder_hidden": 64, "attention_rnn_dim": 128, "decoder_rnn_dims": [128], "prenet_sizes": [64, 64],
                    "attention_dim": 128, "attention_filters": 16, "attention_kernel_size": 15, "postnet_channels": 64,
                    "lr": 0.003, "stop_pos_weight": 8.0},
        "common": {"reduction_factor": 4, "mcd_max_utterances": 16, "probe_every_n_steps": 20},
        "pretrain": {"max_steps": 300, "limit_val_batches": 2}, "finetune": {"max_steps": 600, "limit_val_batches": 4},
        "students": {"max_epochs": 5}, "eval": {"utterances": None, "workers": 2},
    },
    # the blog-scale sizes (teacher 600 / student 300 hidden units) on the real datasets, for a GPU machine
    "paper": {
        "audio": AUDIO_16K, "lj_size": None, "arctic_size": None, "batch_size": 32, "lj_max_frames": 1000,
        "distill_weight": 1.0, "pretrain_on": "arctic", "split": "standard",
        "teacher": {"encoder_hidden": 300, "attention_rnn_dim": 600, "decoder_rnn_dims": [600],
                    "prenet_sizes": [256, 256], "postnet_channels": 256},
        "student": {"encoder_hidden": 150, "attention_rnn_dim": 300, "decoder_rnn_dims": [300],
                    "prenet_sizes": [128, 128], "postnet_channels": 128},
        "common": {"reduction_factor": 2, "mcd_max_utterances": 32, "probe_every_n_steps": 5},
        "pretrain": {"max_epochs": 50}, "finetune": {"max_epochs": 100},
        "students": {"max_epochs": 30}, "eval": {"utterances": None, "workers": 4},
    },
}


def _lambda_text(preset: dict) -> str:
    if not preset.get("distill_decay_fraction"):
        return f"lambda = {preset['distill_weight']}"
    epochs = max(1, round(preset["distill_decay_fraction"] * preset["students"]["max_epochs"]))
    return f"lambda (from {preset['distill_weight']}, decayed linearly to 0 over the first {epochs} epochs)"


def _stage_overrides(stage: str, preset: dict, out: Path, data_root: str, arctic_root: str | None,
                     teacher_ckpt: Path | None, pretrain_ckpt: Path | None, wandb: bool) -> dict:
    """The override config of one stage (merged over its configs/*.yaml by the CLI).

    ``pretrain_ckpt`` initialises the stage after a pretraining stage (LJSpeech -> ARCTIC autoencoder -> pairs)."""
    run_dir = out / stage
    loggers = stage_loggers(run_dir, f"attention-distillation-{stage}", wandb)
    budget = preset["pretrain"] if stage.startswith("teacher_pretrain") else (
        preset["finetune"] if stage == "teacher" else preset["students"])
    trainer = {"logger": loggers, "default_root_dir": str(run_dir), "enable_progress_bar": False,
               "num_sanity_val_steps": 0, "log_every_n_steps": 5, "max_epochs": budget.get("max_epochs", 1000),
               "max_steps": budget.get("max_steps", -1), "max_time": None,
               "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                              "init_args": {"dirpath": str(run_dir / "checkpoints"), "save_top_k": -1,
                                            "every_n_epochs": 1, "save_last": True,
                                            "filename": "{epoch}-{step}"}}]}
    for key in ("limit_train_batches", "limit_val_batches"):
        if key in budget:
            trainer[key] = budget[key]
    real = preset["lj_size"] is None
    audio = dict(preset["audio"])
    student = stage in ("distilled", "baseline")
    data: dict[str, Any] = {"batch_size": preset.get("student_batch_size", preset["batch_size"]) if student
                            else preset["batch_size"], "progress": False}
    if audio:
        data["audio"] = audio
    model: dict[str, Any] = {**preset["common"]}
    arctic: dict[str, Any] = (
        # a real corpus may sit on read-only or shared storage: its feature cache goes under the data root
        {"source": "real", "root": arctic_root, "download": False, "cache_dir": str(Path(data_root) / "feature_cache")}
        if arctic_root is not None else
        {"source": "real", "root": data_root, "download": True} if real else
        {"source": "embedded", "root": data_root, "embedded_size": preset["arctic_size"]})
    if "split" in preset:
        arctic["split"] = preset["split"]
    if stage == "teacher_pretrain_lj" or (stage == "teacher_pretrain" and preset.get("pretrain_on", "lj") == "lj"):
        data.update({"max_frames": preset["lj_max_frames"]})
        data.update({"source": "real", "root": data_root, "download": True} if real else
                    {"source": "embedded", "root": data_root, "embedded_size": preset["lj_size"]})
    elif stage == "teacher_pretrain":  # the autoencoder on every training prompt of both ARCTIC speakers
        data.update({**arctic, "mode": "pooled", "max_frames": preset["lj_max_frames"]})
    else:
        data.update(arctic)
    config_data = {"init_args": data}
    if stage == "teacher_pretrain" and preset.get("pretrain_on", "lj") == "arctic":
        config_data = {"class_path": "datamodules.CMUArcticDataModule", "init_args": data}
    if stage.startswith("teacher"):
        model.update(preset["teacher"])
        model["probe_every_n_steps"] = 0
        if pretrain_ckpt is not None:
            model["init_from"] = str(pretrain_ckpt)
    else:
        model.update(preset["student"])
        model.update({"teacher_checkpoint": str(teacher_ckpt), "distill_weight": preset["distill_weight"]} if stage == "distilled" else
                     {"teacher_checkpoint": None, "distill_weight": 0.0})
        if stage == "distilled" and preset.get("distill_decay_fraction"):
            epochs = preset["students"]["max_epochs"]
            model.update({"distill_schedule": "linear",
                          "distill_epochs": max(1, round(preset["distill_decay_fraction"] * epochs))})
    # the presets still name the module's arguments flat: placed in its net and training configs here
    from zoo.checkpoints import upgrade_flat_hyperparameters
    from zoo.models.vc import VoiceConversion

    nested = upgrade_flat_hyperparameters(VoiceConversion, model, apply_defaults=False)
    return {"trainer": trainer, "model": {"init_args": nested}, "data": config_data}


def stages(preset: dict, data_root: str) -> tuple[str, ...]:
    """The stages a preset runs: an LJSpeech autoencoder stage first when the teacher pretrains on ARCTIC and
    LJSpeech is present under the data root."""
    lj = preset.get("pretrain_on", "lj") == "arctic" and (Path(data_root) / "LJSpeech-1.1" / "metadata.csv").is_file()
    return (("teacher_pretrain_lj",) if lj else ()) + STAGES


def _fit(stage: str, overrides: dict, out: Path) -> tuple[Path, float]:
    seconds = fit_stage(CONFIG_DIR / CONFIGS[stage], overrides, out / stage)
    return out / stage / "checkpoints" / "last.ckpt", seconds


def _student_figures(run_dir: Path) -> dict[str, Any]:
    rows = read_metrics(run_dir)
    val = [r for r in rows if "val/diagonality" in r]
    first, last = val[0], val[-1]
    probes = [(int(r["step"]), r["probe/diagonality"], r["probe/focus_rate"]) for r in rows if "probe/diagonality" in r]
    return {
        "diagonality_epoch0": first["val/diagonality"], "focus_rate_epoch0": first["val/focus_rate"],
        "mel_cd_proxy_db_epoch0": first.get("val/mel_cd_proxy_db"),
        "diagonality": last["val/diagonality"], "focus_rate": last["val/focus_rate"],
        "mel_cd_proxy_db": last.get("val/mel_cd_proxy_db"),
        "duration_ratio": last.get("val/duration_ratio"), "epochs": int(last["epoch"]) + 1, "steps": int(last["step"]) + 1,
        "steps_epoch0": int(first["step"]) + 1,
        "probe_steps": [p[0] for p in probes], "probe_diagonality": [p[1] for p in probes],
        "probe_focus_rate": [p[2] for p in probes],
        "val_diagonality_by_epoch": [r["val/diagonality"] for r in val],
        "val_mel_cd_proxy_db_by_epoch": [r.get("val/mel_cd_proxy_db") for r in val],
    }


def _parallel_datamodule(overrides: dict):
    """The students' parallel DataModule: ``configs/vc_distill.yaml``'s data block under the stage's overrides."""
    return stage_datamodule(CONFIG_DIR / CONFIGS["distilled"], overrides, mode="parallel")


# the rows of the report, in order: what each one converts (or not) and how it reaches the metrics
ROWS = ("target_natural", "source_unconverted", "target_copy_synthesis", "mean_frame", "teacher", "distilled", "baseline")
ROW_TITLES = {
    "target_natural": "natural target speech (slt), the metrics' own floor",
    "source_unconverted": "natural source speech (bdl), no conversion",
    "target_copy_synthesis": "target mel -> Griffin-Lim (the vocoder's share)",
    "mean_frame": "mean training target frame at the target's length -> Griffin-Lim",
    "teacher": "teacher conversion -> Griffin-Lim",
    "distilled": "distilled student conversion -> Griffin-Lim",
    "baseline": "baseline student conversion -> Griffin-Lim",
}


@torch.no_grad()
def evaluate_dev(out: Path, overrides: dict, checkpoints: dict[str, Path], n_utterances: int | None,
                 workers: int | None, batch_size: int = 8) -> dict[str, dict]:
    """Every row of ``ROWS`` on the validation (dev) pairs: the synthesised rows written to ``OUT/wavs/<row>/<id>.wav``
    and every row scored against the natural target with ``zoo.evaluation.Scorer`` (MCD, F0, DDUR, DNSMOS,
    WER/CER). Returns ``{row: figures}``, each with the checkpoint it scored (None for the reference rows)."""
    from zoo.audio import save_wav
    from zoo.evaluation import Scorer
    from zoo.metrics.mcd import F0_RANGES
    from zoo.audio import griffin_lim_wav
    from zoo.pipeline import VoiceConverter

    dm = _parallel_datamodule(overrides)
    dm.prepare_data()
    dm.setup("fit")
    audio = dm.audio
    val = dm.datasets["val"]
    pairs = val.pairs[:n_utterances] if n_utterances else val.pairs
    ids = [t.id for _, t in pairs]
    src_mels = [val.src_store.get(s.id, "mel") for s, _ in pairs]  # (T, n_mels) each, as the models saw them
    tgt_mels = [val.tgt_store.get(t.id, "mel") for _, t in pairs]
    total, frames = torch.zeros(audio.n_mels, dtype=torch.float64), 0
    for batch in dm.train_dataloader():
        mask = torch.arange(batch.tgt_mel.shape[1]).unsqueeze(0) < batch.tgt_lengths.unsqueeze(1)  # (B, T)
        total += (batch.tgt_mel * mask.unsqueeze(-1)).sum((0, 1)).double()
        frames += int(batch.tgt_lengths.sum())
    mean_frame = (total / frames).float()  # (n_mels,)
    mels: dict[str, list[Tensor]] = {
        "target_copy_synthesis": tgt_mels,
        "mean_frame": [mean_frame.expand(m.shape[0], -1) for m in tgt_mels],
    }
    for row in ("teacher", "distilled", "baseline"):
        converter = VoiceConverter.from_checkpoint(checkpoints[row], device="cpu")
        torch.manual_seed(0)  # the decoder's pre-net keeps dropout on at inference (Tacotron 2): a fixed draw
        mels[row] = [mel for mel, _, _ in converter.convert_mels(src_mels, batch_size)]
    # natural speech at the models' sample rate, so a model below 16 kHz is not scored on the band it never had
    sources: dict[str, dict[str, Any]] = {
        "target_natural": {t.id: natural_16k(t.wav_path, audio.sample_rate) for _, t in pairs},
        "source_unconverted": {t.id: natural_16k(s.wav_path, audio.sample_rate) for s, t in pairs},
    }
    for row, row_mels in mels.items():
        folder = out / "wavs" / row
        folder.mkdir(parents=True, exist_ok=True)
        sources[row] = {}
        for utt_id, mel in zip(ids, row_mels):
            path = folder / f"{utt_id}.wav"
            save_wav(path, griffin_lim_wav(mel, audio), audio.sample_rate)
            sources[row][utt_id] = path
    texts = {t.id: t.text for _, t in pairs}
    f0_range = F0_RANGES.get(dm.target_speaker, (60.0, 400.0))
    results: dict[str, dict] = {}
    with Scorer(sources["target_natural"], texts, f0_range, workers) as scorer:
        for row in ROWS:
            results[row] = {"checkpoint": str(checkpoints[row]) if row in checkpoints else None,
                            "wavs": str(out / "wavs" / row) if row in mels else "natural recordings",
                            **scorer.score(sources[row])}
    return results


@torch.no_grad()
def _alignment_plots(out: Path, overrides: dict) -> list[str]:
    """Side-by-side teacher-forced alignments of both students (and the teacher) on the first validation utterance,
    at the end of epoch 0 and at the end; and diagonality vs step inside epoch 0."""
    from zoo.cli import ZooCLI  # noqa: F401  (imports the DataModules)
    from zoo.models.vc import load_model, load_teacher
    from zoo.plotting import pyplot

    dm = _parallel_datamodule(overrides)
    dm.setup("fit")
    batch = dm.media_batch(1, "val")
    src, src_len, tgt, tgt_len = batch.src_mel, batch.src_lengths, batch.tgt_mel, batch.tgt_lengths
    plt = pyplot()
    teacher = load_teacher(out / "teacher" / "checkpoints" / "last.ckpt")
    t_align = teacher(src, src_len, tgt, tgt_len).alignments[0]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for row, name in enumerate(("distilled", "baseline")):
        ckpts = out / name / "checkpoints"
        epoch0 = sorted(ckpts.glob("epoch=0-*.ckpt"))[0]
        for col, (label, ckpt) in enumerate((("end of epoch 0", epoch0), ("end", ckpts / "last.ckpt"))):
            model = load_model(ckpt)
            align = model.net(src, src_len, tgt, tgt_len).alignments[0]
            axes[row, col].imshow(align.T.numpy(), aspect="auto", origin="lower", interpolation="none")
            axes[row, col].set_title(f"{name} student, {label}")
        axes[row, 2].imshow(t_align.T.numpy(), aspect="auto", origin="lower", interpolation="none")
        axes[row, 2].set_title("teacher (fine-tuned)")
    for ax in axes.flat:
        ax.set_xlabel("decoder step")
        ax.set_ylabel("encoder step")
    fig.suptitle(f"teacher-forced attention, validation utterance {batch.ids[0]}")
    fig.tight_layout()
    fig.savefig(out / "alignments.png", dpi=80)
    plt.close(fig)
    return ["alignments.png"]


def _diagonality_plot(out: Path, students: dict[str, dict]) -> str:
    from zoo.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, fig_ in students.items():
        ax.plot(fig_["probe_steps"], fig_["probe_diagonality"], marker=".", label=f"{name} student")
    ax.axhline(0.6, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("optimiser step (epoch 0)")
    ax.set_ylabel("validation diagonality (teacher-forced)")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "diagonality_vs_step.png", dpi=80)
    plt.close(fig)
    return "diagonality_vs_step.png"


def run(preset_name: str, out: Path, data_root: str = "data", arctic_root: str | None = None,
        wandb: bool = True, command: str = "", student_epochs: int | None = None, reuse: bool = False,
        eval_utterances: int | None = None, eval_workers: int | None = None, stop_after: str | None = None) -> dict:
    """Train every stage (or, with ``reuse``, keep a stage whose ``last.ckpt`` exists and whose overrides file is
    unchanged), evaluate on dev, and write ``OUT/report.{json,md}``. With ``stop_after`` (a stage name), train up to
    that stage only and return ``{"checkpoints": ...}`` without a report (e.g. a teacher for another experiment)."""
    if stop_after is not None and stop_after not in STAGES:
        raise ValueError(f"stop_after must be one of {STAGES}, but got {stop_after!r}")
    if preset_name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, but got {preset_name!r}")
    preset = PRESETS[preset_name]
    if student_epochs is not None:
        if student_epochs < 1:
            raise ValueError(f"student_epochs must be >= 1, but got {student_epochs}")
        preset = {**preset, "students": {**preset["students"], "max_epochs": student_epochs}}
    if eval_utterances is not None and eval_utterances < 1:
        raise ValueError(f"eval_utterances must be >= 1, but got {eval_utterances}")
    if arctic_root is not None:
        root = Path(arctic_root)
        # accept both the cmu_arctic folder itself and the folder holding it
        arctic_root = str(root.parent if root.name == "cmu_arctic" else root)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    start = time.perf_counter()
    ckpts: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    overrides: dict[str, dict] = {}
    chain = stages(preset, data_root)
    for stage in chain:
        init = {"teacher_pretrain": ckpts.get("teacher_pretrain_lj"), "teacher": ckpts.get("teacher_pretrain")}.get(stage)
        overrides[stage] = _stage_overrides(stage, preset, out, data_root, arctic_root, ckpts.get("teacher"), init, wandb)
        if reuse and _reusable(out / stage, overrides[stage]):
            ckpts[stage], seconds[stage] = out / stage / "checkpoints" / "last.ckpt", 0.0
            continue
        ckpts[stage], seconds[stage] = _fit(stage, overrides[stage], out)
        if stage == stop_after:
            return {"checkpoints": {k: str(v) for k, v in ckpts.items()}, "train_seconds": seconds}
    train_seconds = time.perf_counter() - start
    students = {name: _student_figures(out / name) for name in ("distilled", "baseline")}
    teacher_val = [r for r in read_metrics(out / "teacher") if "val/diagonality" in r][-1]
    figures = [*_alignment_plots(out, overrides["distilled"]), _diagonality_plot(out, students)]
    eval_start = time.perf_counter()
    ev = preset.get("eval", {})
    rows = evaluate_dev(out, overrides["distilled"], ckpts, eval_utterances or ev.get("utterances"),
                        eval_workers or ev.get("workers"))
    eval_seconds = time.perf_counter() - eval_start
    d, b = students["distilled"], students["baseline"]
    rd, rb = rows["distilled"], rows["baseline"]
    pretrain = ("CMU ARCTIC bdl + slt training prompts (autoencoder)" if preset.get("pretrain_on") == "arctic" else
                "LJSpeech (real)" if preset["lj_size"] is None else
                f"embedded LJSpeech-layout ({preset['lj_size']} utt.)")
    if "teacher_pretrain_lj" in chain:
        pretrain = "LJSpeech, then " + pretrain
    report = {
        "preset": preset_name, "command": command,
        "data": {"pretrain": pretrain,
                 "pairs": f"CMU ARCTIC bdl->slt, real, {arctic_root}" if arctic_root else
                 ("CMU ARCTIC bdl->slt (real)" if preset["arctic_size"] is None else
                  f"embedded CMU ARCTIC-layout bdl->slt ({preset['arctic_size']} prompts)"),
                 "split": preset.get("split", "seeded"), "scored_utterances": rows["distilled"]["n"]},
        "students": students,
        "teacher": {"diagonality": teacher_val["val/diagonality"], "focus_rate": teacher_val["val/focus_rate"],
                    "mel_cd_proxy_db": teacher_val.get("val/mel_cd_proxy_db"),
                    "duration_ratio": teacher_val.get("val/duration_ratio")},
        "rows": {k: {kk: vv for kk, vv in v.items() if kk != "utterances"} for k, v in rows.items()},
        "effect": {
            "diagonality_epoch0_gap": d["diagonality_epoch0"] - b["diagonality_epoch0"],
            "distilled_diagonal_by_epoch0": d["diagonality_epoch0"] >= 0.6,
            "gap_at_least_0.25": d["diagonality_epoch0"] - b["diagonality_epoch0"] >= 0.25,
            "distilled_mcd_below_baseline": bool(rd["mcd_db"] < rb["mcd_db"]),
            "distilled_mcd_at_most_7": bool(rd["mcd_db"] <= 7.0),
            "distilled_f0_rmse_at_most_25": bool(rd["f0_rmse_hz"] <= 25.0),
        },
        "train_seconds": seconds, "eval_seconds": eval_seconds, "total_seconds": time.perf_counter() - start,
        "training_wall_seconds": train_seconds,
        "wandb_run_ids": {stage: wandb_ids(out / stage) for stage in chain} if wandb else {},
        "figures": figures,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "utterances.json").write_text(json.dumps({k: v["utterances"] for k, v in rows.items()}, indent=1))
    (out / "report.md").write_text(_markdown(report, preset))
    return report


def _reusable(run_dir: Path, overrides: dict) -> bool:
    import yaml

    ckpt, saved = run_dir / "checkpoints" / "last.ckpt", run_dir / "overrides.yaml"
    return ckpt.is_file() and saved.is_file() and yaml.safe_load(saved.read_text()) == overrides


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"
    return str(value)


def _markdown(report: dict, preset: dict) -> str:
    s, e, rows = report["students"], report["effect"], report["rows"]
    cols = ("diagonality_epoch0", "focus_rate_epoch0", "diagonality", "focus_rate", "mel_cd_proxy_db",
            "duration_ratio", "epochs", "steps_epoch0")
    lines = [
        f"# Attention distillation for seq2seq voice conversion ({report['preset']} preset)", "",
        f"Command: `{report['command']}`", "",
        f"Data: teacher pretraining on {report['data']['pretrain']}; pairs: {report['data']['pairs']} "
        f"({report['data']['split']} split). Total time {report['total_seconds'] / 60:.1f} min: training "
        f"{', '.join(f'{k} {v:.0f} s' for k, v in report['train_seconds'].items())}; evaluation "
        f"{report['eval_seconds']:.0f} s.", "",
        f"Teacher: {_fmt(preset['teacher'])}; student: {_fmt(preset['student'])}; {_fmt(preset['common'])}.", "",
        f"## Conversions on the validation (dev) split, {report['data']['scored_utterances']} utterances", "",
        "Every row scored against the natural target with the published ARCTIC protocol (`zoo.metrics.mcd`: WORLD "
        "Harvest/CheapTrick, SPTK mel-cepstrum order 39, alpha 0.466, c0 included, frames above -20 dB, fastdtw), "
        "DNSMOS P.835 (`speechmos`) and PocketSphinx WER/CER against the prompt (generic language model, not tuned). "
        "Synthesised rows go through Griffin-Lim at the preset's AudioConfig, so the copy-synthesis row is the "
        "vocoder's share of every converted row's figures.", "",
        "| row | MCD dB | F0 RMSE Hz | F0 CORR | DDUR s | DNSMOS OVRL | SIG | BAK | WER % | CER % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ROWS:
        r = rows[name]
        undefined = {k: r[f"{k}_undefined"] for k in ("mcd_db", "f0_rmse_hz") if r.get(f"{k}_undefined")}
        note = f" ({', '.join(f'{k} undefined for {v}' for k, v in undefined.items())})" if undefined else ""
        lines.append(f"| {name}: {ROW_TITLES[name]}{note} | {_fmt(r['mcd_db'], 2)} | {_fmt(r['f0_rmse_hz'], 1)} | "
                     f"{_fmt(r['f0_corr'])} | {_fmt(r['ddur_s'])} | {_fmt(r['dnsmos_ovrl'], 2)} | "
                     f"{_fmt(r['dnsmos_sig'], 2)} | {_fmt(r['dnsmos_bak'], 2)} | {_fmt(r['wer'], 1)} | "
                     f"{_fmt(r['cer'], 1)} |")
    lines += [
        "", "Checkpoints scored: " + "; ".join(f"{k} `{v['checkpoint']}`" for k, v in rows.items() if v["checkpoint"]),
        "; converted wavs under `wavs/<row>/`.", "",
        "## Attention", "",
        f"Both students: same seed, data, sizes and steps; the distilled one adds {_lambda_text(preset)} x CE(teacher "
        "attention, student attention) to its loss (no guided attention for either; the teacher had it). Focus rate "
        "and diagonality teacher-forced on the validation split; mel_cd_proxy_db is the training-time log-mel "
        "cepstral distance (`zoo.metrics.mel_distance`, not the MCD above) and duration_ratio predicted / target "
        "frames, both of free-running conversions.", "",
        "| student | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
    ]
    for name in ("distilled", "baseline"):
        lines.append(f"| {name} | " + " | ".join(_fmt(s[name][c]) for c in cols) + " |")
    t = report["teacher"]
    lines += [
        f"| (teacher) | | | {_fmt(t['diagonality'])} | {_fmt(t['focus_rate'])} | {_fmt(t['mel_cd_proxy_db'])} | "
        f"{_fmt(t['duration_ratio'])} | | |", "",
        f"Effect: distilled − baseline diagonality at the end of epoch 0 = {e['diagonality_epoch0_gap']:+.3f} "
        f"(needs ≥ 0.25: {'yes' if e['gap_at_least_0.25'] else 'no'}); distilled ≥ 0.6: "
        f"{'yes' if e['distilled_diagonal_by_epoch0'] else 'no'}; distilled MCD below the baseline's: "
        f"{'yes' if e['distilled_mcd_below_baseline'] else 'no'}; distilled MCD ≤ 7.0 dB: "
        f"{'yes' if e['distilled_mcd_at_most_7'] else 'no'}; distilled F0 RMSE ≤ 25 Hz: "
        f"{'yes' if e['distilled_f0_rmse_at_most_25'] else 'no'}.", "",
        "Diagonality inside epoch 0 (validation, every few steps):", "",
        "| step | " + " | ".join(str(x) for x in s["distilled"]["probe_steps"]) + " |",
        "|---" * (len(s["distilled"]["probe_steps"]) + 1) + "|",
    ]
    for name in ("distilled", "baseline"):
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f}" for x in s[name]["probe_diagonality"]) + " |")
    lines += ["", "![alignments](alignments.png)", "", "![diagonality vs step](diagonality_vs_step.png)", ""]
    if report["wandb_run_ids"]:
        lines += ["W&B runs (offline unless credentials were configured; `wandb sync OUT/<stage>/wandb/offline-run-*`): "
                  + ", ".join(f"{k} {'/'.join(v) or '—'}" for k, v in report["wandb_run_ids"].items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo reproduce attention-distillation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--out", type=Path, required=True, help="report folder (and every stage's run)")
    parser.add_argument("--data-root", default="data", help="where the embedded corpora (or the real datasets) live")
    parser.add_argument("--arctic-root", default=None,
                        help="a real CMU ARCTIC folder (holding cmu_us_bdl_arctic/, cmu_us_slt_arctic/) for the pairs; "
                             "the teacher still pretrains on the preset's LJSpeech-layout corpus")
    parser.add_argument("--student-epochs", type=int, default=None,
                        help="train both students this many epochs instead of the preset's (e.g. for the 100-prompt "
                             "real ARCTIC subset, whose epoch is only 10 steps)")
    parser.add_argument("--no-wandb", action="store_true", help="CSV logs only (no offline W&B runs)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a stage whose OUT/<stage>/checkpoints/last.ckpt exists and whose overrides.yaml equals "
                             "this run's (e.g. to rescore, or to finish a chain that stopped)")
    parser.add_argument("--eval-utterances", type=int, default=None,
                        help="score only the first N dev utterances (default: the preset's, all for real/paper)")
    parser.add_argument("--eval-workers", type=int, default=None, help="processes for scoring (default: 2)")
    parser.add_argument("--stop-after", choices=STAGES, default=None,
                        help="train the chain up to this stage only, no evaluation or report (e.g. --stop-after teacher "
                             "for an upstream voice-conversion checkpoint: OUT/teacher/checkpoints/last.ckpt)")
    args = parser.parse_args(argv)
    if args.student_epochs is not None and args.student_epochs < 1:
        parser.error(f"--student-epochs must be >= 1, but got {args.student_epochs}")
    command = "python -m zoo reproduce attention-distillation " + " ".join(argv if argv is not None else [])
    for flag, value in (("--eval-utterances", args.eval_utterances), ("--eval-workers", args.eval_workers)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be >= 1, but got {value}")
    run(args.preset, args.out, args.data_root, args.arctic_root, wandb=not args.no_wandb, command=command.strip(),
        student_epochs=args.student_epochs, reuse=args.reuse, eval_utterances=args.eval_utterances,
        eval_workers=args.eval_workers, stop_after=args.stop_after)


if __name__ == "__main__":
    main()
