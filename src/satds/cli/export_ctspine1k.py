"""``satds export ctspine1k``: the CTSpine1K release from the ingested release or its sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import CatalogOpt, catalog_dir, console, data, err_console
from .export import export_app


@export_app.command("ctspine1k")
def export_ctspine1k_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the release (raw_data/volumes, raw_data/labels, data_split.txt, ...).")],
    catalog: CatalogOpt = None,
    strict: Annotated[bool, typer.Option(help="Fail unless all 1,005 cases of data_split.txt are written without problems.")] = False,
) -> None:
    """Write the CTSpine1K release as distributed (per source: COLONOG, HNSCC-3DCT-RT, MSD-T10, COVID-19)."""
    from ..catalog import Catalog
    from ..export.ctspine1k import export_ctspine1k

    err_console.print("[yellow]licence:[/yellow] CTSpine1K is CC BY-NC-SA; its sources carry their own terms (TCIA, MSD CC BY-SA). Do not redistribute without checking them.", highlight=False)
    rep = export_ctspine1k(Catalog(catalog_dir(catalog)), out, strict=strict)
    console.print(f"CTSpine1K release in {data(out)}: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.written.items())) + f" ({rep.copied} images copied, {rep.converted} converted from DICOM or re-laid on the label grid)")
    console.print("data_split.txt sections written: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.sections.items())))
    if rep.missing:
        console.print(f"[yellow]{len(rep.missing)} of the 1,005 cases in data_split.txt are not in the catalog[/yellow] (list in {data(out / 'satds_export.json')})", highlight=False)
    for p in rep.problems[:20]:
        err_console.print(f"  [red]✗[/red] {data(p)}", highlight=False)
