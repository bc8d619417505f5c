"""Evaluating a folder of predictions against a folder of references.

Policies (also in ``docs/evaluation.md``):

* **Pairing.** Files pair by case name (the file name without ``.nii.gz``/``.nii``/``.mha``/``.mhd``/
  ``.nrrd``). A reference without a prediction is scored as *missing*: each of its classes gets DSC 0,
  NSD 0, distances NaN and the flag ``pred_missing`` (so it lowers the means, as a blank prediction would).
  A prediction without a reference cannot be scored; it is reported and skipped.
* **Grids.** Before any scoring, every pair's headers are compared by physical geometry. A prediction
  whose voxel centres are the reference's (up to axis order and flips) is aligned to the reference's
  voxel order. Any other grid makes that case an error (below), unless ``resample`` is set: then the
  prediction is resampled onto the reference grid by physical space, nearest neighbour.
* **Classes.** From ``dataset.json``, a task recipe, or the values found (:mod:`.labels`).
* **Distances** use the reference grid's spacing.
* **Bad cases.** A case that cannot be scored (an unreadable or non-label file, a non-integer
  prediction, a prediction on another grid without ``resample``) does not stop the run: it gets one row
  flagged ``error`` with the message in the ``error`` column (metrics NaN, left out of every mean), is
  listed in :attr:`Evaluation.errors`, and every other case is scored. ``satds evaluate`` then exits 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import CaseError, GeometryError, SatdsError
from .grids import DEFAULT_TOL_VOXELS, alignment, c_order, grid_mismatch, resample_nearest, spacing_of
from .labels import ClassSpec, from_values
from .metrics import ERROR, METRICS_VERSION, PRED_EMPTY, PRED_MISSING, check_classes, label_boxes, score_label_maps
from .vertebrae import MAX_DISTANCE_MM, identify, to_world
from .volumes import list_cases, read_grid, read_label_map

#: The columns of ``--out FILE.csv``, in order.
CSV_COLUMNS = ["case", "label", "class", "dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "flag", "error"]

#: Every column of the per-case table (``--out FILE.parquet``).
COLUMNS = [
    "case", "label", "class", "label_name", "class_id", "class_name", "region", "kind", "dataset", "scan_id",
    "dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "ref_voxels", "pred_voxels", "tolerance_mm", "flag",
    "error", "metrics_version",
]  # fmt: skip


@dataclass
class Options:
    classes: list[ClassSpec] | None = None
    tolerance_mm: float = 1.0
    lcc: bool | tuple[int, ...] = ()
    vertebrae: tuple[int, ...] | None = None
    max_distance_mm: float = MAX_DISTANCE_MM
    resample: bool = False
    grid_tol: float = DEFAULT_TOL_VOXELS
    dataset: str | None = None
    #: case → {"dataset": ..., "scan_id": ...} (from the catalog)
    case_info: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    threads: int = 1


@dataclass(frozen=True)
class Pair:
    case: str
    ref: Path
    pred: Path | None


@dataclass
class CaseResult:
    case: str
    rows: list[dict]
    vertebrae: list[dict]
    grid: str  # same | aligned | resampled | missing | error
    unknown_values: list[int]
    error: str | None = None  # why the case could not be scored


@dataclass
class Evaluation:
    scores: pd.DataFrame
    vertebrae: pd.DataFrame | None
    missing_predictions: list[str]
    missing_references: list[str]
    grids: dict[str, str]
    unknown_values: dict[str, list[int]]
    errors: dict[str, str] = field(default_factory=dict)  # case → why it could not be scored


def pair_cases(pred_dir: str | Path, ref_dir: str | Path) -> tuple[list[Pair], list[str]]:
    """Reference cases with their prediction (None when missing), and the predictions without reference."""
    refs, preds = list_cases(ref_dir), list_cases(pred_dir)
    pairs = [Pair(c, refs[c], preds.get(c)) for c in sorted(refs)]
    return pairs, sorted(set(preds) - set(refs))


def grid_errors(pairs: Sequence[Pair], options: "Options") -> dict[str, str]:
    """Per case whose headers already rule it out (unreadable, or another grid without ``resample``): why.

    Only headers are read, so a folder of predictions on the wrong grid costs seconds, not a scoring run.
    """
    out = {}
    for p in pairs:
        if p.pred is None:
            continue
        try:
            r, q = read_grid(p.ref), read_grid(p.pred)
        except SatdsError as e:
            out[p.case] = _message(p, e)
            continue
        m = grid_mismatch(r.shape, r.affine, q.shape, q.affine, options.grid_tol)
        if m and not options.resample:
            out[p.case] = _message(p, GeometryError(f"prediction is on another grid than the reference ({m}); use --resample to resample it onto the reference grid", file=str(p.pred)))
    return out


def _message(pair: Pair, e: BaseException) -> str:
    """One line naming the case and the file: ``case: file: message``."""
    if isinstance(e, CaseError):
        return str(e.located(case=pair.case))
    return f"{pair.case}: {type(e).__name__}: {e}"


def _row(case: str, spec: ClassSpec, s, options: Options) -> dict:
    info = options.case_info.get(case, {})
    return {
        "case": case,
        "label": spec.label,
        "class": spec.display,
        "label_name": spec.name,
        "class_id": spec.class_id,
        "class_name": spec.class_name,
        "region": spec.region,
        "kind": spec.kind,
        "dataset": options.dataset or info.get("dataset"),
        "scan_id": info.get("scan_id"),
        "dsc": s.dsc,
        "nsd": s.nsd,
        "hd95": s.hd95,
        "hd": s.hd,
        "ref_ml": s.ref_ml,
        "pred_ml": s.pred_ml,
        "ref_voxels": s.ref_voxels,
        "pred_voxels": s.pred_voxels,
        "tolerance_mm": options.tolerance_mm,
        "flag": s.flag,
        "error": None,
        "metrics_version": METRICS_VERSION,
    }


def error_result(pair: Pair, message: str, options: Options) -> CaseResult:
    """The one row of a case that could not be scored: flag ``error``, the message, metrics NaN."""
    info = options.case_info.get(pair.case, {})
    nan = float("nan")
    row = {c: None for c in COLUMNS} | {
        "case": pair.case,
        "dataset": options.dataset or info.get("dataset"),
        "scan_id": info.get("scan_id"),
        **{m: nan for m in ("dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml")},
        "tolerance_mm": options.tolerance_mm,
        "flag": ERROR,
        "error": message,
        "metrics_version": METRICS_VERSION,
    }
    return CaseResult(pair.case, [row], [], "error", [], message)


def safe_evaluate_case(pair: Pair, options: Options) -> CaseResult:
    """:func:`evaluate_case`, with any failure of this one case turned into its error row."""
    try:
        return evaluate_case(pair, options)
    except Exception as e:  # an unreadable file, a fractional label, a library error on odd input
        return error_result(pair, _message(pair, e), options)


def evaluate_case(pair: Pair, options: Options) -> CaseResult:
    """Score one case (reads both files)."""
    ref, ref_aff = c_order(*read_label_map(pair.ref))  # work in the reference's memory order
    grid = "same"
    if pair.pred is None:
        pred = np.zeros_like(ref)
        grid = "missing"
    else:
        pred, pred_aff = c_order(*read_label_map(pair.pred))
        al = alignment(pred.shape, pred_aff, ref.shape, ref_aff, options.grid_tol)
        if al is None:
            if not options.resample:
                raise GeometryError(
                    f"prediction is on another grid than the reference ({grid_mismatch(ref.shape, ref_aff, pred.shape, pred_aff, options.grid_tol)}); "
                    "use --resample to resample it onto the reference grid",
                    case=pair.case,
                    file=str(pair.pred),
                )
            pred = resample_nearest(pred, pred_aff, ref.shape, ref_aff)
            grid = "resampled"
        else:
            perm, flip = al
            pred = pred.transpose(perm)[tuple(slice(None, None, -1) if f else slice(None) for f in flip)]
            pred = np.ascontiguousarray(pred)  # no copy when stored like the reference
            if (perm, flip) != ((0, 1, 2), (False, False, False)):
                grid = "aligned"
    spacing = spacing_of(ref_aff)
    boxes = _boxes(ref, pred, options.threads)
    found = set(boxes[0]) | set(boxes[1])
    specs = options.classes
    if specs is None:
        specs = from_values(found)
        unknown: list[int] = []
    else:
        unknown = sorted(found - {v for s in specs for v in s.values})
    vert = set(options.vertebrae or ())
    scores = score_label_maps(
        ref,
        pred,
        spacing,
        {s.label: s.values for s in specs},
        options.tolerance_mm,
        lcc=options.lcc,
        centroids=tuple(vert),
        boxes=boxes,
        threads=options.threads,
    )
    rows = []
    for spec in specs:
        s = scores[spec.label]
        if pair.pred is None and s.flag == PRED_EMPTY:
            s.flag = PRED_MISSING
        rows.append(_row(pair.case, spec, s, options))
    vrows: list[dict] = []
    if vert:
        ref_c = {l: to_world(scores[l].ref_centroid, ref_aff) for l in sorted(vert) if l in scores and scores[l].ref_centroid}
        pred_c = {l: to_world(scores[l].pred_centroid, ref_aff) for l in sorted(vert) if l in scores and scores[l].pred_centroid}
        for r in identify(ref_c, pred_c, options.max_distance_mm):
            g, p = ref_c[r["label"]], pred_c.get(r["label"])
            vrows.append(
                {
                    "case": pair.case,
                    **r,
                    "ref_x": g[0], "ref_y": g[1], "ref_z": g[2],
                    "pred_x": p[0] if p else np.nan, "pred_y": p[1] if p else np.nan, "pred_z": p[2] if p else np.nan,
                }
            )
    return CaseResult(pair.case, rows, vrows, grid, unknown)


def _boxes(ref, pred, threads: int):
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as ex:
            a, b = ex.submit(label_boxes, ref), ex.submit(label_boxes, pred)
            return a.result(), b.result()
    return label_boxes(ref), label_boxes(pred)


def _run(args) -> CaseResult:
    pair, options = args
    return safe_evaluate_case(pair, options)


def evaluate(
    pred_dir: str | Path,
    ref_dir: str | Path,
    options: Options | None = None,
    *,
    workers: int = 1,
    progress: Callable[[CaseResult], None] | None = None,
) -> Evaluation:
    """Score every reference case against its prediction (see the module doc for the policies)."""
    options = options or Options()
    if options.classes is not None:
        try:
            check_classes({c.label: c.values for c in options.classes})
        except ValueError as e:
            raise SatdsError(str(e)) from None
    pairs, missing_refs = pair_cases(pred_dir, ref_dir)
    if not pairs:
        raise SatdsError(f"no label maps in {ref_dir}")
    bad = grid_errors(pairs, options)
    results: list[CaseResult] = [error_result(p, bad[p.case], options) for p in pairs if p.case in bad]
    for res in results:
        if progress:
            progress(res)
    pairs = [p for p in pairs if p.case not in bad]
    if workers > 1 and len(pairs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        opts = Options(**{**options.__dict__, "threads": 1})
        # fork where there is one (workers start at once, nothing to re-import); spawn elsewhere
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            for res in ex.map(_run, [(p, opts) for p in pairs]):
                results.append(res)
                if progress:
                    progress(res)
    else:
        for p in pairs:
            res = safe_evaluate_case(p, options)
            results.append(res)
            if progress:
                progress(res)
    results.sort(key=lambda r: r.case)  # the order of the reference folder, whatever failed first
    rows = [r for res in results for r in res.rows]
    scores = pd.DataFrame(rows, columns=COLUMNS)
    scores["label"] = scores["label"].astype("Int64")  # nullable: an error row has no label
    for c in ("dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "tolerance_mm"):
        scores[c] = scores[c].astype(float)
    vrows = [r for res in results for r in res.vertebrae]
    vert = pd.DataFrame(vrows) if options.vertebrae else None
    return Evaluation(
        scores=scores,
        vertebrae=vert,
        missing_predictions=[p.case for p in pairs if p.pred is None],
        missing_references=missing_refs,
        grids={res.case: res.grid for res in results},
        unknown_values={res.case: res.unknown_values for res in results if res.unknown_values},
        errors={res.case: res.error for res in results if res.error},
    )


# ------------------------------------------------------------------------------------------------ outputs


def write_scores(df: pd.DataFrame, path: str | Path) -> Path:
    """``.csv``: exactly :data:`CSV_COLUMNS`; ``.parquet``: every column."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    if name.endswith(".csv"):
        df[CSV_COLUMNS].to_csv(path, index=False)
    elif name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        raise SatdsError(f"--out must end in .csv or .parquet, not {path.name}")
    return path


