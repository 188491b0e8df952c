"""``python -m zoo reproduce wavenet --preset demo|real --out DIR``: the WaveNet vocoder (van den Oord et al. 2016;
Tamamori et al. 2017, mel-conditioned) with both output distributions, a single Gaussian (ClariNet) and a discretised
mixture of logistics (PixelCNN++ / r9y9), trained on one ARCTIC speaker (slt) and judged by copy-synthesis of its dev
utterances against Griffin-Lim, with the field's metrics.

Per distribution: training and validation NLL (nats per sample) and bits per sample against the step, the first step
whose Gaussian training loss is negative (a density below 1/sqrt(2*pi*e) per sample: not a bug), then the dev
utterances' natural mels vocoded by the final model, all utterances generated together (cached generation), and
scored with ``zoo.evaluation.Scorer`` (WORLD/SPTK MCD, F0 RMSE/CORR, DNSMOS P.835, PocketSphinx WER/CER) beside
natural speech and Griffin-Lim at the same front end.

    python -m zoo reproduce wavenet --preset demo --out OUT                      # embedded eSpeak ARCTIC, minutes
    python -m zoo reproduce wavenet --preset real --out OUT --arctic-root ../shared/data/cmu_arctic --data-root DIR

``real`` trains on the standard split's 932 training prompts of slt and scores its dev prompts (b0340-b0439), at
the 16 kHz / hop-200 front end of the real voice-conversion preset, so its vocoder fits that chain
(``python -m zoo convert --vc ... --vocoder OUT/mol/checkpoints/last.ckpt``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from zoo.report import fmt, write_report
from zoo.reproduce_common import (
    reproduce_parser,
    CONFIG_DIR, fit_stage, load_preset, merge_configs, natural_16k, preset_names, read_metrics, stage_datamodule,
    stage_loggers, wandb_ids,
)

DISTRIBUTIONS = ("gaussian", "mol")
ROWS = ("target_natural", "griffin_lim", "wavenet_gaussian", "wavenet_mol")
ROW_TEXT = {
    "target_natural": "natural slt speech, the metrics' own floor",
    "griffin_lim": "natural mel -> Griffin-Lim (the zoo's default vocoder)",
    "wavenet_gaussian": "natural mel -> WaveNet, single Gaussian",
    "wavenet_mol": "natural mel -> WaveNet, mixture of logistics",
}
PRESETS = tuple(preset_names("wavenet"))  # configs/presets/wavenet/<preset>.yaml, for both distributions


def _overrides(dist: str, preset: dict, out: Path, data_root: str, arctic_root: str | None, wandb: bool) -> dict:
    """One distribution's override config: the preset with this run's folders, loggers and corpus merged over it
    (the CLI merges the result over ``configs/wavenet_<dist>.yaml``)."""
    run_dir = out / dist
    if arctic_root is not None:
        # a real corpus may sit on read-only or shared storage: its feature cache goes under the data root
        data = {"source": "real", "root": arctic_root, "download": False, "cache_dir": str(Path(data_root) / "feature_cache")}
    else:
        data = {"source": "embedded", "root": data_root}
    trainer = {"logger": stage_loggers(run_dir, f"wavenet-{dist}", wandb), "default_root_dir": str(run_dir),
               "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                              "init_args": {"dirpath": str(run_dir / "checkpoints"), "save_last": True,
                                            "save_top_k": 0}}]}
    return merge_configs(preset, {"trainer": trainer, "data": {"init_args": data}})


def _curves(run_dir: Path) -> dict[str, Any]:
    rows = read_metrics(run_dir)
    train = [(int(r["step"]), r["train/loss"], r["train/bits_per_sample"]) for r in rows if "train/loss" in r]
    val = [(int(r["step"]), r["val/loss"], r["val/bits_per_sample"]) for r in rows if "val/loss" in r]
    negative = next((s for s, loss, _ in train if loss < 0), None)
    return {"train_steps": [t[0] for t in train], "train_nll": [t[1] for t in train],
            "train_bits_per_sample": [t[2] for t in train],
            "val_steps": [v[0] for v in val], "val_nll": [v[1] for v in val], "val_bits_per_sample": [v[2] for v in val],
            "first_negative_step": negative}


def evaluate_dev(out: Path, overrides: dict, checkpoints: dict[str, Path], n_utterances: int | None,
                 workers: int | None, batch_size: int = 16) -> dict[str, dict]:
    """Copy-synthesis of the first ``n_utterances`` validation (dev) utterances through Griffin-Lim and each WaveNet,
    written to ``OUT/wavs/<row>/<id>.wav`` and scored against the natural recordings."""
    from zoo.audio import griffin_lim_wav, save_wav
    from zoo.evaluation import Scorer
    from zoo.metrics.mcd import F0_RANGES
    from zoo.pipeline import WaveNet

    dm = stage_datamodule(CONFIG_DIR / "wavenet_mol.yaml", overrides, prepare=True)
    audio = dm.audio
    val = dm.datasets["val"]
    utts = val.utterances[:n_utterances] if n_utterances else val.utterances
    mels = [val.store.get(u.id, "mel") for u in utts]  # (T, n_mels), as the vocoders were conditioned in training
    wavs: dict[str, list[torch.Tensor]] = {"griffin_lim": [griffin_lim_wav(m, audio) for m in mels]}
    generation: dict[str, dict[str, float]] = {}
    for dist in DISTRIBUTIONS:
        vocoder = WaveNet.from_checkpoint(checkpoints[dist], device="cpu", seed=0)
        start = time.perf_counter()
        wavs[f"wavenet_{dist}"] = vocoder.vocode(mels, batch_size)
        seconds = time.perf_counter() - start
        samples = sum(w.shape[0] for w in wavs[f"wavenet_{dist}"])
        generation[dist] = {"seconds": seconds, "samples_per_second": samples / seconds,
                            "real_time_factor": seconds / (samples / audio.sample_rate)}
    sources: dict[str, dict[str, Any]] = {"target_natural": {u.id: natural_16k(u.wav_path, audio.sample_rate) for u in utts}}
    for row, row_wavs in wavs.items():
        folder = out / "wavs" / row
        folder.mkdir(parents=True, exist_ok=True)
        sources[row] = {}
        for u, wav in zip(utts, row_wavs):
            save_wav(folder / f"{u.id}.wav", wav, audio.sample_rate)
            sources[row][u.id] = folder / f"{u.id}.wav"
    texts = {u.id: u.text for u in utts}
    results: dict[str, dict] = {}
    with Scorer(sources["target_natural"], texts, F0_RANGES.get("slt", (60.0, 400.0)), workers) as scorer:
        for row in ROWS:
            dist = row.removeprefix("wavenet_")
            results[row] = {"checkpoint": str(checkpoints[dist]) if dist in checkpoints else None,
                            "wavs": str(out / "wavs" / row) if row in wavs else "natural recordings",
                            "generation": generation.get(dist), **scorer.score(sources[row])}
    return results


def _curve_plot(out: Path, curves: dict[str, dict]) -> str:
    from zoo.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (dist, c), color in zip(curves.items(), ("tab:blue", "tab:red")):
        axes[0].plot(c["train_steps"], c["train_nll"], color=color, alpha=0.35, label=f"{dist} train")
        axes[0].plot(c["val_steps"], c["val_nll"], color=color, marker="o", label=f"{dist} validation")
        axes[1].plot(c["val_steps"], c["val_bits_per_sample"], color=color, marker="o", label=f"{dist} validation")
    axes[0].set_ylabel("NLL (nats per sample)")
    axes[1].set_ylabel("bits per sample (16-bit bins)")
    for ax in axes:
        ax.set_xlabel("optimiser step")
        ax.legend()
    save_figure(fig, out / "curves.png")
    return "curves.png"


def run(preset_name: str, out: Path, data_root: str = "data", arctic_root: str | None = None, wandb: bool = True,
        command: str = "", eval_utterances: int | None = None, eval_workers: int | None = None) -> dict:
    if eval_utterances is not None and eval_utterances < 1:
        raise ValueError(f"eval_utterances must be >= 1, but got {eval_utterances}")
    preset = load_preset("wavenet", preset_name)
    if arctic_root is not None:
        root = Path(arctic_root)
        arctic_root = str(root.parent if root.name == "cmu_arctic" else root)  # the folder or the one holding it
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    overrides, ckpts, seconds, curves = {}, {}, {}, {}
    for dist in DISTRIBUTIONS:
        overrides[dist] = _overrides(dist, preset, out, data_root, arctic_root, wandb)
        seconds[dist] = fit_stage(CONFIG_DIR / f"wavenet_{dist}.yaml", overrides[dist], out / dist)
        ckpts[dist] = out / dist / "checkpoints" / "last.ckpt"
        curves[dist] = _curves(out / dist)
    eval_start = time.perf_counter()
    rows = evaluate_dev(out, overrides["mol"], ckpts, eval_utterances or preset["reproduce"]["eval_utterances"],
                        eval_workers)
    eval_seconds = time.perf_counter() - eval_start
    figure = _curve_plot(out, curves)
    wins = {key: min(("griffin_lim", "wavenet_gaussian", "wavenet_mol"), key=lambda r: _sortable(rows[r][key], lower))
            for key, lower in (("mcd_db", True), ("f0_rmse_hz", True), ("dnsmos_ovrl", False), ("wer", True))}
    data = preset["data"]["init_args"]
    report = {
        "preset": preset_name, "command": command,
        "data": f"CMU ARCTIC slt, real, {arctic_root} ({data['split']} split)" if arctic_root else
                f"embedded eSpeak CMU ARCTIC-layout slt ({data['embedded_size']} prompts, {data['split']} split)",
        "audio": data["audio"], "model": preset["model"]["init_args"],
        "batch_size": data["batch_size"], "max_steps": preset["trainer"]["max_steps"],
        "train_seconds": seconds, "eval_seconds": eval_seconds,
        "curves": curves, "rows": rows, "best": wins, "figures": [figure],
        "wandb_run_ids": {d: wandb_ids(out / d) for d in DISTRIBUTIONS},
    }
    write_report(out, report, _markdown(report))
    return report


def _sortable(value: float, lower: bool) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return value if lower else -value


def _markdown(report: dict) -> str:
    m, window_frames = report["model"]["net"], report["model"]["training"]["window_frames"]
    lines = [
        f"# WaveNet vocoder ({report['preset']} preset): Gaussian vs mixture of logistics vs Griffin-Lim", "",
        f"Command: `{report['command']}`", "",
        f"Data: {report['data']}; front end {report['audio']['sample_rate']} Hz, hop {report['audio']['hop_length']}, "
        f"{report['audio']['n_mels']} mels. WaveNet: {m['layers']} layers in {m['stacks']} stacks, "
        f"{m['residual_channels']}/{m['gate_channels']}/{m['skip_channels']} residual/gate/skip channels, upsampling "
        f"{m['upsample_scales']}; batch {report['batch_size']} x {window_frames} frames, "
        f"{report['max_steps']} steps per distribution. Training "
        + ", ".join(f"{d} {s:.0f} s" for d, s in report["train_seconds"].items())
        + f"; generation and scoring {report['eval_seconds']:.0f} s.", "",
        "## Training", "",
        "| distribution | first negative training step | final train NLL | validation NLL by step | "
        "final validation bits/sample |", "|---|---|---|---|---|",
    ]
    for dist, c in report["curves"].items():
        by_step = ", ".join(f"{s}: {v:.3f}" for s, v in zip(c["val_steps"], c["val_nll"]))
        lines.append(f"| {dist} | {fmt(c['first_negative_step']) if dist == 'gaussian' else 'n/a'} | "
                     f"{fmt(c['train_nll'][-1], 3) if c['train_nll'] else '—'} | {by_step} | "
                     f"{fmt(c['val_bits_per_sample'][-1]) if c['val_bits_per_sample'] else '—'} |")
    lines += ["", "NLL in nats per sample (the Gaussian's is a density, negative once its scale is below 0.24); "
              "bits per sample of each model's probability of the 16-bit bin.", "", "![curves](curves.png)", "",
              f"## Copy-synthesis of {report['rows']['target_natural']['n']} dev utterances", "",
              "Natural mels (the vocoders' training features) -> waveform, scored against the natural recording: "
              "`zoo.metrics.mcd` (WORLD Harvest/CheapTrick, SPTK mel-cepstrum order 39, alpha 0.466, c0 included, "
              "frames above -20 dB, fastdtw), DNSMOS P.835 (`speechmos`), PocketSphinx WER/CER against the prompt "
              "(generic language model, not tuned).", "",
              "| row | MCD dB | F0 RMSE Hz | F0 CORR | DNSMOS OVRL | SIG | BAK | WER % | CER % | samples/s | RTF |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in ROWS:
        r = report["rows"][row]
        g = r.get("generation") or {}
        lines.append(f"| {row}: {ROW_TEXT[row]} | {fmt(r['mcd_db'])} | {fmt(r['f0_rmse_hz'], 1)} | {fmt(r['f0_corr'], 3)} | "
                     f"{fmt(r['dnsmos_ovrl'])} | {fmt(r['dnsmos_sig'])} | {fmt(r['dnsmos_bak'])} | "
                     f"{fmt(r['wer'], 1)} | {fmt(r['cer'], 1)} | "
                     f"{fmt(g.get('samples_per_second'), 0)} | {fmt(g.get('real_time_factor'), 1)} |")
    lines += ["", "Best per figure: " + "; ".join(f"{k} {v}" for k, v in report["best"].items()) + ".", "",
              "Checkpoints scored: " + "; ".join(f"{row} `{report['rows'][row]['checkpoint']}`"
                                                 for row in ROWS if report["rows"][row]["checkpoint"]) +
              "; wavs under `wavs/<row>/`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = reproduce_parser("wavenet", __doc__, PRESETS, "report folder (and both runs)")
    parser.add_argument("--data-root", default="data", help="where the embedded corpus (and the feature cache) live")
    parser.add_argument("--arctic-root", default=None, help="a real CMU ARCTIC folder (holding cmu_us_slt_arctic/)")
    parser.add_argument("--no-wandb", action="store_true", help="CSV logs only (no offline W&B runs)")
    parser.add_argument("--eval-utterances", type=int, default=None, help="copy-synthesise the first N dev utterances")
    parser.add_argument("--eval-workers", type=int, default=None, help="processes for scoring (default: 2)")
    args = parser.parse_args(argv)
    for flag, value in (("--eval-utterances", args.eval_utterances), ("--eval-workers", args.eval_workers)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be >= 1, but got {value}")
    if args.preset == "real" and args.arctic_root is None:
        parser.error("--preset real trains on real CMU ARCTIC: pass --arctic-root DIR")
    command = "python -m zoo reproduce wavenet " + " ".join(argv if argv is not None else [])
    run(args.preset, args.out, args.data_root, args.arctic_root, wandb=not args.no_wandb, command=command.strip(),
        eval_utterances=args.eval_utterances, eval_workers=args.eval_workers)


if __name__ == "__main__":
    main()
