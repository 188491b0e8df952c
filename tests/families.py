"""One registry of the zoo's families for the tests: each config's test size as a YAML override file
(``tests/tiny/<config>.yaml``, composed after ``configs/<config>.yaml``), the arguments a config cannot run without,
and the config that stands for each family in the DDP, precision and resume tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_DIR = ROOT / "tests" / "tiny"

# The voice-conversion configs use the standard ARCTIC split, whose dev and eval prompts (b0340-b0539) the 100-prompt
# embedded corpus lacks: the tests split it seeded. vc_distill needs a trained teacher: the tests run it as its
# documented no-distillation baseline (the distillation path is fitted end to end by tests/test_vc.py's reproduce test).
SEEDED = ["--data.init_args.split", "seeded"]
REQUIRED = {"vc_teacher": SEEDED,
            "vc_distill": ["--model.init_args.training.teacher_checkpoint", "null",
                           "--model.init_args.training.distill_weight", "0", *SEEDED]}


def tiny(name: str) -> list[str]:
    """``["--config", tests/tiny/<name>.yaml]`` where the config has a test size, else [] (it runs as written)."""
    path = TINY_DIR / f"{name}.yaml"
    return ["--config", str(path)] if path.is_file() else []


def has_tiny(name: str) -> bool:
    return (TINY_DIR / f"{name}.yaml").is_file()


def fit_args(name: str) -> list[str]:
    """What a test adds after ``--config configs/<name>.yaml``: its test size, then what it cannot run without."""
    return [*tiny(name), *REQUIRED.get(name, [])]
