"""Logging defaults: W&B runs offline unless credentials are configured (sync later with ``wandb sync``)."""

from __future__ import annotations

import netrc
import os
import subprocess
from pathlib import Path


def wandb_credentials_present() -> bool:
    """True when an API key is in the environment or in ~/.netrc (where ``wandb login`` writes it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if not netrc_path.is_file():
        return False
    try:
        hosts = netrc.netrc(str(netrc_path)).hosts
    except (netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def configure_wandb_mode() -> str:
    """Set ``WANDB_MODE=offline`` when the user chose no mode and has no credentials; return the mode in force."""
    if "WANDB_MODE" not in os.environ and not wandb_credentials_present():
        os.environ["WANDB_MODE"] = "offline"
    return os.environ.get("WANDB_MODE", "online")


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit the code runs from (with ``-dirty`` when modified), or None outside a git checkout."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha
