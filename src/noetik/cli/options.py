"""Options shared by several commands."""

from __future__ import annotations

import json

import typer

from noetik.errors import ConfigError

EnvOptionOpt = typer.Option(
    None,
    "--env-option",
    help="Environment option NAME=VALUE (repeatable; VALUE parsed as JSON when it is JSON), "
    "e.g. sim_dir=runs/sim or leave_model=hazard.",
)


RayAddressOpt = typer.Option(
    None,
    "--ray-address",
    metavar="ADDRESS",
    help="Join the Ray cluster at ADDRESS (HOST:PORT of `ray start --head`, or 'auto'); "
    "implies --ray.",
)


def parse_env_options(options: list[str]) -> dict[str, object]:
    """``NAME=VALUE`` strings as a dict (values parsed as JSON when possible)."""
    parsed: dict[str, object] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env-option must look like NAME=VALUE, got '{item}'")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed
