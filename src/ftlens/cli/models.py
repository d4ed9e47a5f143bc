"""``ftlens models``: register the models you bring (kept under ``FTLENS_HOME``)."""

from __future__ import annotations

from pathlib import Path

import click

from ftlens.cli import render
from ftlens.train.registry import Registry

HOME = click.option("--home", type=click.Path(file_okay=False, path_type=Path),
                    help="The ftlens home. Default: $FTLENS_HOME or ~/.ftlens.")


def _registry(home: Path | None) -> Registry:
    from ftlens.train.models import ftlens_home

    return Registry(home or ftlens_home())


@click.group()
def models() -> None:
    """Register models to fine-tune and chat with: a Hugging Face model directory, a .gguf
    file, or a hub id already in the local Hugging Face cache (nothing is downloaded).
    `ftlens serve` on the same home offers them by name; a client never names a path.

    \b
    Examples:
      ftlens models add qwen-small /models/Qwen2.5-0.5B-Instruct
      ftlens models add llama-1b meta-llama/Llama-3.2-1B-Instruct   # from the HF cache
      ftlens models list
      ftlens models remove qwen-small
    """


@models.command("add")
@click.argument("name")
@click.argument("source")
@HOME
def add(name: str, source: str, home: Path | None) -> None:
    """Register SOURCE (a model directory, a .gguf file or a cached hub id) as NAME."""
    from ftlens.server.catalog import BASE_MODELS

    found = _registry(home).add(name, source, reserved=BASE_MODELS)
    render.stdout().print(f"registered {found.name}: {found.kind} {found.source}",
                          highlight=False, soft_wrap=True)


@models.command("list")
@HOME
@render.json_flag("registered models")
def list_models(home: Path | None, as_json: bool) -> None:
    """The registered models."""
    found = _registry(home).all()
    if as_json:
        render.print_json([{"name": r.name, "kind": r.kind, "source": r.source}
                           for r in found])
        return
    console = render.stdout()
    if not found:
        console.print("no models registered; add one with `ftlens models add NAME PATH`")
    for r in found:
        console.print(f"{r.name}\t{r.kind}\t{r.source}", highlight=False, soft_wrap=True)


@models.command("remove")
@click.argument("name")
@HOME
def remove(name: str, home: Path | None) -> None:
    """Forget NAME (its files stay where they are; fine-tuned models made from it keep
    working)."""
    from ftlens.errors import ConfigError

    if not _registry(home).remove(name):
        raise ConfigError(f"no model named {name!r} is registered",
                          hint="see `ftlens models list`")
    render.stdout().print(f"removed {name}", highlight=False)
