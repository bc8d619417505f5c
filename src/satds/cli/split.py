"""``satds split``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CatalogOpt, app, catalog_dir, console, data, fail


@app.command("split")
def split_cmd(
    catalog: CatalogOpt = None,
    train_fraction: Annotated[float, typer.Option(help="Fraction of each dataset's groups in train (where no official split).")] = 0.8,
    val_fraction: Annotated[float, typer.Option(help="Fraction of the training groups held out as val.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same split.")] = 0,
    folds: Annotated[int, typer.Option(help="Grouped cross-validation folds over train.")] = 5,
    scheme: Annotated[str, typer.Option(help="Folds to show: cv or lodo (both are stored).")] = "cv",
    from_sat_ds: Annotated[Optional[Path], typer.Option("--from-sat-ds", help="Import SAT-DS's split_json folder instead of seeded splits where ids match.")] = None,
    keep_leaks: Annotated[bool, typer.Option(help="With --from-sat-ds: keep SAT-DS's assignment even where it leaks.")] = False,
    show_groups: Annotated[bool, typer.Option("--show-groups", help="Print every group that spans datasets.")] = False,
) -> None:
    """Patient-level, leakage-free train/test splits (official splits honoured) and grouped folds."""
    from rich.table import Table

    from ..catalog import Catalog
    from ..split import run_split

    if not 0 < train_fraction <= 1:
        raise fail("--train-fraction must be in (0, 1]")
    if scheme not in ("cv", "lodo"):
        raise fail("--scheme must be cv or lodo")
    cat = Catalog(catalog_dir(catalog))
    s = run_split(cat, train_fraction=train_fraction, val_fraction=val_fraction, seed=seed, folds=folds, from_sat_ds=from_sat_ds, keep_leaks=keep_leaks)
    t = Table(title=f"split {s.split_id}")
    for c in ("dataset", "train", "val", "test"):
        t.add_column(c)
    for ds, c in sorted(s.counts.items()):
        t.add_row(ds, str(c.get("train", 0)), str(c.get("val", 0)), str(c.get("test", 0)))
    console.print(t)
    console.print(f"{len(s.cross_groups)} leakage group(s) span several datasets; each is on one side.")
    if show_groups or len(s.cross_groups) <= 10:
        for g, members in sorted(s.cross_groups.items()):
            console.print(f"  {data(g)}: {data(', '.join(members))}", highlight=False)
    for c in s.conflicts:
        console.print(f"  [yellow]conflict:[/yellow] {data(c)}", highlight=False)
    if s.sat is not None:
        sat = s.sat
        console.print(f"SAT-DS splits matched {sum(sat.matched.values())} scans in {len(sat.matched)} dataset(s); {sum(sat.unmatched.values())} scans had no SAT-DS entry (seeded split used).")
        for m in sat.missing_files:
            console.print(f"  [dim]no SAT-DS file {data(m)}[/dim]", highlight=False)
        for a in sat.ambiguous[:20]:
            console.print(f"  [yellow]SAT-DS lists an id on both sides:[/yellow] {data(a)}", highlight=False)
        for leak in sat.leaks:
            console.print(f"  [red]leak in SAT-DS's split:[/red] {data(leak)}" + ("" if keep_leaks else " → moved to test"), highlight=False)
    con = cat.connect()
    fold_counts = con.execute("SELECT fold, count(*) FILTER (WHERE role = 'val') FROM folds WHERE scheme = ? GROUP BY fold ORDER BY fold", [scheme]).fetchall()
    console.print(f"{scheme} folds (held-out scans): " + ", ".join(f"{f}: {n}" for f, n in fold_counts))
