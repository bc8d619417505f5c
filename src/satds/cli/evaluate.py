"""``satds evaluate``: score predicted label maps against references (DSC, NSD, HD95, HD, vertebra id)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app, data


@app.command("evaluate")
def evaluate(
    pred: Annotated[Path, typer.Option("--pred", help="Folder of predicted label maps <case>.nii.gz (also .nii, .mha, .nrrd).", show_default=False)],
    ref: Annotated[Path, typer.Option("--ref", help="Folder of reference label maps, same names.", show_default=False)],
    labels: Annotated[Optional[Path], typer.Option("--labels", help="nnU-Net v2 dataset.json naming the label values.", show_default=False)] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="Task recipe pipelines/NAME.yaml whose 'classes' name labels 1, 2, ...", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Per-case scores: .csv (case,label,class,dsc,nsd,hd95,hd,ref_ml,pred_ml) or .parquet (all columns).", show_default=False)] = None,
    catalog: Annotated[Optional[Path], typer.Option("--catalog", "-C", help="Append scores to this (existing) catalog's 'evaluations' table; cases are looked up in its scans for their dataset.", show_default=False)] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset name of every case (overrides the catalog look-up).", show_default=False)] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="NSD tolerance in mm.")] = 1.0,
    resample: Annotated[bool, typer.Option("--resample", help="Resample predictions on another grid onto the reference grid (nearest neighbour).")] = False,
    lcc: Annotated[bool, typer.Option("--lcc", help="Keep only the largest 26-connected component of every predicted class.")] = False,
    lcc_labels: Annotated[Optional[str], typer.Option("--lcc-labels", help="Largest-component post-processing for these labels only, e.g. 1-28.", show_default=False)] = None,
    vertebrae: Annotated[bool, typer.Option("--vertebrae", help="Vertebra identification rate and localisation distance, and the CTSpine1K Dice protocol.")] = False,
    vertebra_labels: Annotated[Optional[str], typer.Option("--vertebra-labels", help="Labels that are vertebrae (default 1-25: C1-L6); implies --vertebrae.", show_default=False)] = None,
    max_distance: Annotated[float, typer.Option("--max-distance", help="Identification distance limit in mm.")] = 20.0,
    include_ref_empty: Annotated[bool, typer.Option("--include-ref-empty", help="Count false positives on classes absent from the reference (DSC/NSD 0) in the printed means.")] = False,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Cases evaluated in parallel (processes).")] = 1,
) -> None:
    """Score predicted label maps against reference label maps, case by case and class by class."""
    from ..errors import SatdsError
    from ..evaluate import aggregate
    from ..evaluate.labels import from_dataset_json, from_task, parse_ranges
    from ..evaluate.runner import Options, default_threads, evaluate as run_evaluation, lookup_cases, pair_cases, sidecar, write_scores, write_table
    from .app import console, err_console, fail, require_catalog

    if catalog is not None:
        require_catalog(catalog, "--catalog")  # only `satds ingest` creates a catalog
    if labels and task:
        raise fail("give --labels or --task, not both")
    try:
        classes = from_dataset_json(labels) if labels else from_task(task) if task else None
        lcc_sel: bool | tuple[int, ...] = True if lcc else tuple(parse_ranges(lcc_labels)) if lcc_labels else ()
        vert = tuple(parse_ranges(vertebra_labels or "1-25")) if (vertebrae or vertebra_labels) else None
    except (SatdsError, ValueError) as e:
        raise fail(str(e))

    import datetime as _dt

    started = _dt.datetime.now(_dt.UTC)
    case_info = {}
    if catalog is not None:
        pairs, _ = pair_cases(pred, ref)
        case_info = lookup_cases(catalog, [p.case for p in pairs])
    options = Options(
        classes=classes,
        tolerance_mm=tolerance,
        lcc=lcc_sel,
        vertebrae=vert,
        max_distance_mm=max_distance,
        resample=resample,
        dataset=dataset,
        case_info=case_info,
        threads=default_threads() if workers <= 1 else 1,
    )
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as prog:
        n = len(pair_cases(pred, ref)[0])
        bar = prog.add_task("evaluating", total=n)
        result = run_evaluation(pred, ref, options, workers=workers, progress=lambda r: prog.advance(bar))

    df = result.scores
    if result.missing_predictions:
        err_console.print(f"[yellow]warning:[/yellow] {len(result.missing_predictions)} case(s) without prediction, scored as pred_missing: {data(', '.join(result.missing_predictions[:10]))}", highlight=False)
    if result.missing_references:
        err_console.print(f"[yellow]warning:[/yellow] {len(result.missing_references)} prediction(s) without reference, skipped: {data(', '.join(result.missing_references[:10]))}", highlight=False)
    if result.unknown_values:
        vals = sorted({v for vs in result.unknown_values.values() for v in vs})
        err_console.print(f"[yellow]warning:[/yellow] label values not in the class list, ignored: {data(vals)} (in {len(result.unknown_values)} case(s))", highlight=False)
    resampled = [c for c, g in result.grids.items() if g == "resampled"]
    if resampled:
        err_console.print(f"resampled {len(resampled)} prediction(s) onto the reference grid", highlight=False)

    if out is not None:
        write_scores(df, out)
        if result.vertebrae is not None:
            write_table(result.vertebrae, sidecar(out, "vertebrae"))

    summary = _print_summary(console, df, result, include_ref_empty, aggregate, vert or ())
    if result.errors:
        summary["errors"] = dict(result.errors)
        err_console.print(f"[red]error:[/red] {len(result.errors)} case(s) could not be scored (flag 'error' in the scores, left out of every mean):", highlight=False)
        for msg in list(result.errors.values())[:20]:
            err_console.print(f"  [red]✗[/red] {data(msg)}", highlight=False)
        if len(result.errors) > 20:
            err_console.print(f"  … {len(result.errors) - 20} more (the 'error' column of --out)", highlight=False)

    if catalog is not None:
        from ..catalog import Catalog, new_id, now
        from ..evaluate.runner import catalog_rows

        run_id = new_id("eval")
        cat = Catalog(catalog)
        cat.write("evaluations", catalog_rows(df, run_id, pred, ref, now()))
        _log_run(cat, run_id, started, summary, pred=pred, ref=ref, labels=labels, task=task, tolerance=tolerance, lcc=lcc_sel, vertebrae=vert, resample=resample, dataset=dataset)
        console.print(f"catalog: {len(df)} evaluation rows, run {data(run_id)}", highlight=False)
    if result.errors:
        raise typer.Exit(1)  # every other case is scored and written; the failed ones are named above


def _fmt(x, digits=4) -> str:
    import math

    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _print_summary(console, df, result, include_ref_empty, aggregate, vertebra_labels) -> dict:
    from rich.table import Table

    summary: dict = {"cases": int(df.loc[df["flag"] != "error", "case"].nunique()), "rows": len(df)}
    if df.empty:
        console.print("no scores")
        return summary
    cm = aggregate.class_means(df, include_ref_empty=include_ref_empty)
    labels_of = df.groupby("class", sort=False)["label"].first()
    cm["label"] = cm["class"].map(labels_of)
    cm = cm.sort_values("label")
    t = Table(title=f"class means ({summary['cases']} cases)")
    for c in ("label", "class", "n", "DSC", "NSD", "HD95 mm", "HD mm"):
        t.add_column(c, justify="left" if c == "class" else "right")
    for r in cm.to_dict("records"):
        t.add_row(str(r["label"]), data(r["class"]), str(r["n_cases"]), _fmt(r["dsc"]), _fmt(r["nsd"]), _fmt(r["hd95"], 2), _fmt(r["hd"], 2))
    t.add_row("", "[b]mean[/b]", "", _fmt(cm["dsc"].mean()), _fmt(cm["nsd"].mean()), _fmt(cm["hd95"].mean(), 2), _fmt(cm["hd"].mean(), 2))
    console.print(t)
    summary["class_means"] = {str(r["class"]): {m: r[m] for m in ("dsc", "nsd", "hd95", "hd")} for r in cm.to_dict("records")}
    if df["dataset"].notna().any() and df["dataset"].nunique() > 1:
        dm = aggregate.dataset_means(df, include_ref_empty=include_ref_empty)
        t = Table(title="dataset means")
        for c in ("dataset", "classes", "DSC", "NSD", "HD95 mm", "HD mm"):
            t.add_column(c)
        for r in dm.itertuples(index=False):
            t.add_row(data(r.dataset), str(r.n_classes), _fmt(r.dsc), _fmt(r.nsd), _fmt(r.hd95, 2), _fmt(r.hd, 2))
        console.print(t)
    if df["region"].notna().any():
        rm = aggregate.region_means(cm, aggregate.class_regions(df))
        t = Table(title="region means")
        for c in ("region", "classes", "DSC", "NSD"):
            t.add_column(c)
        for r in rm.itertuples(index=False):
            t.add_row(data(r.region), str(r.n_classes), _fmt(r.dsc), _fmt(r.nsd))
        console.print(t)
    if result.vertebrae is not None:
        from ..evaluate.vertebrae import summarise

        v = summarise(result.vertebrae.to_dict("records"))
        _, ct = aggregate.ctspine1k(df, labels=vertebra_labels)
        console.print(
            f"vertebrae: id.rate {_fmt(100 * v['id_rate'], 2)} % ({v['n_identified']}/{v['n_ref']}, {v['n_missing']} not predicted), "
            f"d {_fmt(v['d'], 2)} mm; CTSpine1K Dice {_fmt(ct)}",
            highlight=False,
        )
        summary["vertebrae"] = {**v, "ctspine1k_dsc": ct}
    return summary


def _clean(x):
    """JSON-safe: NaN → None, numpy scalars → Python."""
    import math

    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _log_run(cat, run_id, started, summary, **config) -> None:
    import json

    from .. import __version__
    from ..catalog import now

    try:
        from ..ontology import load_ontology

        onto_version = load_ontology().version
    except Exception:
        onto_version = None
    cat.write(
        "runs",
        [
            {
                "run_id": run_id,
                "command": "evaluate",
                "satds_version": __version__,
                "ontology_version": onto_version,
                "config": json.dumps(config, sort_keys=True, default=str),
                "summary": json.dumps(_clean(summary), sort_keys=True, default=str),
                "started_at": started,
                "finished_at": now(),
            }
        ],
    )
