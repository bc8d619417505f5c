"""``satds demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app, console


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Working folder (recreated).")] = Path("demo"),
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", help="Parallel processes.")] = None,
) -> None:
    """Run the whole pipeline on built-in phantom releases and the real example scans that ship with satds."""
    from ..demo import run_demo

    run_demo(out, workers=workers, console=console)
