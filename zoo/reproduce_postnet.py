"""``reproduce postnet``: the pix2pix spectrogram post-net, trained on blurred mels and scored on whole utterances.

Trains ``configs/postnet_pix2pix.yaml`` through the zoo CLI on the embedded eSpeak LJSpeech corpus, with the
DataModule's built-in degradation (``datamodules.postnet.degrade_mel``) making the blurry inputs, for a fixed
time budget, keeping the checkpoint with the best validation L1 (``val/loss``). That checkpoint then polishes
every validation utterance whole, and ``OUT/report.json`` / ``OUT/report.md`` give the L1 to the truth and the
global-variance ratio (``zoo.metrics.spectral``; 1.0 is ideal, blurry is below 1) of the input, the output and
the truth, averaged over utterances, with triptych images (input / output / truth) beside them. The exact
settings of the run are ``OUT/train/overrides.yaml`` (merged over the config by the CLI).

    python -m zoo reproduce postnet --preset demo --out OUT     # <= 15 minutes on a 2-core CPU
    python -m zoo reproduce postnet --preset tiny --out OUT     # seconds: the test suite's end-to-end run

On an upstream model's real outputs (the blog's setting): ``--upstream VC_CKPT --arctic-root DIR`` dumps the
voice-conversion checkpoint's teacher-forced predictions on CMU ARCTIC (frame-aligned with the truth, the standard
split fixed in the ``pairs_dir`` index: train on train, report on dev), trains the post-net on them with 64x64 crops
that skip padded silence, and scores on dev: L1 and global variance (teacher-forced, input vs output), and the
field's MCD / F0 / DNSMOS / WER of free-running conversions with and without the post-net through Griffin-Lim.
The PatchGAN has 2 layers there: its 34x34 receptive field makes it a patch discriminator on 64x64 crops, where the
published 3 layers (70x70) would see every crop whole; the generator is residual (x + UNet(x), starting as the
identity), since its input is already an L1-trained estimate of the target, with λ_adv 0.1 and a global-variance
loss (λ_GV 20) beside λ_L1 100.

    python -m zoo reproduce postnet --preset demo --upstream OUT_VC/teacher/checkpoints/last.ckpt \
        --arctic-root ../shared/data/cmu_arctic --data-root DIR --out OUT
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from zoo.metrics.spectral import masked_l1
from zoo.report import fmt, write_report
from zoo.reproduce_common import (
    CONFIG_DIR, fit_stage, load_preset, merge_configs, preset_names, read_metrics, reproduce_parser,
    stage_datamodule,
)

CONFIG = CONFIG_DIR / "postnet_pix2pix.yaml"
# configs/presets/postnet_pix2pix/<preset>.yaml; with --upstream, configs/presets/postnet_pix2pix_upstream/<preset>.yaml
# is merged over it
PRESETS = tuple(preset_names("postnet_pix2pix"))


def _overrides(preset: dict, out: Path, data_root: str) -> dict:
    """The override config of the training run: the preset with this run's folders, logger and data root merged over
    it (the CLI merges the result over ``configs/postnet_pix2pix.yaml``)."""
    run_dir = out / "train"
    trainer = {
        "accelerator": "cpu", "devices": 1, "default_root_dir": str(run_dir), "enable_progress_bar": False,
        "num_sanity_val_steps": 0, "log_every_n_steps": 10,
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                   "init_args": {"save_dir": str(run_dir), "name": "csv", "version": ""}},
        # Media callbacks are replaced by the report's triptychs; the best checkpoint is the one scored.
        "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                       "init_args": {"dirpath": str(run_dir / "checkpoints"), "monitor": "val/loss", "mode": "min",
                                     "save_top_k": 1, "save_last": True, "filename": "best-{epoch}-{step}"}}],
    }
    data = {"root": data_root, "num_workers": 0, "progress": False}
    return merge_configs(preset, {"trainer": trainer, "data": {"init_args": data}})


def _fit(overrides: dict, out: Path) -> tuple[Path, float]:
    run_dir = out / "train"
    seconds = fit_stage(CONFIG, overrides, run_dir)
    best = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
    if len(best) != 1:
        raise RuntimeError(f"expected one best checkpoint in {run_dir / 'checkpoints'}, found {[p.name for p in best]}")
    return best[0], seconds


def _val_by_epoch(run_dir: Path) -> list[dict[str, float]]:
    rows = read_metrics(run_dir)
    keys = ("epoch", "step", "val/l1_input", "val/l1_output", "val/gv_ratio_input", "val/gv_ratio_output")
    return [{k: r[k] for k in keys} for r in rows if "val/l1_output" in r]


@torch.no_grad()
def _evaluate(ckpt: Path, overrides: dict, split: str) -> tuple[dict[str, Any], list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Mean over the utterances of ``split`` (val or test) of L1 and GV ratio for input, output and truth, and every
    utterance's (id, input, output, truth), each (T, n_mels), sorted by id."""
    from zoo.metrics.spectral import global_variance_ratio
    from zoo.checkpoints import load_experiment

    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', but got {split!r}")

    model = load_experiment(ckpt, {"zoo.models.pix2pix.Pix2PixPostnet": "a post-net"}, "the post-net")
    dm = stage_datamodule(CONFIG, overrides, prepare=True)
    sums = {name: {"l1": 0.0, "gv_ratio": 0.0} for name in ("input", "output", "truth")}
    examples, n = [], 0
    loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
    for batch in loader:
        lengths = batch.mel_lengths
        out = model.polish(batch.mel_input, lengths)  # (B, T, n_mels), whole utterances
        for name, mel in (("input", batch.mel_input), ("output", out), ("truth", batch.mel_target)):
            sums[name]["l1"] += float(masked_l1(mel, batch.mel_target, lengths).sum())
            sums[name]["gv_ratio"] += float(global_variance_ratio(mel, batch.mel_target, lengths).sum())
        for i, utt_id in enumerate(batch.ids):
            t = int(lengths[i])
            examples.append((utt_id, batch.mel_input[i, :t], out[i, :t], batch.mel_target[i, :t]))
        n += len(batch.ids)
    figures = {name: {k: v / n for k, v in terms.items()} for name, terms in sums.items()}
    return figures | {"num_utterances": n}, sorted(examples, key=lambda e: e[0])


