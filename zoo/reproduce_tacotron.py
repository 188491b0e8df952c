"""``reproduce tacotron``: small Tacotron (r = 2) and Tacotron 2 trained on the embedded eSpeak LJSpeech corpus.

Each model trains through the zoo CLI from its config (``configs/tacotron.yaml``, ``configs/tacotron2.yaml``) plus
an override file written beside its results (``OUT/<model>/overrides.yaml``, the exact settings), for a fixed
wall-clock budget (``trainer.max_time``). Then, from each model's last checkpoint:

- **diagonality** and **focus rate** (``zoo.metrics.alignment``) of the teacher-forced validation alignments, and
  the same figures after every validation epoch of training (the curve vs optimiser step);
- **stops_ok**: how many of the first 5 test-split ("held-out") sentences, synthesised free-running, ended on the
  stop token (not the max-length guard) within +-30 % of the reference length; their Griffin-Lim wavs and
  alignment images are written to ``OUT/<model>/samples/`` by the models' own ``predict_step`` (``zoo.media.write_prediction``).

``OUT/report.json`` and ``OUT/report.md`` hold the figures, ``OUT/curve.png`` the curve and ``OUT/alignments.png``
the alignments.

    python -m zoo reproduce tacotron --preset demo --out OUT     # each model <= 15 minutes on a 2-core CPU
    python -m zoo reproduce tacotron --preset tiny --out OUT     # seconds: the test suite's end-to-end run
"""

from __future__ import annotations

import math
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from zoo.media import write_prediction
from zoo.report import write_report
from zoo.reproduce_common import (
    CONFIG_DIR, fit_stage, load_preset, merge_configs, preset_names, read_metrics, reproduce_parser,
    stage_datamodule, stage_loggers, wandb_ids,
)

MODELS = ("tacotron", "tacotron2")
CONFIGS = {"tacotron": "tacotron.yaml", "tacotron2": "tacotron2.yaml"}
HELD_OUT = 5  # sentences of the test split synthesised free-running
LENGTH_TOLERANCE = 0.3  # a stop counts when |predicted / reference frames - 1| <= this

PRESETS = tuple(preset_names("tacotron"))  # configs/presets/<model>/<preset>.yaml, one file per model and preset


def _overrides(name: str, preset: str, out: Path, data_root: str, wandb: bool) -> dict:
    """The override config of one model's run: its preset (``configs/presets/<model>/<preset>.yaml``) with this run's
    folders and loggers merged over it (the CLI merges the result over ``configs/<model>.yaml``)."""
    run_dir = out / name
    loggers = stage_loggers(run_dir, f"reproduce-tacotron-{name}", wandb)
    trainer = {
        "accelerator": "cpu", "devices": 1, "default_root_dir": str(run_dir), "enable_progress_bar": False,
        "num_sanity_val_steps": 0, "log_every_n_steps": 5, "logger": loggers,
        # the media callbacks are replaced by the report's own plots; the last checkpoint is the one scored
        "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                       # one file, overwritten at the end of every training epoch (also the one max_time cuts short)
                       "init_args": {"dirpath": str(run_dir / "checkpoints"), "filename": "last", "save_top_k": 1,
                                     "save_on_train_epoch_end": True}}],
    }
    data = {"root": data_root, "num_workers": 0, "progress": False}
    return merge_configs(load_preset(name, preset), {"trainer": trainer, "data": {"init_args": data}})


def _fit(name: str, overrides: dict, out: Path) -> tuple[Path, float]:
    seconds = fit_stage(CONFIG_DIR / CONFIGS[name], overrides, out / name)
    ckpt = out / name / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise RuntimeError(f"training {name} left no checkpoint at {ckpt}")
    return ckpt, seconds


def _val_curve(run_dir: Path) -> list[dict[str, float]]:
    """(step, diagonality, focus rate, val loss) after every validation epoch of the run."""
    rows = read_metrics(run_dir)
    return [{"epoch": int(r["epoch"]), "step": int(r["step"]) + 1, "diagonality": r["val/diagonality"],
             "focus_rate": r["val/focus_rate"], "loss": r["val/loss"]} for r in rows if "val/diagonality" in r]


def _datamodule(name: str, overrides: dict):
    return stage_datamodule(CONFIG_DIR / CONFIGS[name], overrides, prepare=True)


def _load(name: str, ckpt: Path) -> Any:
    from zoo.checkpoints import load_experiment

    cls = f"zoo.models.tacotron.{'Tacotron' if name == 'tacotron' else 'Tacotron2'}"
    return load_experiment(ckpt, {cls: name}, name)