def sidecar(path: str | Path, what: str) -> Path:
    """``scores.csv`` → ``scores.<what>.csv`` (same folder, same format)."""
    path = Path(path)
    for suf in (".csv", ".parquet"):
        if path.name.lower().endswith(suf):
            return path.with_name(path.name[: -len(suf)] + f".{what}{suf}")
    return path.with_name(path.name + f".{what}")


def write_table(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.lower().endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def catalog_rows(df: pd.DataFrame, run_id: str, pred_dir, ref_dir, created_at) -> list[dict]:
    """Rows for the catalog's ``evaluations`` table."""

    def val(x):
        if x is None:
            return None
        if isinstance(x, float) and np.isnan(x):
            return None
        return x

    out = []
    for r in df.to_dict("records"):
        out.append(
            {
                "run_id": run_id,
                "case": r["case"],
                "label": None if pd.isna(r["label"]) else int(r["label"]),
                "class_id": val(r.get("class_id")),
                "class_name": val(r.get("class_name")),
                "dataset": val(r.get("dataset")),
                "scan_id": val(r.get("scan_id")),
                **{k: (None if r[k] is None or (isinstance(r[k], float) and np.isnan(r[k])) else float(r[k])) for k in ("dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "tolerance_mm")},
                "flag": val(r.get("flag")),
                "metrics_version": METRICS_VERSION,
                "pred_dir": str(Path(pred_dir).resolve()),
                "ref_dir": str(Path(ref_dir).resolve()),
                "created_at": created_at,
            }
        )
    return out


def lookup_cases(catalog_root: str | Path, cases: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """Dataset and scan of each case name that matches exactly one catalog scan (by ``scan_id`` or ``case_id``)."""
    from ..catalog import Catalog

    root = Path(catalog_root)
    if not (root / "scans").exists():
        return {}
    con = Catalog(root).connect()
    try:
        names = pd.DataFrame({"name": list(cases)})
        con.register("_cases", names)
        hits = con.execute(
            "SELECT c.name, s.scan_id, s.dataset FROM _cases c JOIN scans s ON s.scan_id = c.name OR s.case_id = c.name"
        ).df()
    finally:
        con.close()
    out = {}
    for name, grp in hits.groupby("name"):
        if len(grp) == 1:
            out[name] = {"dataset": grp["dataset"].iloc[0], "scan_id": grp["scan_id"].iloc[0]}
    return out


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))
