"""``reproduce mnist-generative``: train every MNIST generative model for a budget, score all on one table.

Each model is trained through the zoo CLI from its config (``configs/<name>_mnist.yaml``), reloaded from its
last checkpoint and scored with ``zoo.metrics.image_quality``; ``DIR/report.json`` and ``DIR/report.md`` hold the
figures, ``DIR/grids/`` the final models' image grids. Run it as
``python -m zoo reproduce mnist-generative --preset demo|full|converged --out DIR [--data-root PATH] [--models ...]``
(``converged``: each model to a stated criterion, see ``configs/presets/mnist/converged.yaml``); every report has the validation learning curves; a call
with ``--models`` on an existing ``DIR`` (same data and preset) adds to its report instead of replacing it.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import torch
import yaml

from zoo.metrics.image_quality import (
    classifier_accuracy,
    confident_fraction,
    frechet_distance,
    laplacian_sharpness,
    load_or_train_classifier,
)
from zoo.checkpoints import constructor_arguments, load_experiment
from zoo.report import fmt, write_report
from zoo.reproduce_common import CONFIG_DIR, fit_stage, load_preset, merge_configs, preset_names, reproduce_parser

MODELS = ("vae", "vaegan", "ebgan_vae", "wae_mmd", "wae_gan", "wgan", "wgan_gp")
WGANS = ("wgan", "wgan_gp")
# configs/presets/mnist/<preset>.yaml: one override for every MNIST config (trainer budget, widths) and the
# command's own settings (reproduce: block)
PRESETS = tuple(preset_names("mnist"))
# The validation figure each autoencoder's early stopping watches (lower is better): the training objective where
# it is one number (the VAE's negative ELBO, the WAEs' cost + λ·divergence), the pixel error of the
# reconstructions for the two VAE-GANs (their objectives are adversarial and do not settle).
MONITOR = {"vae": "val/loss", "vaegan": "val/pixel_mse", "ebgan_vae": "val/pixel_mse", "wae_mmd": "val/loss",
           "wae_gan": "val/loss", "wgan": "val/wasserstein", "wgan_gp": "val/wasserstein"}


def _load_split(data_root: str | None, stage: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    from datamodules import MNISTDataModule

    dm = MNISTDataModule(root=data_root or "data", source="real" if data_root else "embedded")
    dm.setup("fit")
    ds = dm.datasets[stage]
    return ds.images.float().div(255).unsqueeze(1), ds.labels, "mnist" if data_root else "sklearn-digits"


def _train(name: str, out: Path, preset: dict, data_root: str | None,
           generator_steps: int | None = None) -> tuple[torch.nn.Module, dict]:
    """Fit ``configs/<name>_mnist.yaml`` with ``preset`` (a ``configs/presets/mnist`` file) and this run's data,
    folder and CSV logger merged over it (``OUT/<name>/overrides.yaml``); returns the model and its training figures."""
    config = CONFIG_DIR / f"{name}_mnist.yaml"
    spec = yaml.safe_load(config.read_text())
    run_dir = out / name
    settings = preset.get("reproduce", {})
    data = {"root": data_root, "download": False} if data_root else {"source": "embedded"}
    trainer: dict = {"default_root_dir": str(run_dir), "enable_progress_bar": False,
                     # the CSV log under RUN_DIR/csv is what the report's learning curves read
                     "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                                "init_args": {"save_dir": str(run_dir), "name": "csv", "version": ""}}}
    class_path = spec["model"]["class_path"]
    module, cls = class_path.rsplit(".", 1)
    model_cls = getattr(importlib.import_module(module), cls)
    if name in WGANS and generator_steps is not None:
        init_args = merge_configs(spec["model"]["init_args"], preset.get("model", {}).get("init_args") or {})
        schedule = model_cls(**constructor_arguments(model_cls, init_args, config))
        trainer |= {**settings.get("wgan_trainer", {}), "max_steps": schedule.optimizer_steps_for(generator_steps)}
    stopping = settings.get("early_stopping")
    extra = []
    if stopping and name not in WGANS:  # appended to the config's callbacks (a YAML list would replace them)
        extra = ["--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping",
                 f"--trainer.callbacks.monitor={MONITOR[name]}", "--trainer.callbacks.mode=min",
                 f"--trainer.callbacks.patience={stopping['patience']}", "--trainer.callbacks.min_delta=0"]
    overrides = merge_configs(preset, {"trainer": trainer, "data": {"init_args": data}})
    start = time.perf_counter()
    fit_stage(config, overrides, run_dir, extra)
    seconds = time.perf_counter() - start
    ckpt = max(run_dir.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    steps = {"train_seconds": seconds, "batches": state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"],
             "epochs": state["loops"]["fit_loop"]["epoch_progress"]["total"]["completed"]}
    model = load_experiment(ckpt, {class_path: name}, name)
    if hasattr(model, "generator_steps"):
        steps["generator_steps"] = int(model.generator_steps)
    steps["val_curve"] = validation_curve(run_dir, MONITOR[name])
    steps["stopped_early"] = bool(stopping and name not in WGANS and _stopped_early(state))
    return model, steps


def validation_curve(run_dir: Path, key: str) -> list[dict[str, float]]:
    """(epoch, step, value) of ``key`` at every validation of the run's CSV log."""
    from zoo.reproduce_common import read_metrics

    return [{"epoch": int(r["epoch"]), "step": int(r["step"]), "value": r[key]} for r in read_metrics(run_dir) if key in r]