@torch.no_grad()
def _evaluate(name: str, ckpt: Path, overrides: dict, out: Path) -> dict[str, Any]:
    """Teacher-forced figures on the whole validation split, and free-running synthesis of the held-out sentences."""
    from zoo.metrics.alignment import diagonality, focus_rate
    from zoo.sequence import decoder_steps

    model = _load(name, ckpt)
    dm = _datamodule(name, overrides)
    torch.manual_seed(0)  # the pre-net's dropout stays on at inference: fix what it draws
    r = model.reduction_factor
    sums, n = {"diagonality": 0.0, "focus_rate": 0.0}, 0
    for batch in dm.val_dataloader():
        out_tf = model.net(batch.text, batch.text_lengths, batch.mel, batch.mel_lengths, 1.0)
        dec = decoder_steps(batch.mel_lengths, r)
        size = len(batch.ids)
        sums["diagonality"] += float(diagonality(out_tf.alignments, dec, batch.text_lengths)) * size
        sums["focus_rate"] += float(focus_rate(out_tf.alignments, dec, batch.text_lengths)) * size
        n += size
    figures: dict[str, Any] = {k: v / n for k, v in sums.items()} | {"val_utterances": n}

    held = dm.media_batch(HELD_OUT, "test")
    guard = math.ceil(model.training_config.max_decoder_frames / r) * r
    # Griffin-Lim wav + alignment png per sentence in OUT/<model>/samples/
    results = [write_prediction(out / name / "samples", p) for p in model.predict_step(held, 0)]
    stops = []
    for res, ref in zip(results, held.mel_lengths.tolist()):
        stopped = res["frames"] < guard
        ratio = res["frames"] / ref
        stops.append({"id": res["id"], "frames": res["frames"], "reference_frames": int(ref), "ratio": ratio,
                      "stopped": stopped, "ok": stopped and abs(ratio - 1.0) <= LENGTH_TOLERANCE,
                      "wav": str(Path(res["wav"]).relative_to(out))})
    figures["stops_ok"] = sum(s["ok"] for s in stops)
    figures["held_out"] = len(stops)
    figures["stops"] = stops
    figures["parameters"] = sum(p.numel() for p in model.parameters())
    return figures


@torch.no_grad()
def _alignment_plot(out: Path, overrides: dict[str, dict], ckpts: dict[str, Path]) -> str:
    """Per model: the teacher-forced alignment of the first validation utterance and the free-running one of the
    first held-out sentence."""
    from zoo.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(len(ckpts), 2, figsize=(12, 3.6 * len(ckpts)), squeeze=False)
    for row, (name, ckpt) in enumerate(ckpts.items()):
        model = _load(name, ckpt)
        dm = _datamodule(name, overrides[name])
        torch.manual_seed(0)
        val = dm.media_batch(1, "val")
        tf = model.net(val.text, val.text_lengths, val.mel, val.mel_lengths, 1.0).alignments[0]  # (N, T_enc)
        test = dm.media_batch(1, "test")
        fr = model.synthesize(test.text, test.text_lengths)
        steps = math.ceil(int(fr.lengths[0]) / model.reduction_factor)
        panels = ((f"{name}: teacher-forced, validation {val.ids[0]}", tf),
                  ((f"{name}: free-running, held-out {test.ids[0]} ({int(fr.lengths[0])} frames, "
                   f"reference {int(test.mel_lengths[0])})"), fr.alignments[0, :steps]))
        for ax, (title, align) in zip(axes[row], panels):
            ax.imshow(align.float().T.numpy(), aspect="auto", origin="lower", interpolation="none")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("decoder step")
            ax.set_ylabel("encoder step (character)")
    save_figure(fig, out / "alignments.png")
    return "alignments.png"


def _curve_plot(out: Path, models: dict[str, dict]) -> str:
    from zoo.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key, target in ((axes[0], "diagonality", 0.7), (axes[1], "focus_rate", 0.5)):
        for name, m in models.items():
            ax.plot([c["step"] for c in m["curve"]], [c[key] for c in m["curve"]], marker=".", label=name)
        ax.axhline(target, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(f"validation {key.replace('_', ' ')} (teacher-forced)")
        ax.set_ylim(0, 1)
        ax.legend()
    save_figure(fig, out / "curve.png")
    return "curve.png"


def run(preset_name: str, out: Path, data_root: str = "data", wandb: bool = True, command: str = "",
        models: tuple[str, ...] = MODELS) -> dict:
    if preset_name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, but got {preset_name!r}")
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"models must be a non-empty subset of {MODELS}, but got {list(models)}")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    overrides, ckpts, report_models = {}, {}, {}
    for name in models:
        overrides[name] = _overrides(name, preset_name, out, data_root, wandb)
        ckpts[name], seconds = _fit(name, overrides[name], out)
        figures = _evaluate(name, ckpts[name], overrides[name], out)
        saved = torch.load(ckpts[name], map_location="cpu", weights_only=False)
        settings = overrides[name]["model"]["init_args"]
        training = settings.get("training", {})
        report_models[name] = {
            "diagonality": figures.pop("diagonality"), "focus_rate": figures.pop("focus_rate"),
            "stops_ok": figures.pop("stops_ok"), **figures,
            "reduction_factor": model_net(settings)["decoder"]["reduction_factor"],
            "guided_attention_weight": training["guided_attention_weight"],
            "global_step": saved["global_step"], "epochs": saved["epoch"] + 1, "train_seconds": seconds,
            "curve": _val_curve(out / name),
            "wandb_run_ids": wandb_ids(out / name) if wandb else [],
        }
    images = [_curve_plot(out, report_models), _alignment_plot(out, overrides, ckpts)]
    first = overrides[models[0]]
    data = first["data"]["init_args"]
    report: dict[str, Any] = {
        "preset": preset_name, "command": command,
        "data": f"embedded eSpeak LJSpeech-layout corpus ({data['embedded_size']} utt.), AudioConfig {data['audio']}",
        **report_models,
        "criteria": {name: {"diagonality_at_least_0.7": m["diagonality"] >= 0.7,
                            "focus_rate_at_least_0.5": m["focus_rate"] >= 0.5,
                            "stops_ok_at_least_4_of_5": m["stops_ok"] >= 4,
                            "trained_under_15_min": m["train_seconds"] < 15 * 60}
                     for name, m in report_models.items()},
        "sizes": {name: model_net(overrides[name]["model"]["init_args"]) for name in models},
        # the training settings both presets share (the report's header), then each model's own
        "training": {"reduction_factor": model_net(first["model"]["init_args"])["decoder"]["reduction_factor"],
                     **{k: v for k, v in first["model"]["init_args"].get("training", {}).items()
                        if k != "max_decoder_frames"}},
        "total_seconds": time.perf_counter() - start, "images": images,
    }
    write_report(out, report, _markdown(report, models))
    return report