def _triptych(path: Path, utt_id: str, panels: tuple[torch.Tensor, torch.Tensor, torch.Tensor], l1: tuple[float, float]) -> None:
    from zoo.plotting import pyplot, save_figure

    plt = pyplot()
    titles = (f"input (blurry), L1 {l1[0]:.4f}", f"output (pix2pix), L1 {l1[1]:.4f}", "truth")
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.6))
    for ax, title, mel in zip(axes, titles, panels):
        ax.imshow(mel.float().numpy().T, aspect="auto", origin="lower", interpolation="none", vmin=0.0, vmax=1.0)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("mel bin")
    axes[-1].set_xlabel("frame")
    fig.suptitle(f"validation utterance {utt_id}", fontsize=10)
    save_figure(fig, path)


def _triptychs(out: Path, examples: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]) -> list[str]:
    """``OUT/triptych_<id>.png`` (input / output / truth, with both L1s) for each (id, input, output, truth)."""
    images = []
    for utt_id, inp, output, truth in examples:
        lengths = torch.tensor([inp.shape[0]])
        l1 = tuple(float(masked_l1(m[None], truth[None], lengths)) for m in (inp, output))
        name = f"triptych_{utt_id}.png"
        _triptych(out / name, utt_id, (inp, output, truth), l1)  # type: ignore[arg-type]
        images.append(name)
    return images