def _stopped_early(state: dict) -> bool:
    callbacks = state.get("callbacks", {})
    return any(k.startswith("EarlyStopping") and v.get("stopped_epoch", 0) > 0 for k, v in callbacks.items())


def _plot_curves(report: dict, path: Path) -> None:
    """One panel per model: its monitored validation figure against training batches."""
    from zoo.plotting import pyplot, save_figure

    plt = pyplot()
    rows = [(name, r) for name, r in report["models"].items() if r.get("val_curve")]
    if not rows:
        return
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 2.6), squeeze=False)
    for ax, (name, r) in zip(axes[0], rows):
        curve = r["val_curve"]
        ax.plot([c["step"] for c in curve], [c["value"] for c in curve], marker=".")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("optimiser steps", fontsize=8)
        ax.set_ylabel(MONITOR[name], fontsize=8)
        ax.tick_params(labelsize=7)
    save_figure(fig, path, dpi=110)


@torch.no_grad()
def _write_grids(model: torch.nn.Module, images: torch.Tensor, out: Path, name: str, steps: int = 8) -> list[str]:
    """PNG grids of the final model: 64 samples; 32 test inputs each beside its reconstruction; 8 latent walks
    (between encoded test images, or between prior draws for a GAN), one per row."""
    from PIL import Image

    from callbacks.media import ImageGridCallback
    from zoo.nn.dcgan import interpolate_latents

    grids = {"samples": model.sample(64)}
    if hasattr(model, "reconstruct"):
        x = images[:32]
        grids["reconstructions"] = torch.stack([x, model.reconstruct(x)], dim=1).flatten(0, 1)  # input, recon, ...
        z = model.encode(images[32:48])
    else:
        z = torch.randn(16, model.net_config.latent_dim)
    grids["interpolations"] = torch.cat([model.decode(interpolate_latents(z[2 * i], z[2 * i + 1], steps)) for i in range(8)])
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, batch in grids.items():
        array = (ImageGridCallback.grid(batch).squeeze(-1) * 255).round().astype("uint8")
        Image.fromarray(array).resize((array.shape[1] * 2, array.shape[0] * 2), Image.NEAREST).save(out / f"{name}_{kind}.png")
        written.append(f"{name}_{kind}.png")
    return written


@torch.no_grad()
def test_nll(model: torch.nn.Module, images: torch.Tensor, k: int, batch_size: int = 10) -> float | None:
    """Mean importance-weighted -log p(x) in nats (``zoo.metrics.likelihood``, k samples) of a model with a Gaussian
    encoder and a Bernoulli decoder on ``images`` binarised with a fixed seed; None for models without a posterior."""
    from zoo.metrics.likelihood import binarize, importance_weighted_nll
    from zoo.nn.dcgan import GaussianEncoder

    if not isinstance(getattr(model, "encoder", None), GaussianEncoder):
        return None
    x = binarize(images)
    total = 0.0
    for i in range(0, len(x), batch_size):
        mu, logvar = model.encoder(x[i : i + batch_size])
        total += float(importance_weighted_nll(x[i : i + batch_size], mu, logvar, model.decoder, k=k,
                                               generator=torch.Generator().manual_seed(i)).sum())
    return total / len(x)


@torch.no_grad()
def _score(model: torch.nn.Module, test_x: torch.Tensor, test_y: torch.Tensor, classifier: torch.nn.Module,
           nll: dict | None = None) -> dict:
    fakes = torch.cat([model.sample(min(500, len(test_x) - i)) for i in range(0, len(test_x), 500)])
    scores = {"frechet": frechet_distance(test_x, fakes, classifier), "sample_sharpness": laplacian_sharpness(fakes),
              "recognisable": confident_fraction(classifier, fakes, 0.9)}
    if nll:
        scores["test_nll_nats"] = test_nll(model, test_x[: nll["images"]], nll["k"])
    if hasattr(model, "reconstruct"):
        recon = torch.cat([model.reconstruct(test_x[i : i + 500]) for i in range(0, len(test_x), 500)])
        scores["recon_frechet"] = frechet_distance(test_x, recon, classifier)
        scores["sharpness"] = laplacian_sharpness(recon)
        scores["recon_accuracy"] = classifier_accuracy(classifier, recon, test_y)
    else:
        scores["sharpness"] = scores["sample_sharpness"]
    return scores