def _markdown(report: dict, models: tuple[str, ...]) -> str:
    lines = [
        f"# Tacotron and Tacotron 2, small, on the embedded corpus ({report['preset']} preset)", "",
        f"Command: `{report['command']}`", "",
        (f"Data: {report['data']}. Both models: {_plain(report['training'])} (guided attention loss on, reduction "
        f"factor r = {report['training']['reduction_factor']}). Total time {report['total_seconds'] / 60:.1f} min."), "",
        ("Diagonality and focus rate: validation split, teacher-forced, last checkpoint. stops ok: held-out (test-split) "
        f"sentences whose free-running synthesis ended on the stop token within ±{LENGTH_TOLERANCE:.0%} of the "
        "reference length."), "",
        "| model | parameters | steps | training | diagonality | focus rate | stops ok |", "|---|---|---|---|---|---|---|",
    ]
    for name in models:
        m = report[name]
        lines.append(f"| {name} | {m['parameters'] / 1e6:.2f} M | {m['global_step']} ({m['epochs']} epochs) | "
                     f"{m['train_seconds'] / 60:.1f} min | {m['diagonality']:.3f} | {m['focus_rate']:.3f} | "
                     f"{m['stops_ok']} / {m['held_out']} |")
    lines.append("")
    for name in models:
        m, c = report[name], report["criteria"][name]
        lines += [f"## {name}", "", f"Sizes: {_plain(report['sizes'][name])}.", "",
                  "Criteria: " + "; ".join(f"{k} {'yes' if v else 'no'}" for k, v in c.items()) + ".", "",
                  ("Held-out sentences (free-running; Griffin-Lim wavs and alignment images in "
                  f"`{name}/samples/`):"), "",
                  "| id | frames | reference | ratio | stop token | ok |", "|---|---|---|---|---|---|",
                  *[f"| {s['id']} | {s['frames']} | {s['reference_frames']} | {s['ratio']:.2f} | "
                    f"{'yes' if s['stopped'] else 'no (guard)'} | {'yes' if s['ok'] else 'no'} |" for s in m["stops"]], "",
                  "Validation after each epoch (teacher-forced):", "",
                  "| epoch | step | val loss | diagonality | focus rate |", "|---|---|---|---|---|",
                  *[f"| {c['epoch']} | {c['step']} | {c['loss']:.3f} | {c['diagonality']:.3f} | {c['focus_rate']:.3f} |"
                    for c in m["curve"]], ""]
        if m["wandb_run_ids"]:
            lines += [f"W&B run (offline unless credentials were configured; `wandb sync {name}/wandb/offline-run-*`): "
                      + ", ".join(m["wandb_run_ids"]), ""]
    lines += [f"![{name}]({name})" for name in report["images"]] + [""]
    return "\n".join(lines)


def model_net(init_args: dict) -> dict:
    return init_args.get("net", {})


def _plain(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items())


def main(argv: list[str] | None = None) -> None:
    parser = reproduce_parser("tacotron", __doc__, PRESETS, "report folder (and each model's run)")
    parser.add_argument("--data-root", default="data", help="where the embedded corpus is generated (default: data)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="train and report only these (default: both)")
    parser.add_argument("--no-wandb", action="store_true", help="CSV logs only (no offline W&B runs)")
    args = parser.parse_args(argv)
    command = "python -m zoo reproduce tacotron " + shlex.join(argv if argv is not None else [])
    run(args.preset, args.out, args.data_root, wandb=not args.no_wandb, command=command.strip(),
        models=tuple(args.models))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
