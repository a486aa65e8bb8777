"""What every `quanyi` command shares: consoles, settings with a clear message, running a job on a shop context."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from quanyi.config import Settings, get_settings
from quanyi.errors import DomainError

__all__ = ["console", "err", "load_settings", "run_job"]

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        err.print(f"[red]Configuration problem:[/red] {messages}")
        raise typer.Exit(2) from None


def run_job(job: Callable[..., Awaitable[T]]) -> T:
    """Run an async job against a fresh shop context, turning domain errors into clean exits."""
    from quanyi.context import build_context
    from quanyi.inventory.masking import install_log_redaction

    install_log_redaction()  # a command's log lines never carry a plaintext card key

    async def main() -> T:
        ctx = build_context(load_settings())
        try:
            return await job(ctx)
        finally:
            await ctx.close()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        err.print(f"[red]Error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(1) from None
