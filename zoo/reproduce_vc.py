"""``reproduce attention-distillation``: voice conversion with attention distillation, the whole chain in one go.

1. teacher pretraining (``configs/vc_teacher_pretrain.yaml``): the large model as an autoencoder, each utterance
   reconstructing itself: on the embedded LJSpeech-layout corpus (``tiny``, ``demo``), or on every training prompt of
   both CMU ARCTIC speakers (``real``, ``paper``; after an LJSpeech stage when ``<data-root>/LJSpeech-1.1`` exists);
2. teacher fine-tuning (``configs/vc_teacher.yaml``) on CMU ARCTIC pairs bdl -> slt, initialised from 1;
3. the small student with attention distillation from 2 (``configs/vc_distill.yaml``);
4. the same student without it (``distill_weight 0``): same seed, data, sizes and steps;
5. (a preset with a ``world_vocoder`` stage whose converters predict mels) the WORLD vocoder the conversions are
   measured through (``configs/world_vocoder.yaml``): slt's training mels and the ground-truth-aligned predictions of
   them by each of the three converters (``OUT/gta_predictions/<converter>``, as Tacotron 2 fine-tunes its WaveNet on
   its own predictions) -> WORLD parameters.

How the conversions are heard: the ``real`` and ``paper`` presets' converters predict slt's WORLD parameters
(``data.target_features: world``; the autoencoder stage still reconstructs mels and the fine-tuning starts from it
where shapes agree), which WORLD synthesises directly, so they need no vocoder stage; the embedded presets' converters
predict mels, heard through Griffin-Lim.

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

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from zoo.report import fmt, write_report
from zoo.reproduce_common import (
    reproduce_parser,
    CONFIG_DIR, PRESET_DIR, fit_stage, fit_stages_side_by_side, load_preset, merge_configs, natural_16k, preset_names,
    read_metrics,
    stage_datamodule, stage_loggers, wandb_ids,
)

STAGES = ("teacher_pretrain", "teacher", "distilled", "baseline", "vocoder")
CONVERTERS = ("teacher", "distilled", "baseline")  # the stages whose conversions the report scores
# the stages whose checkpoints each stage reads: with --reuse a stage is kept only while none of them trained again
UPSTREAM = {"teacher_pretrain_lj": (), "teacher_pretrain": ("teacher_pretrain_lj",), "teacher": ("teacher_pretrain",),
            "distilled": ("teacher",), "baseline": (), "vocoder": CONVERTERS}
CONFIGS = {"teacher_pretrain_lj": "vc_teacher_pretrain.yaml", "teacher_pretrain": "vc_teacher_pretrain.yaml", "teacher": "vc_teacher.yaml",
           "vocoder": "world_vocoder.yaml", "distilled": "vc_distill.yaml", "baseline": "vc_distill.yaml"}
# each stage's preset: configs/presets/<dir>/<preset>.yaml, an override of its config (the baseline runs the students'
# file with distillation off); the LJSpeech stage has presets only where the teacher pretrains on ARCTIC afterwards, the
# WORLD vocoder only where the pairs are real speech (the other presets vocode with Griffin-Lim alone)
PRESET_DIRS = {"teacher_pretrain_lj": "vc_teacher_pretrain_lj", "teacher_pretrain": "vc_teacher_pretrain",
               "teacher": "vc_teacher", "vocoder": "world_vocoder", "distilled": "vc_distill", "baseline": "vc_distill"}
PRESETS = tuple(preset_names("vc_distill"))
_NO_DISTILLATION = {"distill_weight": 0.0, "distill_output_weight": 0.0, "teacher_checkpoint": None, "distill_schedule": "constant", "distill_epochs": None}


def load_presets(preset_name: str, student_epochs: int | None = None) -> dict[str, dict]:
    """``{stage: its preset}`` for every stage the preset has; ``student_epochs`` replaces the students' epochs (and
    rescales a decaying distillation weight's ``distill_epochs`` by the preset's ``distill_decay_fraction``)."""
    if preset_name not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, but got {preset_name!r}")
    presets = {stage: load_preset(folder, preset_name) for stage, folder in PRESET_DIRS.items()
               if (PRESET_DIR / folder / f"{preset_name}.yaml").is_file()}
    if student_epochs is not None:
        if student_epochs < 1:
            raise ValueError(f"student_epochs must be >= 1, but got {student_epochs}")
        change: dict[str, Any] = {"trainer": {"max_epochs": student_epochs}}
        fraction = presets["distilled"].get("reproduce", {}).get("distill_decay_fraction")
        if fraction:
            change["model"] = {"init_args": {"training": {"distill_epochs": max(1, round(fraction * student_epochs))}}}
        for stage in ("distilled", "baseline"):
            presets[stage] = merge_configs(presets[stage], change)
    return presets


def _training(preset: dict) -> dict:
    return preset["model"]["init_args"].get("training", {})


def _lambda_text(distilled: dict) -> str:
    t = _training(distilled)
    if t.get("distill_schedule", "constant") == "constant":
        return f"lambda = {t['distill_weight']}"
    return (f"lambda (from {t['distill_weight']}, decayed {t['distill_schedule']}ly to 0 over the first "
            f"{t['distill_epochs']} epochs)")


def _output_distillation_text(distilled: dict) -> str:
    weight = _training(distilled).get("distill_output_weight", 0.0)
    return (f", and {weight} x the frame loss against the teacher's teacher-forced frames (output distillation)"
            if weight else "")


def _reads_arctic(stage: str, preset: dict) -> bool:
    import yaml

    class_path = preset.get("data", {}).get("class_path") or (
        yaml.safe_load((CONFIG_DIR / CONFIGS[stage]).read_text())["data"]["class_path"])
    return class_path.endswith(("CMUArcticDataModule", "WorldVocoderDataModule"))


def _stage_overrides(stage: str, preset: dict, out: Path, data_root: str, arctic_root: str | None,
                     teacher_ckpt: Path | None, pretrain_ckpt: Path | None, wandb: bool) -> dict:
    """The override config of one stage: its preset (``load_presets``) with this run's folders, loggers, corpus root
    and checkpoints merged over it (the CLI merges the result over the stage's configs/*.yaml).

    ``pretrain_ckpt`` initialises the stage after a pretraining stage (LJSpeech -> ARCTIC autoencoder -> pairs)."""
    run_dir = out / stage
    trainer = {"logger": stage_loggers(run_dir, f"attention-distillation-{stage}", wandb), "default_root_dir": str(run_dir),
               "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                              "init_args": {"dirpath": str(run_dir / "checkpoints"), "save_top_k": -1,
                                            "every_n_epochs": 1, "save_last": True,
                                            "filename": "{epoch}-{step}"}}]}
    # a real corpus given by path may sit on read-only or shared storage: its feature cache goes under the data root
    data: dict[str, Any] = ({"source": "real", "root": arctic_root, "download": False,
                             "cache_dir": str(Path(data_root) / "feature_cache")}
                            if arctic_root is not None and _reads_arctic(stage, preset) else {"root": data_root})
    training: dict[str, Any] = {}
    if pretrain_ckpt is not None:
        training["init_from"] = str(pretrain_ckpt)
    if stage == "vocoder":  # the converters' ground-truth-aligned predictions, written by ``run`` before the fit
        data["pairs_dir"] = str(out / "gta_predictions")
    if stage == "distilled":
        training["teacher_checkpoint"] = str(teacher_ckpt)
    elif stage == "baseline":
        training.update(_NO_DISTILLATION)
    run = {"trainer": trainer, "data": {"init_args": data}}
    if training:
        run["model"] = {"init_args": {"training": training}}
    return merge_configs(preset, run)


def dump_converters(checkpoints: dict[str, Path], arctic_root: str, data_root: str, folder: Path,
                    split: str = "standard") -> dict[str, int]:
    """Each converter's teacher-forced (ground-truth-aligned) predictions of the ARCTIC training and dev pairs, as
    ``folder/<converter>/`` (``zoo.reproduce_postnet.dump_upstream``), under one ``pairs_dir`` index in ``folder``
    whose rows name them ``<converter>/inputs/<id>.npy``. Returns the rows per converter."""
    from datamodules.postnet import read_pairs_index, write_pairs_index
    from zoo.reproduce_postnet import dump_upstream

    rows, counts = [], {}
    for name, ckpt in checkpoints.items():
        dump_upstream(ckpt, arctic_root, data_root, folder / name, split=split)
        own = read_pairs_index(folder / name)
        rows += [(utt_id, f"{name}/{inp}", f"{name}/{tgt}", part) for utt_id, inp, tgt, part in own]
        counts[name] = len(own)
    write_pairs_index(folder, rows)
    return counts


def stages(presets: dict[str, dict], data_root: str) -> tuple[str, ...]:
    """The stages a preset runs: an LJSpeech autoencoder stage first when the preset has one (the teacher then
    pretrains on ARCTIC) and LJSpeech is present under the data root; the WORLD vocoder when the preset has one and
    its converters predict mels (WORLD-parameter converters are synthesised by WORLD directly)."""
    lj = "teacher_pretrain_lj" in presets and (Path(data_root) / "LJSpeech-1.1" / "metadata.csv").is_file()
    vocoder = "vocoder" in presets and predicts(presets["distilled"]) == "mel"
    return (("teacher_pretrain_lj",) if lj else ()) + tuple(s for s in STAGES if s != "vocoder" or vocoder)


def predicts(preset: dict) -> str:
    """What a converter stage's preset predicts: its data's ``target_features`` (mel unless set)."""
    return preset.get("data", {}).get("init_args", {}).get("target_features", "mel")


def _last_checkpoint(out: Path, stage: str) -> Path:
    """The checkpoint a trained stage hands on (the reproduce commands keep the last one)."""
    return out / stage / "checkpoints" / "last.ckpt"


def _fit(stage: str, overrides: dict, out: Path) -> tuple[Path, float]:
    seconds = fit_stage(CONFIG_DIR / CONFIGS[stage], overrides, out / stage)
    return _last_checkpoint(out, stage), seconds


def _stopped(ckpts: dict[str, Path], seconds: dict[str, float]) -> dict:
    """What ``run`` returns when it stops after a stage (``stop_after``): the checkpoints so far, no report."""
    return {"checkpoints": {k: str(v) for k, v in ckpts.items()}, "train_seconds": seconds}


def students_side_by_side() -> bool:
    """Whether the two students train at once, one process each: on a CPU with at least two cores (a student keeps
    about one core busy; on a GPU they train one after the other)."""
    import os

    return not torch.cuda.is_available() and (os.cpu_count() or 1) >= 2


def _student_figures(run_dir: Path) -> dict[str, Any]:
    rows = read_metrics(run_dir)
    val = [r for r in rows if "val/diagonality" in r]
    first, last = val[0], val[-1]
    probes = [(int(r["step"]), r["probe/diagonality"], r["probe/focus_rate"]) for r in rows if "probe/diagonality" in r]
    return {
        "diagonality_epoch0": first["val/diagonality"], "focus_rate_epoch0": first["val/focus_rate"],
        "cd_proxy_db_epoch0": _cd_proxy(first),
        "diagonality": last["val/diagonality"], "focus_rate": last["val/focus_rate"],
        "cd_proxy_db": _cd_proxy(last),
        "duration_ratio": last.get("val/duration_ratio"), "epochs": int(last["epoch"]) + 1, "steps": int(last["step"]) + 1,
        **_frame_losses(last),
        "steps_epoch0": int(first["step"]) + 1,
        "probe_steps": [p[0] for p in probes], "probe_diagonality": [p[1] for p in probes],
        "probe_focus_rate": [p[2] for p in probes],
        "val_diagonality_by_epoch": [r["val/diagonality"] for r in val],
        "val_cd_proxy_db_by_epoch": [_cd_proxy(r) for r in val],
    }


def _cd_proxy(val_row: dict[str, Any]) -> Any:
    """The training-time cepstral distance of free-running conversions: a mel converter's log-mel proxy, a WORLD
    converter's mel-cepstral distance (``zoo.models.vc``)."""
    return val_row.get("val/mel_cd_proxy_db", val_row.get("val/mcep_distance_db"))


def _frame_losses(val_row: dict[str, Any]) -> dict[str, Any]:
    """The teacher-forced validation frame loss (after the post-net when there is one) and its floor, the loss of only
    continuing the fed-back frame (``zoo.metrics.spectral.previous_step_copy``)."""
    return {"val_mel_loss": val_row.get("val/mel_postnet", val_row.get("val/mel")),
            "val_mel_loss_previous_step_copy": val_row.get("val/mel_previous_step_copy")}


def _parallel_datamodule(overrides: dict, prepare: bool = False):
    """The students' parallel DataModule: ``configs/vc_distill.yaml``'s data block under the stage's overrides."""
    return stage_datamodule(CONFIG_DIR / CONFIGS["distilled"], overrides, prepare, mode="parallel")


# the rows of the report, in order: what each one converts (or not) and how it reaches the metrics
ROWS = ("target_natural", "source_unconverted", "target_world_resynthesis", "target_copy_synthesis", "mean_frame",
        "teacher", "distilled", "baseline")
ROW_TITLES = {
    "target_natural": "natural target speech (slt), the metrics' own floor",
    "source_unconverted": "natural source speech (bdl), no conversion",
    "target_world_resynthesis": "natural target -> WORLD analysis-synthesis with its own F0 (a harmonic vocoder's share)",
    "target_copy_synthesis": "target {frames} -> {vocoder} (the vocoder's share)",
    "mean_frame": "mean training target {frame} at the target's length -> {vocoder}",
    "teacher": "teacher conversion -> {vocoder}",
    "distilled": "distilled student conversion -> {vocoder}",
    "baseline": "baseline student conversion -> {vocoder}",
}
VOCODER_NAMES = {"world": "WORLD vocoder", "griffin-lim": "Griffin-Lim", "world-synthesis": "WORLD synthesis"}


@torch.no_grad()
def evaluate_dev(out: Path, overrides: dict, checkpoints: dict[str, Path], n_utterances: int | None,
                 workers: int | None, batch_size: int = 8) -> dict[str, dict]:
    """Every row of ``ROWS`` on the validation (dev) pairs: the synthesised rows written to ``OUT/wavs/<row>/<id>.wav``
    and every row scored against the natural target with ``zoo.evaluation.Scorer`` (MCD, F0, DDUR, DNSMOS,
    WER/CER). Converters of WORLD parameters (the DataModule's ``target_features: world``) are heard through WORLD
    synthesis, and so are the target's own WORLD parameters (copy-synthesis) and their training mean (mean frame);
    mel converters' rows go through the ``vocoder`` checkpoint (a WORLD vocoder) when there is one, else through
    Griffin-Lim. Returns ``{row: figures}``, each with the checkpoint it scored (None for the reference rows)."""
    import numpy as np

    from zoo.audio import griffin_lim_wav, save_wav
    from zoo.evaluation import SAMPLE_RATE, Scorer
    from zoo.metrics.mcd import F0_RANGES, world_resynthesis
    from zoo.pipeline import VoiceConverter, load_vocoder
    from zoo.world import world_synthesize

    dm = _parallel_datamodule(overrides, prepare=True)
    audio = dm.audio
    world = dm.target_features == "world"
    val = dm.datasets["val"]
    pairs = val.pairs[:n_utterances] if n_utterances else val.pairs
    ids = [t.id for _, t in pairs]
    src_mels = [val.src_store.get(s.id, "mel") for s, _ in pairs]  # (T, n_mels) each, as the models saw them
    # the target's own frames (mels, or WORLD parameters at the mel hop) and their mean over the training frames
    tgt_frames = ([torch.from_numpy(np.load(dm.world_dir() / f"{t.id}.npy")) for _, t in pairs] if world
                  else [val.tgt_store.get(t.id, "mel") for _, t in pairs])
    total, count = torch.zeros(tgt_frames[0].shape[1], dtype=torch.float64), 0
    for batch in dm.train_dataloader():
        target = batch.tgt_world if world else batch.tgt_mel
        mask = torch.arange(target.shape[1]).unsqueeze(0) < batch.tgt_lengths.unsqueeze(1)  # (B, T)
        total += (target * mask.unsqueeze(-1)).sum((0, 1)).double()
        count += int(batch.tgt_lengths.sum())
    mean_frame = (total / count).float()
    frames: dict[str, list[Tensor]] = {
        "target_copy_synthesis": tgt_frames,
        "mean_frame": [mean_frame.expand(m.shape[0], -1) for m in tgt_frames],
    }
    for row in ("teacher", "distilled", "baseline"):
        converter = VoiceConverter.from_checkpoint(checkpoints[row], device="cpu")
        if converter.world_output != world:
            from zoo.errors import StageMismatchError

            raise StageMismatchError(f"{row} checkpoint {checkpoints[row]} predicts "
                                     f"{'WORLD parameters' if converter.world_output else 'mels'}, the data "
                                     f"{dm.target_features} features: every converter of a report predicts the same")
        torch.manual_seed(0)  # the decoder's pre-net keeps dropout on at inference (Tacotron 2): a fixed draw
        frames[row] = [f for f, _, _ in converter.convert_mels(src_mels, batch_size)]
    # natural speech at the models' sample rate, so a model below 16 kHz is not scored on the band it never had
    sources: dict[str, dict[str, Any]] = {
        "target_natural": {t.id: natural_16k(t.wav_path, audio.sample_rate) for _, t in pairs},
        "source_unconverted": {t.id: natural_16k(s.wav_path, audio.sample_rate) for s, t in pairs},
    }
    texts = {t.id: t.text for _, t in pairs}
    f0_range = F0_RANGES.get(dm.target_speaker, (60.0, 400.0))
    folder = out / "wavs" / "target_world_resynthesis"
    folder.mkdir(parents=True, exist_ok=True)
    sources["target_world_resynthesis"] = {}
    for utt_id, wav in sources["target_natural"].items():
        save_wav(folder / f"{utt_id}.wav", world_resynthesis(wav, SAMPLE_RATE, f0_range), SAMPLE_RATE)
        sources["target_world_resynthesis"][utt_id] = folder / f"{utt_id}.wav"
    # mel rows: the chain's WORLD vocoder, checked against the converters' front end; Griffin-Lim without one
    vocoder = (load_vocoder(checkpoints["vocoder"], "the converters", audio, "cpu")
               if "vocoder" in checkpoints and not world else None)
    for row, row_frames in frames.items():
        folder = out / "wavs" / row
        folder.mkdir(parents=True, exist_ok=True)
        sources[row] = {}
        for utt_id, f in zip(ids, row_frames):
            path = folder / f"{utt_id}.wav"
            if world:
                wav = torch.from_numpy(world_synthesize(f.double().numpy(), audio.sample_rate, audio.hop_length))
            else:
                wav = vocoder.vocode([f])[0] if vocoder is not None else griffin_lim_wav(f, audio)
            save_wav(path, wav, audio.sample_rate)
            sources[row][utt_id] = path
    synthesis = ("world-synthesis" if world else str(checkpoints["vocoder"]) if vocoder is not None
                 else "griffin-lim")
    results: dict[str, dict] = {}
    with Scorer(sources["target_natural"], texts, f0_range, workers) as scorer:
        for row in ROWS:
            results[row] = {"checkpoint": str(checkpoints[row]) if row in checkpoints else None,
                            "vocoder": synthesis if row in frames else None,
                            "wavs": "natural recordings" if row in ("target_natural", "source_unconverted") else str(out / "wavs" / row),
                            **scorer.score(sources[row])}
    return results


@torch.no_grad()
def _alignment_plots(out: Path, overrides: dict) -> list[str]:
    """Side-by-side teacher-forced alignments of both students (and the teacher) on the first validation utterance,
    at the end of epoch 0 and at the end; and diagonality vs step inside epoch 0."""
    from zoo.cli import ZooCLI  # noqa: F401  (imports the DataModules)
    from zoo.models.vc import load_model, load_teacher
    from zoo.plotting import pyplot, save_figure

    dm = _parallel_datamodule(overrides)
    dm.setup("fit")
    batch = dm.media_batch(1, "val")
    src, src_len, tgt_len = batch.src_mel, batch.src_lengths, batch.tgt_lengths
    tgt = batch.tgt_world if batch.tgt_world is not None else batch.tgt_mel  # what the converters predict
    plt = pyplot()
    teacher = load_teacher(_last_checkpoint(out, "teacher"))
    t_align = teacher(src, src_len, teacher.standardise(tgt), tgt_len).alignments[0]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for row, name in enumerate(("distilled", "baseline")):
        ckpts = out / name / "checkpoints"
        epoch0 = sorted(ckpts.glob("epoch=0-*.ckpt"))[0]
        for col, (label, ckpt) in enumerate((("end of epoch 0", epoch0), ("end", ckpts / "last.ckpt"))):
            model = load_model(ckpt)
            align = model.net(src, src_len, model.net.standardise(tgt), tgt_len).alignments[0]
            axes[row, col].imshow(align.T.numpy(), aspect="auto", origin="lower", interpolation="none")
            axes[row, col].set_title(f"{name} student, {label}")
        axes[row, 2].imshow(t_align.T.numpy(), aspect="auto", origin="lower", interpolation="none")
        axes[row, 2].set_title("teacher (fine-tuned)")
    for ax in axes.flat:
        ax.set_xlabel("decoder step")
        ax.set_ylabel("encoder step")
    fig.suptitle(f"teacher-forced attention, validation utterance {batch.ids[0]}")
    save_figure(fig, out / "alignments.png")
    return ["alignments.png"]


def _diagonality_plot(out: Path, students: dict[str, dict]) -> str:
    from zoo.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, fig_ in students.items():
        ax.plot(fig_["probe_steps"], fig_["probe_diagonality"], marker=".", label=f"{name} student")
    ax.axhline(0.6, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("optimiser step (epoch 0)")
    ax.set_ylabel("validation diagonality (teacher-forced)")
    ax.set_ylim(0, 1)
    ax.legend()
    save_figure(fig, out / "diagonality_vs_step.png")
    return "diagonality_vs_step.png"


def run(preset_name: str, out: Path, data_root: str = "data", arctic_root: str | None = None,
        wandb: bool = True, command: str = "", student_epochs: int | None = None, reuse: bool = False,
        eval_utterances: int | None = None, eval_workers: int | None = None, stop_after: str | None = None,
        side_by_side: bool | None = None) -> dict:
    """Train every stage (or, with ``reuse``, keep a stage whose ``last.ckpt`` exists, whose overrides file is
    unchanged and none of whose ``UPSTREAM`` stages trained again in this run), evaluate on dev, and write
    ``OUT/report.{json,md}``. The two students train side by side (``students_side_by_side``; None: where it
    helps) when both are to be trained. With ``stop_after`` (a stage name), train up to that stage only and return ``{"checkpoints": ...}`` without a report (e.g. a teacher for another experiment)."""
    if stop_after is not None and stop_after not in STAGES:
        raise ValueError(f"stop_after must be one of {STAGES}, but got {stop_after!r}")
    presets = load_presets(preset_name, student_epochs)
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
    trained: set[str] = set()
    chain = stages(presets, data_root)
    if stop_after is not None and stop_after not in chain:
        raise ValueError(f"the {preset_name} preset has no {stop_after} stage (its stages: {', '.join(chain)})")
    side_by_side = students_side_by_side() if side_by_side is None else side_by_side
    together = False  # whether the students did train side by side
    for stage in chain:
        if stage in ckpts:  # trained beside the previous stage
            continue
        init = {"teacher_pretrain": ckpts.get("teacher_pretrain_lj"), "teacher": ckpts.get("teacher_pretrain")}.get(stage)
        overrides[stage] = _stage_overrides(stage, presets[stage], out, data_root, arctic_root, ckpts.get("teacher"),
                                            init, wandb)
        if reuse and not trained.intersection(UPSTREAM[stage]) and _reusable(out / stage, overrides[stage]):
            ckpts[stage], seconds[stage] = _last_checkpoint(out, stage), 0.0
            continue
        if stage == "distilled" and side_by_side and stop_after != "distilled":
            overrides["baseline"] = _stage_overrides("baseline", presets["baseline"], out, data_root, arctic_root,
                                                     None, None, wandb)
            if not (reuse and _reusable(out / "baseline", overrides["baseline"])):
                # both students at once; their features are cached first, by this process, so they never race to it
                _parallel_datamodule(overrides[stage], prepare=True)
                pair = ("distilled", "baseline")
                times = fit_stages_side_by_side([(CONFIG_DIR / CONFIGS[s], overrides[s], out / s) for s in pair])
                for name, secs in zip(pair, times):
                    ckpts[name], seconds[name] = _last_checkpoint(out, name), secs
                trained.update(pair)
                together = True
                if stop_after in pair:
                    return _stopped(ckpts, seconds)
                continue
        if stage == "vocoder":
            if arctic_root is None:
                raise ValueError(f"the {preset_name} preset trains a WORLD vocoder on real CMU ARCTIC: give --arctic-root")
            dump_start = time.perf_counter()
            dump_converters({name: ckpts[name] for name in CONVERTERS}, arctic_root, data_root, out / "gta_predictions")
            seconds["gta_predictions"] = time.perf_counter() - dump_start
        ckpts[stage], seconds[stage] = _fit(stage, overrides[stage], out)
        trained.add(stage)
        if stage == stop_after:
            return _stopped(ckpts, seconds)
    train_seconds = time.perf_counter() - start
    students = {name: _student_figures(out / name) for name in ("distilled", "baseline")}
    teacher_val = [r for r in read_metrics(out / "teacher") if "val/diagonality" in r][-1]
    figures = [*_alignment_plots(out, overrides["distilled"]), _diagonality_plot(out, students)]
    eval_start = time.perf_counter()
    ev = presets["distilled"].get("reproduce", {})
    rows = evaluate_dev(out, overrides["distilled"], ckpts, eval_utterances or ev.get("eval_utterances"),
                        eval_workers or ev.get("eval_workers"))
    eval_seconds = time.perf_counter() - eval_start
    d, b = students["distilled"], students["baseline"]
    rd, rb = rows["distilled"], rows["baseline"]
    pretrain_data = presets["teacher_pretrain"]["data"]["init_args"]
    pairs_data = presets["distilled"]["data"]["init_args"]
    pretrain = ("CMU ARCTIC bdl + slt training prompts (autoencoder)" if _reads_arctic("teacher_pretrain", presets["teacher_pretrain"])
                else "LJSpeech (real)" if pretrain_data.get("source") == "real" else
                f"embedded LJSpeech-layout ({pretrain_data['embedded_size']} utt.)")
    if "teacher_pretrain_lj" in chain:
        pretrain = "LJSpeech, then " + pretrain
    report = {
        "preset": preset_name, "command": command,
        "data": {"pretrain": pretrain,
                 "pairs": f"CMU ARCTIC bdl->slt, real, {arctic_root}" if arctic_root else
                 ("CMU ARCTIC bdl->slt (real)" if pairs_data.get("source") == "real" else
                  f"embedded CMU ARCTIC-layout bdl->slt ({pairs_data['embedded_size']} prompts)"),
                 "split": pairs_data.get("split", "seeded"), "scored_utterances": rows["distilled"]["n"]},
        "students": students,
        "teacher": {"diagonality": teacher_val["val/diagonality"], "focus_rate": teacher_val["val/focus_rate"],
                    "cd_proxy_db": _cd_proxy(teacher_val),
                    "duration_ratio": teacher_val.get("val/duration_ratio"), **_frame_losses(teacher_val)},
        "vocoder": ("world-synthesis" if predicts(presets["distilled"]) == "world" else
                    "world" if "vocoder" in ckpts else "griffin-lim"),
        "targets": predicts(presets["distilled"]),
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
        "training_wall_seconds": train_seconds, "students_side_by_side": together,
        "wandb_run_ids": {stage: wandb_ids(out / stage) for stage in chain} if wandb else {},
        "figures": figures,
    }
    (out / "utterances.json").write_text(json.dumps({k: v["utterances"] for k, v in rows.items()}, indent=1))
    write_report(out, report, _markdown(report, presets))
    return report


def _reusable(run_dir: Path, overrides: dict) -> bool:
    import yaml

    ckpt, saved = run_dir / "checkpoints" / "last.ckpt", run_dir / "overrides.yaml"
    return ckpt.is_file() and saved.is_file() and yaml.safe_load(saved.read_text()) == overrides


def _compact(config: dict) -> str:
    """A preset's model block on one line (``net: {decoder: {...}}, training: {...}``)."""
    import yaml

    return yaml.safe_dump(config, default_flow_style=True, width=10**6, sort_keys=False).strip()


def _fmt(value: Any, digits: int = 3) -> str:  # the attention tables' three decimals
    return fmt(value, digits)


def _vocoder_text(report: dict) -> str:
    vocoder = report.get("vocoder", "griffin-lim")
    if vocoder == "griffin-lim":
        return ("Synthesised rows go through Griffin-Lim at the preset's AudioConfig, so the copy-synthesis row is the "
                "vocoder's share of every converted row's figures; the WORLD analysis-synthesis row is what a vocoder "
                "that keeps the recording's own F0 and envelope scores under these metrics.")
    if vocoder == "world-synthesis":
        return ("The converters predict slt's WORLD parameters (`zoo.world`: mel-cepstrum of order 39, interpolated "
                "log F0, band aperiodicity, voicing, at the mel hop), which WORLD synthesises directly (no vocoder "
                "network); the copy-synthesis row is slt's own parameters at that hop through the same synthesis (the "
                "synthesis's share of every converted row's figures), and the WORLD analysis-synthesis row the same "
                "at WORLD's own 5 ms frames.")
    return ("Synthesised rows go through the chain's WORLD vocoder (`zoo.models.world_vocoder`, stage `vocoder`: "
            "slt's training mels and each converter's ground-truth-aligned predictions of them -> WORLD parameters -> "
            "WORLD synthesis), so the copy-synthesis row is the vocoder's share of every converted row's figures; the "
            "WORLD analysis-synthesis row is what WORLD itself costs with the recording's own F0 and envelope.")


def _markdown(report: dict, presets: dict[str, dict]) -> str:
    s, e, rows = report["students"], report["effect"], report["rows"]
    cols = ("diagonality_epoch0", "focus_rate_epoch0", "diagonality", "focus_rate", "cd_proxy_db",
            "duration_ratio", "val_mel_loss", "val_mel_loss_previous_step_copy", "epochs", "steps_epoch0")
    lines = [
        f"# Attention distillation for seq2seq voice conversion ({report['preset']} preset)", "",
        f"Command: `{report['command']}`", "",
        f"Data: teacher pretraining on {report['data']['pretrain']}; pairs: {report['data']['pairs']} "
        f"({report['data']['split']} split). Total time {report['total_seconds'] / 60:.1f} min: training "
        f"{', '.join(f'{k} {v:.0f} s' for k, v in report['train_seconds'].items())}"
        f"{' (the students side by side, one process each)' if report.get('students_side_by_side') else ''}; evaluation "
        f"{report['eval_seconds']:.0f} s.", "",
        f"Teacher (fine-tuning stage): `{_compact(presets['teacher']['model']['init_args'])}`; students: "
        f"`{_compact(presets['distilled']['model']['init_args'])}` (the presets under `configs/presets/vc_*/"
        f"{report['preset']}.yaml`; each stage's exact settings in `OUT/<stage>/overrides.yaml`).", "",
        f"## Conversions on the validation (dev) split, {report['data']['scored_utterances']} utterances", "",
        "Every row scored against the natural target with the published ARCTIC protocol (`zoo.metrics.mcd`: WORLD "
        "Harvest/CheapTrick, SPTK mel-cepstrum order 39, alpha 0.466, c0 included, frames above -20 dB, fastdtw), "
        "DNSMOS P.835 (`speechmos`) and PocketSphinx WER/CER against the prompt (generic language model, not tuned). "
        "Harvest searches F0 in the target speaker's range (`zoo.metrics.mcd.F0_RANGES`). " + _vocoder_text(report), "",
        "| row | MCD dB | F0 RMSE Hz | F0 CORR | DDUR s | DNSMOS OVRL | SIG | BAK | WER % | CER % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    vocoder = VOCODER_NAMES[report.get("vocoder", "griffin-lim")]
    world = report.get("targets", "mel") == "world"
    titles = {"vocoder": vocoder, "frames": "WORLD parameters" if world else "mel",
              "frame": "WORLD-parameter frame" if world else "mel frame"}
    for name in rows:
        r = rows[name]
        undefined = {k: r[f"{k}_undefined"] for k in ("mcd_db", "f0_rmse_hz") if r.get(f"{k}_undefined")}
        note = f" ({', '.join(f'{k} undefined for {v}' for k, v in undefined.items())})" if undefined else ""
        lines.append(f"| {name}: {ROW_TITLES[name].format(**titles)}{note} | {_fmt(r['mcd_db'], 2)} | {_fmt(r['f0_rmse_hz'], 1)} | "
                     f"{_fmt(r['f0_corr'])} | {_fmt(r['ddur_s'])} | {_fmt(r['dnsmos_ovrl'], 2)} | "
                     f"{_fmt(r['dnsmos_sig'], 2)} | {_fmt(r['dnsmos_bak'], 2)} | {_fmt(r['wer'], 1)} | "
                     f"{_fmt(r['cer'], 1)} |")
    lines += [
        "", "Checkpoints scored: " + "; ".join(f"{k} `{v['checkpoint']}`" for k, v in rows.items() if v["checkpoint"])
        + "".join(f"; vocoder `{v}`" for v in {r.get("vocoder") for r in rows.values()} if v and v != "griffin-lim")
        + "; converted wavs under `wavs/<row>/`.", "",
        "## Attention", "",
        f"Both students: same seed, data, sizes and steps; the distilled one adds {_lambda_text(presets['distilled'])} x CE(teacher "
        "attention, student attention) to its loss" + _output_distillation_text(presets["distilled"])
        + " (no guided attention for either; the teacher had it). Focus rate "
        "and diagonality teacher-forced on the validation split; cd_proxy_db is the training-time cepstral distance ("
        + ("the fastdtw-aligned distance of the predicted and target mel-cepstra at the WORLD features' alpha, c0 "
           "left out" if world else "the log-mel cepstral distance, `zoo.metrics.mel_distance`")
        + "; not the MCD above) and duration_ratio predicted / target frames, both of free-running conversions."
        + (" The frame losses are on the standardised WORLD parameters." if world else ""), "",
        "| student | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
    ]
    for name in ("distilled", "baseline"):
        lines.append(f"| {name} | " + " | ".join(_fmt(s[name][c], 4 if c.startswith("val_mel") else 3) for c in cols)
                     + " |")
    t = report["teacher"]
    lines += [
        f"| (teacher) | | | {_fmt(t['diagonality'])} | {_fmt(t['focus_rate'])} | {_fmt(t['cd_proxy_db'])} | "
        f"{_fmt(t['duration_ratio'])} | {_fmt(t['val_mel_loss'], 4)} | {_fmt(t['val_mel_loss_previous_step_copy'], 4)} "
        "| | |", "",
        "val_mel_loss is the teacher-forced validation frame loss at the end of training (after the post-net); "
        "val_mel_loss_previous_step_copy the same loss of a decoder that only repeats the frame fed back to each step "
        "(`zoo.metrics.spectral.previous_step_copy`): a model at or above it has not yet learnt to use the source "
        "content its attention reads.", "",
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
    parser = reproduce_parser("attention-distillation", __doc__, PRESETS, "report folder (and every stage's run)")
    parser.add_argument("--data-root", default="data", help="where the embedded corpora (or the real datasets) live")
    parser.add_argument("--arctic-root", default=None,
                        help="a real CMU ARCTIC folder (holding cmu_us_bdl_arctic/, cmu_us_slt_arctic/) for the pairs; "
                             "the teacher still pretrains on the preset's LJSpeech-layout corpus")
    parser.add_argument("--student-epochs", type=int, default=None,
                        help="train both students this many epochs instead of the preset's (e.g. for the 100-prompt "
                             "real ARCTIC subset, whose epoch is only 10 steps)")
    parser.add_argument("--no-wandb", action="store_true", help="CSV logs only (no offline W&B runs)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a stage whose OUT/<stage>/checkpoints/last.ckpt exists, whose overrides.yaml equals "
                             "this run's and whose upstream stages were kept too (e.g. to rescore, or to finish a chain "
                             "that stopped)")
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
