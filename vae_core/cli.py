"""`python -m vae_core`: train, evaluate and inspect models from the command line.

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem), 1 anything else.
With --json, one JSON object on stdout; otherwise a progress bar on a terminal and a short summary.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from vae_core import commands
from vae_core.errors import UserInputError

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see `python -m vae_core {self.prog.split()[-1]} --help`)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vae_core", description="Latent Lab: train and inspect VAEs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.register(sub)  # each subcommand declares its own flags

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        output = args.handler(args)
    except UserInputError as exc:
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # anything else is our fault or the machine's: say it in one line, exit 1
        sys.stderr.write(f"error: {type(exc).__name__}: {_one_line(exc)}\n")
        if os.environ.get("LATENT_LAB_DEBUG"):
            raise
        return EXIT_ERROR
    status = output.pop("_exit", EXIT_OK) if isinstance(output, dict) else EXIT_OK
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(output, default=_json_default) + "\n")
    elif output:
        print_human(output)
    return status


def print_human(output: dict) -> None:
    for key, value in output.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, default=_json_default)
            value = value if len(value) < 200 else value[:197] + "..."
        print(f"{key:>16}: {value}")



def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