def run(preset_name: str, out: Path, data_root: str = "data", command: str = "") -> dict:
    preset = load_preset("postnet_pix2pix", preset_name)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    overrides = _overrides(preset, out, data_root)
    ckpt, train_seconds = _fit(overrides, out)
    figures, examples = _evaluate(ckpt, overrides, "val")
    # The checkpoint was chosen on the validation utterances; the test ones were seen by neither training nor choice.
    test, _ = _evaluate(ckpt, overrides, "test")
    images = _triptychs(out, examples[: preset["reproduce"]["triptychs"]])
    gv_in, gv_out = figures["input"]["gv_ratio"], figures["output"]["gv_ratio"]
    gap_closed = 1.0 - abs(1.0 - gv_out) / abs(1.0 - gv_in) if gv_in != 1.0 else float("nan")
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    report = {
        "input": figures["input"], "output": figures["output"], "truth": figures["truth"],
        "criteria": {"gv_gap_closed_fraction": gap_closed, "gv_closes_half_the_gap": gap_closed >= 0.5,
                     "l1_no_worse_than_input": figures["output"]["l1"] <= figures["input"]["l1"]},
        "test": {k: test[k] for k in ("input", "output", "truth", "num_utterances")},
        "preset": preset_name, "command": command,
        "data": f"embedded eSpeak LJSpeech-layout corpus ({preset['data']['init_args'].get('embedded_size', 200)} utt.), "
                f"built-in degradation; scored on the {figures['num_utterances']} validation utterances, whole",
        "num_utterances": figures["num_utterances"],
        "checkpoint": {"path": str(ckpt), "epoch": saved["epoch"], "global_step": saved["global_step"]},
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - start,
        "overrides": overrides, "val_by_epoch": _val_by_epoch(out / "train"), "images": images,
    }
    write_report(out, report, _markdown(report))
    return report


# --- an upstream voice-conversion model's outputs --------------------------------------------------------------

