"""How the tests invoke the gateway's commands: the real `warrant` command line."""

from __future__ import annotations

import sys

import click

from warrant.cli import main as warrant_main


def command_prefix() -> list[str]:
    """argv that runs `warrant ...`."""
    return [sys.executable, "-m", "warrant"]


def cli_group() -> click.Group:
    return warrant_main
