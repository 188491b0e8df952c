"""``reproduce mnist-generative``: train every MNIST generative model for a budget, score all on one table.

Each model is trained through the zoo CLI from its config (``configs/<name>_mnist.yaml``), reloaded from its
last checkpoint and scored with ``zoo.metrics.image_quality``; ``DIR/report.json`` and ``DIR/report.md`` hold the
figures. Until ``zoo/cli.py`` dispatches ``reproduce``, run it as
``python -m zoo.reproduce_mnist --preset demo --out DIR [--data-root PATH]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import torch
import yaml

from zoo.metrics.image_quality import classifier_accuracy, frechet_distance, laplacian_sharpness, load_or_train_classifier

MODELS = ("vae", "vaegan", "ebgan_vae", "wae_mmd", "wae_gan", "wgan", "wgan_gp")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
# Budgets: demo is a smoke-sized run (minutes in all); full is the documented <= 10 min per model on 2 CPU cores.
PRESETS = {
    "demo": {"trainer": ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "20", "--trainer.limit_val_batches", "2"],
             "model": {"channels": 16, "hidden": 128}, "num_eval": 2000, "classifier_epochs": 2},
    "full": {"trainer": ["--trainer.max_time", "00:00:10:00", "--trainer.max_epochs", "100", "--trainer.limit_val_batches", "5"],
             "model": {}, "num_eval": 10000, "classifier_epochs": 3},
}


def _load_split(data_root: str | None, stage: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    from datamodules import MNISTDataModule

    dm = MNISTDataModule(root=data_root or "data", source="real" if data_root else "embedded")
    dm.setup("fit")
    ds = dm.datasets[stage]
    return ds.images.float().div(255).unsqueeze(1), ds.labels, "mnist" if data_root else "sklearn-digits"


def _train(name: str, out: Path, preset: dict, data_root: str | None) -> tuple[torch.nn.Module, float]:
    from zoo.cli import main

    config = CONFIG_DIR / f"{name}_mnist.yaml"
    spec = yaml.safe_load(config.read_text())
    run_dir = out / name
    data = ["--data.root", data_root, "--data.download", "false"] if data_root else ["--data.source", "embedded"]
    model_args = [f"--model.init_args.{k}={v}" for k, v in preset["model"].items() if k in spec["model"]["init_args"]]
    start = time.perf_counter()
    main(["fit", "--config", str(config), *data, *preset["trainer"], *model_args,
          "--trainer.default_root_dir", str(run_dir), "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    seconds = time.perf_counter() - start
    ckpt = max(run_dir.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    module, cls = spec["model"]["class_path"].rsplit(".", 1)
    model = getattr(importlib.import_module(module), cls).load_from_checkpoint(ckpt, map_location="cpu").eval()
    return model, seconds


@torch.no_grad()
def _score(model: torch.nn.Module, test_x: torch.Tensor, test_y: torch.Tensor, classifier: torch.nn.Module) -> dict:
    fakes = torch.cat([model.sample(min(500, len(test_x) - i)) for i in range(0, len(test_x), 500)])
    scores = {"frechet": frechet_distance(test_x, fakes, classifier), "sample_sharpness": laplacian_sharpness(fakes)}
    if hasattr(model, "reconstruct"):
        recon = torch.cat([model.reconstruct(test_x[i : i + 500]) for i in range(0, len(test_x), 500)])
        scores["recon_frechet"] = frechet_distance(test_x, recon, classifier)
        scores["sharpness"] = laplacian_sharpness(recon)
        scores["recon_accuracy"] = classifier_accuracy(classifier, recon, test_y)
    else:
        scores["sharpness"] = scores["sample_sharpness"]
    return scores


def run(preset_name: str, out: Path, data_root: str | None = None, models: tuple[str, ...] = MODELS) -> dict:
    if preset_name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, but got {preset_name!r}")
    preset = PRESETS[preset_name]
    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y, data = _load_split(data_root, "train")
    test_x, test_y, _ = _load_split(data_root, "test")
    test_x, test_y = test_x[: preset["num_eval"]], test_y[: preset["num_eval"]]
    torch.manual_seed(0)
    classifier = load_or_train_classifier(out / f"classifier_{data}.pt", train_x, train_y, preset["classifier_epochs"])
    report = {"data": data, "preset": preset_name, "num_eval": len(test_x),
              "test_accuracy": classifier_accuracy(classifier, test_x, test_y),
              "sharpness": laplacian_sharpness(test_x), "models": {}}
    for name in models:
        model, seconds = _train(name, out, preset, data_root)
        torch.manual_seed(0)
        report["models"][name] = {**_score(model, test_x, test_y, classifier), "train_seconds": seconds}
        (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(_markdown(report))
    return report


def _markdown(report: dict) -> str:
    cols = ("frechet", "recon_frechet", "sharpness", "sample_sharpness", "recon_accuracy", "train_seconds")
    lines = [f"# MNIST generative models ({report['preset']} preset, data: {report['data']})", "",
             f"Classifier test accuracy {report['test_accuracy']:.4f}; test-set sharpness {report['sharpness']:.4f}; "
             f"{report['num_eval']} test images vs as many generated/reconstructed.", "",
             "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in report["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4g}" if c in row else "—" for c in cols) + " |")
    lines += ["", "Sample grids: `<model>/lightning_logs/.../media/` (written by the ImageGridCallback) when a "
              "validation epoch ran.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="zoo reproduce mnist-generative", description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-root", default=None, help="folder holding mnist/ (real MNIST); default: embedded digits")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    run(args.preset, args.out, args.data_root, tuple(args.models))


if __name__ == "__main__":
    main()
