"""The one command line of the zoo: Lightning's ``LightningCLI`` over every experiment and DataModule.

``python -m zoo fit --config configs/<name>.yaml`` picks the model and the data by ``class_path`` in YAML;
every hyper-parameter can be overridden from the command line (``--model.init_args.net.hidden 128`` or
``--model.net.hidden 128``), several ``--config`` files compose left to right, and configs may interpolate
with OmegaConf (``${data.init_args.batch_size}``).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import BasePredictionWriter, LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_info

from callbacks.prediction import PredictionWriter
from callbacks.resume import RNGStateCallback
from zoo.checkpoints import check_checkpoint_matches
from zoo.errors import user_error_in
from zoo.logging import configure_wandb_mode, git_commit
from zoo.registry import REPRODUCTIONS, import_experiments


class ZooCLI(LightningCLI):
    """LightningCLI with the zoo's links between data and model, and its defaults."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Values the data and the model must agree on are linked once here, never repeated in YAML.
        # jsonargparse skips a link whose target the chosen model does not have (e.g. MNIST models).
        parser.link_arguments("data.init_args.audio", "model.init_args.audio")
        parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        # what a voice converter predicts (mels, or WORLD parameters) is what its DataModule yields as targets
        parser.link_arguments("data.target_features", "model.init_args.target_features", apply_on="instantiate")
        # The zoo's DataModules shard their own (length-bucketed) batches across DDP ranks, so Lightning must not
        # wrap them in a DistributedSampler (it cannot inject one into a custom batch sampler).
        parser.set_defaults({"trainer.use_distributed_sampler": False})
        # A reproduce preset (configs/presets/<experiment>/<preset>.yaml) is also a fit config: its ``reproduce:``
        # block holds what only ``python -m zoo reproduce`` reads (its evaluation's size), and fit ignores it.
        parser.add_argument("--reproduce", type=Optional[dict[str, Any]], default=None,
                            help="settings of python -m zoo reproduce's evaluation (a preset's reproduce: block); "
                                 "ignored by fit, validate, test and predict")

    def _parse_ckpt_path(self) -> None:
        """Lightning's CLI would re-read the model's init arguments from ``--ckpt_path``'s hyperparameters, where
        the data->model links then land on models that do not take them (``vocab_size`` on a vocoder): the zoo keeps
        the config as the one source of truth and instead checks that the checkpoint matches it
        (``zoo.checkpoints.check_checkpoint_matches``: a mismatch is an error naming both)."""

    def before_instantiate_classes(self) -> None:
        configure_wandb_mode()

    def _run_config(self) -> Any:
        """The parsed config of this run: the subcommand's, or the whole one of a ``run=False`` CLI."""
        return self.config[self.subcommand] if self.subcommand else self.config

    def _check_ckpt(self) -> None:
        check_checkpoint_matches(self._run_config().get("ckpt_path"), self.model)

    def before_validate(self) -> None:
        self._check_ckpt()

    def before_test(self) -> None:
        self._check_ckpt()

    def before_predict(self) -> None:
        self._check_ckpt()
        # Models return their predictions; one callback writes them (unless the config names its own writer).
        if not any(isinstance(cb, BasePredictionWriter) for cb in self.trainer.callbacks):
            self.trainer.callbacks.append(PredictionWriter())

    def before_fit(self) -> None:
        self._check_ckpt()
        _ddp_for_manual_optimisation(self.trainer.strategy, self.model)
        # Every run records the code it ran from, next to its config (W&B's config panel, hparams.yaml, ...).
        commit = git_commit()
        for logger in self.trainer.loggers:
            logger.log_hyperparams({"git_commit": commit or "unknown"})
        self._save_config_to_wandb(commit)
        # every optimiser's learning rate, per step, on every logger (GANs: one curve per network)
        if self.trainer.loggers and not any(isinstance(cb, LearningRateMonitor) for cb in self.trainer.callbacks):
            self.trainer.callbacks.append(LearningRateMonitor(logging_interval="step"))

    def _save_config_to_wandb(self, commit: str | None) -> None:
        """The whole resolved config (trainer, model, data) as a file of the W&B run, beside its config panel: the
        exact command to rerun is ``python -m zoo fit --config zoo_config.yaml`` (offline runs keep it on disk)."""
        from lightning.pytorch.loggers import WandbLogger

        loggers = [lg for lg in self.trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or not self.trainer.is_global_zero:
            return
        text = self._parser(self.subcommand).dump(self._run_config(), skip_none=False)
        for logger in loggers:
            path = Path(logger.experiment.dir) / "zoo_config.yaml"
            path.write_text(f"# git commit: {commit or 'unknown'}\n{text}")
            logger.experiment.save(str(path), base_path=str(path.parent), policy="now")


def _ddp_for_manual_optimisation(strategy: object, model: LightningModule) -> None:
    """The GANs (manual optimisation) step the critic and the generator with separate backward passes, each of which
    leaves the other network without gradients: DDP must be told to expect unused parameters in every backward, or
    its reducer waits for them and the next step fails. ``--trainer.strategy ddp`` does that for them here, so the
    same flag works for every experiment (Lightning then prepares DDP before each ``manual_backward``)."""
    if isinstance(strategy, DDPStrategy) and not model.automatic_optimization:
        kwargs = strategy._ddp_kwargs  # noqa: SLF001 - read by DDPStrategy when it wraps the model in setup()
        if "find_unused_parameters" not in kwargs:
            kwargs["find_unused_parameters"] = True
            rank_zero_info(f"{type(model).__name__} uses manual optimisation: DDP runs with find_unused_parameters=True")


def reproduce(argv: list[str]) -> None:
    """``python -m zoo reproduce <name> [options]``: a whole published comparison, trained and reported in one go."""
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in REPRODUCTIONS:
        names = "\n  ".join(f"{name:20s} {doc}" for name, (_, doc) in REPRODUCTIONS.items())
        print(f"usage: python -m zoo reproduce NAME [options]   (NAME --help for its options)\n\nNAME:\n  {names}")
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    module, _ = REPRODUCTIONS[argv[0]]
    importlib.import_module(module).main(argv[1:])


def build_cli(args: list[str] | None, run: bool = True) -> ZooCLI:
    """The zoo's CLI over ``args``: with ``run`` the subcommand (``fit``, ``validate``, ...) runs; without it (no
    subcommand in ``args``) the model, data and trainer are only built, for a program to drive
    (``zoo.reproduce_common.fit_stage``)."""
    import_experiments()
    return ZooCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=run,
        parser_kwargs={"parser_mode": "omegaconf", "default_env": False},
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        # every run's checkpoints carry the RNG states, so `fit --ckpt_path` resumes exactly
        trainer_defaults={"callbacks": [RNGStateCallback()]},
    )


@contextmanager
def user_errors() -> Iterator[None]:
    """Errors the user can fix (missing data, bad checkpoint, a value a config refuses) end the program with one
    clear line, not a deep traceback (``ZOO_TRACEBACK=1`` keeps it); jsonargparse re-raises a config's own error as
    its parser's, so the chain is searched."""
    try:
        yield
    except Exception as err:
        user = user_error_in(err)
        if user is None or os.environ.get("ZOO_TRACEBACK"):
            raise
        print(f"error: {user}", file=sys.stderr)
        sys.exit(2)


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m zoo`` and the ``zoo`` console script."""
    argv = sys.argv[1:] if args is None else args
    if argv and argv[0] == "reproduce":
        reproduce(argv[1:])
        return
    if argv and argv[0] in ("convert", "score", "synthesize"):
        importlib.import_module(f"zoo.{argv[0]}").main(argv[1:])
        return
    if args is None and len(sys.argv) <= 1:
        args = ["--help"]
    with user_errors():
        build_cli(args)