def run(preset_name: str, out: Path, data_root: str | None = None, models: tuple[str, ...] = MODELS) -> dict:
    preset = load_preset("mnist", preset_name)
    settings = preset["reproduce"]
    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y, data = _load_split(data_root, "train")
    test_x, test_y, _ = _load_split(data_root, "test")
    test_x, test_y = test_x[: settings["num_eval"]], test_y[: settings["num_eval"]]
    torch.manual_seed(0)
    classifier = load_or_train_classifier(out / f"classifier_{data}.pt", train_x, train_y, settings["classifier_epochs"])
    report = {"data": data, "preset": preset_name, "num_eval": len(test_x), "nll": settings.get("nll"),
              "test_accuracy": classifier_accuracy(classifier, test_x, test_y),
              "sharpness": laplacian_sharpness(test_x), "models": {}}
    previous = out / "report.json"
    if previous.is_file():  # keep the models of an earlier call on the same out dir, data and preset
        old = json.loads(previous.read_text())
        if (old.get("data"), old.get("preset"), old.get("num_eval")) == (data, preset_name, len(test_x)):
            report["models"] = {k: v for k, v in old["models"].items() if k not in models}
    for name in models:
        generator_steps = settings["generator_steps"]
        if name in WGANS and generator_steps is not None:
            # If the other WGAN stopped early (its time cap), stop this one at the same generator step.
            done = [report["models"][w]["generator_steps"] for w in WGANS if w in report["models"] and w != name]
            generator_steps = min([generator_steps, *done])
        model, steps = _train(name, out, preset, data_root, generator_steps)
        torch.manual_seed(0)
        scores = _score(model, test_x, test_y, classifier, settings.get("nll"))
        torch.manual_seed(0)
        report["models"][name] = {**scores, **steps, "grids": _write_grids(model, test_x, out / "grids", name)}
        report["models"] = {k: report["models"][k] for k in MODELS if k in report["models"]}
        (out / "report.json").write_text(json.dumps(report, indent=2))
    _plot_curves(report, out / "learning_curves.png")
    write_report(out, report, _markdown(report))
    return report


def _markdown(report: dict) -> str:
    cols = ("frechet", "recognisable", "recon_frechet", "recon_accuracy", "sharpness", "sample_sharpness",
            "test_nll_nats", "batches", "generator_steps", "train_seconds")
    lines = [f"# MNIST generative models ({report['preset']} preset, data: {report['data']})", "",
             (f"Classifier test accuracy {report['test_accuracy']:.4f}; test-set sharpness {report['sharpness']:.4f}; "
              f"{report['num_eval']} test images vs as many generated/reconstructed. `sharpness` is that of the "
              "reconstructions for an autoencoder, of the samples for a GAN. `recognisable`: the share of samples the "
              "classifier labels with probability >= 0.9. `test_nll_nats` (VAE family): importance-weighted bound on "
              "-log p(x) (Burda et al. 2016) of the Bernoulli decoder on fixed-seed binarised test images"
              + (f", {report['nll']['images']} images, k = {report['nll']['k']}" if report.get("nll") else "")
              + " — the models train on grey levels, so this is not the published binarised-MNIST setting."), "",
             "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in report["models"].items():
        lines.append(f"| {name} | " + " | ".join(fmt(row.get(c)) for c in cols) + " |")
    lines += ["", "Grids of the final models (samples; inputs beside reconstructions; latent walks): `grids/`.", "",
              "## Learning curves (validation)", "", "![learning curves](learning_curves.png)", "",
              "| model | monitored | validations | first | best | last | stopped by |", "|---|---|---|---|---|---|---|"]
    for name, row in report["models"].items():
        curve = [c["value"] for c in row.get("val_curve", [])]
        if curve:
            target = load_preset("mnist", report["preset"])["reproduce"].get("generator_steps") if (
                report["preset"] in PRESETS) else None
            how = ("early stopping" if row.get("stopped_early") else "generator steps"
                   if name in WGANS and target and row.get("generator_steps", 0) >= target else "time or epoch cap")
            lines.append(f"| {name} | {MONITOR[name]} | {len(curve)} | {curve[0]:.4g} | {min(curve):.4g} | "
                         f"{curve[-1]:.4g} | {how} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = reproduce_parser("mnist-generative", __doc__, PRESETS, "report folder (and each model's run)")
    parser.add_argument("--data-root", default=None, help="folder holding mnist/ (real MNIST); default: embedded digits")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    run(args.preset, args.out, args.data_root, tuple(args.models))


if __name__ == "__main__":
    main()