@torch.no_grad()
def dump_upstream(upstream: Path, arctic_root: str, data_root: str, folder: Path, split: str = "standard",
                  batch_size: int = 16) -> tuple[Any, dict[str, int]]:
    """Teacher-forced predictions of a VoiceConversion checkpoint on the ARCTIC pairs of its own front end, written
    as a ``pairs_dir`` (``inputs/<id>.npy`` prediction, ``targets/<id>.npy`` truth, both (T_target, n_mels), and an
    index whose split column keeps the corpus split). Returns (the VC model, pairs per split)."""
    import numpy as np

    import datamodules
    from datamodules.postnet import write_pairs_index
    from datamodules.speech import collate_parallel
    from zoo.models.vc import load_model

    model = load_model(upstream)
    if model.target_features != "mel":
        from zoo.errors import StageMismatchError

        raise StageMismatchError(f"the voice-conversion model {upstream} predicts {model.target_features} features, "
                                 "not mels: its outputs cannot train a mel post-net or a mel vocoder (it is heard "
                                 "through WORLD synthesis directly; retrain it with --data.target_features mel)")
    dm = datamodules.CMUArcticDataModule(source="real", root=arctic_root, download=False, audio=model.audio,
                                         mode="parallel", split=split, cache_dir=str(Path(data_root) / "feature_cache"),
                                         progress=False)
    dm.prepare_data()
    dm.setup("fit")
    for sub in ("inputs", "targets"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rows, counts = [], {}
    torch.manual_seed(0)  # the decoder's pre-net keeps dropout on at inference (Tacotron 2): a fixed draw
    for name in ("train", "val"):
        ds = dm.datasets[name]
        counts[name] = len(ds)
        for start in range(0, len(ds), batch_size):
            batch = collate_parallel([ds[i] for i in range(start, min(start + batch_size, len(ds)))], 0)
            out = model.net(batch.src_mel, batch.src_lengths, batch.tgt_mel, batch.tgt_lengths)
            for i, utt_id in enumerate(batch.ids):
                t = int(batch.tgt_lengths[i])
                np.save(folder / "inputs" / f"{utt_id}.npy", out.mel_postnet[i, :t].clamp(0, 1).float().numpy())
                np.save(folder / "targets" / f"{utt_id}.npy", batch.tgt_mel[i, :t].float().numpy())
                rows.append((utt_id, f"inputs/{utt_id}.npy", f"targets/{utt_id}.npy", name))
    write_pairs_index(folder, rows)
    return model, counts


def _score_free_running(out: Path, model: Any, postnet_ckpt: Path, arctic_root: str, data_root: str, split: str,
                        n_utterances: int, workers: int | None) -> dict[str, dict]:
    """Dev sources converted free-running by the upstream model, with and without the post-net, through Griffin-Lim
    at its AudioConfig, scored against the natural target (plus natural and copy-synthesis reference rows)."""
    import datamodules
    from zoo.audio import griffin_lim_wav, save_wav
    from zoo.evaluation import Scorer
    from zoo.metrics.mcd import F0_RANGES
    from zoo.pipeline import Postnet, VoiceConverter
    from zoo.reproduce_common import natural_16k

    dm = datamodules.CMUArcticDataModule(source="real", root=arctic_root, download=False, audio=model.audio,
                                         mode="parallel", split=split, cache_dir=str(Path(data_root) / "feature_cache"),
                                         progress=False)
    dm.setup("fit")
    val = dm.datasets["val"]
    pairs = val.pairs[:n_utterances]
    converter = VoiceConverter(model, device="cpu")
    torch.manual_seed(0)
    converted = [mel for mel, _, _ in converter.convert_mels([val.src_store.get(s.id, "mel") for s, _ in pairs])]
    polished = Postnet.from_checkpoint(postnet_ckpt, device="cpu").polish(converted)
    mels = {"target_copy_synthesis": [val.tgt_store.get(t.id, "mel") for _, t in pairs],
            "converted": converted, "converted_postnet": polished}
    sources: dict[str, dict[str, Any]] = {"target_natural": {t.id: natural_16k(t.wav_path, model.audio.sample_rate)
                                                             for _, t in pairs}}
    for row, row_mels in mels.items():
        folder = out / "wavs" / row
        folder.mkdir(parents=True, exist_ok=True)
        sources[row] = {}
        for (_, t), mel in zip(pairs, row_mels):
            save_wav(folder / f"{t.id}.wav", griffin_lim_wav(mel, model.audio), model.audio.sample_rate)
            sources[row][t.id] = folder / f"{t.id}.wav"
    texts = {t.id: t.text for _, t in pairs}
    with Scorer(sources["target_natural"], texts, F0_RANGES.get(dm.target_speaker, (60.0, 400.0)), workers) as scorer:
        return {row: {k: v for k, v in scorer.score(src).items() if k != "utterances"} for row, src in sources.items()}


def run_upstream(preset_name: str, out: Path, upstream: Path, arctic_root: str, data_root: str = "data",
                 command: str = "", split: str = "standard", eval_utterances: int | None = None,
                 eval_workers: int | None = None, lambda_adversarial: float | None = None,
                 lambda_gv: float | None = None) -> dict:
    """The post-net on ``upstream``'s teacher-forced ARCTIC outputs; writes ``OUT/report.{json,md}``."""
    import dataclasses

    preset = merge_configs(load_preset("postnet_pix2pix", preset_name), load_preset("postnet_pix2pix_upstream", preset_name))
    root = Path(arctic_root)
    arctic_root = str(root.parent if root.name == "cmu_arctic" else root)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model, counts = dump_upstream(upstream, arctic_root, data_root, out / "pairs", split)
    overrides = _overrides(preset, out, data_root)
    overrides["data"]["init_args"] = {
        **{k: v for k, v in overrides["data"]["init_args"].items() if k not in ("source", "root", "embedded_size")},
        "pairs_dir": str(out / "pairs"), "audio": dataclasses.asdict(model.audio)}
    for name, value in (("lambda_adversarial", lambda_adversarial), ("lambda_gv", lambda_gv)):
        if value is not None:
            overrides = merge_configs(overrides, {"model": {"init_args": {"training": {name: value}}}})
    ckpt, train_seconds = _fit(overrides, out)
    figures, examples = _evaluate(ckpt, overrides, "val")
    images = _triptychs(out, examples[: preset["reproduce"]["triptychs"]])
    rows = _score_free_running(out, model, ckpt, arctic_root, data_root, split,
                               eval_utterances or preset["reproduce"]["eval_utterances"], eval_workers)
    gv_in, gv_out = figures["input"]["gv_ratio"], figures["output"]["gv_ratio"]
    from zoo.nn.pix2pix import patchgan_receptive_field

    from zoo.checkpoints import checkpoint_arguments
    from zoo.models.pix2pix import Pix2PixPostnet

    trained = checkpoint_arguments(Pix2PixPostnet, ckpt, "the post-net")  # what was trained
    net, training = trained["net"], trained["training"]
    layers = net.discriminator.layers
    losses = {"lambda_l1": training.lambda_l1, "lambda_adversarial": training.lambda_adversarial,
              "lambda_gv": training.lambda_gv, "residual": net.generator.residual}
    report = {
        "preset": preset_name, "command": command, "upstream": str(upstream),
        "data": f"CMU ARCTIC {arctic_root}, {split} split: {counts['train']} training pairs, scored on "
                f"{figures['num_utterances']} dev utterances (teacher-forced) and {rows['converted']['n']} (free-running)",
        "input": figures["input"], "output": figures["output"], "truth": figures["truth"],
        "criteria": {"gv_gap_input": abs(1 - gv_in), "gv_gap_output": abs(1 - gv_out),
                     "gv_gap_at_most_half_the_input": abs(1 - gv_out) <= 0.5 * abs(1 - gv_in),
                     "l1_no_worse_than_input": figures["output"]["l1"] <= figures["input"]["l1"],
                     "mcd_no_worse": rows["converted_postnet"]["mcd_db"] <= rows["converted"]["mcd_db"]},
        "discriminator": {"layers": layers, "receptive_field": patchgan_receptive_field(layers),
                          "crop": list(reversed(_crop(overrides)))},
        "free_running": rows, "generator": losses,
        "checkpoint": str(ckpt), "train_seconds": train_seconds, "total_seconds": time.perf_counter() - start,
        "overrides": overrides, "val_by_epoch": _val_by_epoch(out / "train"), "images": images,
    }
    write_report(out, report, _upstream_markdown(report))
    return report


def _crop(overrides: dict) -> tuple[int, int]:
    spec = yaml.safe_load(CONFIG.read_text())["data"]["init_args"]
    data = {**spec, **overrides["data"]["init_args"]}
    return data["crop_bins"], data["crop_frames"]


def _upstream_markdown(report: dict) -> str:
    c, d, g = report["criteria"], report["discriminator"], report["generator"]
    rows = [("upstream teacher-forced prediction (input)", report["input"]), ("**post-net output**", report["output"]),
            ("truth", report["truth"])]
    fr = report["free_running"]

    lines = [
        f"# pix2pix post-net on an upstream voice-conversion model's outputs ({report['preset']} preset)", "",
        f"Command: `{report['command']}`", "",
        f"Upstream: `{report['upstream']}`. Data: {report['data']}. PatchGAN: {d['layers']} layers, receptive field "
        f"{d['receptive_field']}x{d['receptive_field']} on {d['crop'][0]}x{d['crop'][1]} crops. Training "
        f"{report['train_seconds'] / 60:.1f} min, total {report['total_seconds'] / 60:.1f} min.", "",
        f"Generator: {'residual, x + UNet(x)' if g['residual'] else 'UNet'}; L_G = {g['lambda_l1']:g}·L1 + "
        f"{g['lambda_adversarial']:g}·adversarial + {g['lambda_gv']:g}·GV loss.", "",
        "## Teacher-forced dev predictions, whole utterances", "",
        "| | L1 to truth ↓ | global-variance ratio (1.0 ideal) |", "|---|---|---|",
        *[f"| {name} | {r['l1']:.4f} | {r['gv_ratio']:.3f} |" for name, r in rows], "",
        f"GV gap |1 − ratio|: input {c['gv_gap_input']:.3f}, output {c['gv_gap_output']:.3f} (at most half the input's: "
        f"{'yes' if c['gv_gap_at_most_half_the_input'] else 'no'}); output L1 no worse than the input's: "
        f"{'yes' if c['l1_no_worse_than_input'] else 'no'}.", "",
        "## Free-running dev conversions through Griffin-Lim, the field's metrics", "",
        "| row | MCD dB | F0 RMSE Hz | DNSMOS OVRL | WER % | CER % |", "|---|---|---|---|---|---|",
        *[f"| {row} | {fmt(fr[row]['mcd_db'])} | {fmt(fr[row]['f0_rmse_hz'], 1)} | {fmt(fr[row]['dnsmos_ovrl'])} | "
          f"{fmt(fr[row]['wer'], 1)} | {fmt(fr[row]['cer'], 1)} |" for row in fr], "",
        f"MCD with the post-net no worse than without: {'yes' if c['mcd_no_worse'] else 'no'}.", "",
        *[f"![{name}]({name})" for name in report["images"]], "",
    ]
    return "\n".join(lines)


def _markdown(report: dict) -> str:
    c = report["criteria"]
    rows = [("blurry input", report["input"]), ("**output**", report["output"]), ("truth", report["truth"])]
    lines = [
        f"# pix2pix spectrogram post-net ({report['preset']} preset)", "",
        f"Command: `{report['command']}`", "",
        f"Data: {report['data']}. Checkpoint: best validation L1, epoch {report['checkpoint']['epoch']} "
        f"({report['checkpoint']['global_step']} optimiser steps, both nets). Training {report['train_seconds'] / 60:.1f} min, "
        f"total {report['total_seconds'] / 60:.1f} min.", "",
        "| | L1 to truth ↓ | global-variance ratio (1.0 ideal) |", "|---|---|---|",
        *[f"| {name} | {r['l1']:.4f} | {r['gv_ratio']:.3f} |" for name, r in rows], "",
        f"Criteria: GV gap to 1 closed by {c['gv_gap_closed_fraction']:.0%} (needs ≥ 50%: "
        f"{'yes' if c['gv_closes_half_the_gap'] else 'no'}); output L1 no worse than the input's: "
        f"{'yes' if c['l1_no_worse_than_input'] else 'no'}.", "",
        f"Test utterances ({report['test']['num_utterances']}, used neither for training nor to choose the checkpoint): "
        + "; ".join(f"{k} L1 {report['test'][k]['l1']:.4f}, GV ratio {report['test'][k]['gv_ratio']:.3f}"
                    for k in ("input", "output")) + ".", "",
        "Validation after each epoch (mean over utterances):", "",
        "| epoch | batches | L1 input | L1 output | GV input | GV output |", "|---|---|---|---|---|---|",
        *[f"| {int(r['epoch'])} | {int(r['step']) + 1} | {r['val/l1_input']:.4f} | {r['val/l1_output']:.4f} | {r['val/gv_ratio_input']:.3f} | "
          f"{r['val/gv_ratio_output']:.3f} |" for r in report["val_by_epoch"]], "",
        *[f"![{name}]({name})" for name in report["images"]], "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = reproduce_parser("postnet", __doc__, PRESETS, "report folder (and the training run)")
    parser.add_argument("--data-root", default="data", help="where the embedded corpus is generated (default: data)")
    parser.add_argument("--upstream", type=Path, default=None,
                        help="a VoiceConversion checkpoint: train on its teacher-forced ARCTIC outputs (needs --arctic-root)")
    parser.add_argument("--arctic-root", default=None, help="a real CMU ARCTIC folder (holding cmu_us_bdl_arctic/, ...)")
    parser.add_argument("--split", choices=["standard", "seeded"], default="standard",
                        help="the ARCTIC split with --upstream (default: the standard one; train on train, report on dev)")
    parser.add_argument("--eval-utterances", type=int, default=None, help="free-running dev utterances to score")
    parser.add_argument("--eval-workers", type=int, default=None, help="processes for scoring (default: 2)")
    parser.add_argument("--lambda-adversarial", type=float, default=None,
                        help="with --upstream: the adversarial term's weight (default 0.1 there, beside λ_L1 = 100)")
    parser.add_argument("--lambda-gv", type=float, default=None,
                        help="with --upstream: weight of the global-variance loss on crops (default 20 there)")
    args = parser.parse_args(argv)
    command = "python -m zoo reproduce postnet " + shlex.join(argv if argv is not None else [])
    if args.upstream is None:
        run(args.preset, args.out, args.data_root, command)
        return
    for flag, value in (("--lambda-adversarial", args.lambda_adversarial), ("--lambda-gv", args.lambda_gv)):
        if value is not None and value < 0:
            parser.error(f"{flag} must be >= 0, but got {value}")
    if args.arctic_root is None:
        parser.error("--upstream needs --arctic-root (the corpus the voice-conversion model converts)")
    from zoo.errors import exit_on_user_error

    with exit_on_user_error():
        run_upstream(args.preset, args.out, args.upstream, args.arctic_root, args.data_root, command, args.split,
                     args.eval_utterances, args.eval_workers, args.lambda_adversarial, args.lambda_gv)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
