"""Benchmark: satds's evaluation vs the surface-distance package vs a naive full-volume implementation.

A 512x512x400 reference (spacing 0.78x0.78x1.0 mm) with 30 classes of realistic organ and vertebra
sizes, and a prediction that perturbs every class (1-voxel shifts, dilations, erosions, boundary noise,
three stray false-positive islands). Times, in one process on the same machine:

* satds ``score_label_maps`` for all classes (one bounding-box pass per map, then per-class boxes);
  single-threaded, and with 2 threads; best of ``--repeat`` runs;
* the ``surface_distance`` package, per class: the two masks, ``compute_surface_distances``,
  ``compute_dice_coefficient``, surface Dice at 1 mm, robust Hausdorff at 95 and 100 (each class's best
  of ``--package-repeat`` runs, summed);
* a naive satds-style implementation that works on the full volume for every class (full-volume masks,
  neighbour codes, exact distance transforms). It is slow, so by default it runs on ``--naive-classes``
  classes and the total is extrapolated from its mean per-class time (``--naive-classes 0``: all).

Then prints the largest metric differences between satds and the package.

    PYTHONPATH=src python bench/bench_evaluate.py [--classes 30] [--naive-classes 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import make_case  # noqa: E402

from satds.evaluate.metrics import score_label_maps  # noqa: E402
from satds.evaluate.surfels import neighbour_codes, surfel_area_table  # noqa: E402

METRICS = ("dsc", "nsd", "hd95", "hd")


def package_class(ref, pred, label, spacing):
    import surface_distance as sd

    g, p = ref == label, pred == label
    r = sd.compute_surface_distances(g, p, spacing)
    return {
        "dsc": float(sd.compute_dice_coefficient(g, p)),
        "nsd": float(sd.compute_surface_dice_at_tolerance(r, 1.0)),
        "hd95": float(sd.compute_robust_hausdorff(r, 95)),
        "hd": float(sd.compute_robust_hausdorff(r, 100)),
    }


def naive_class(ref, pred, label, spacing):
    """Straightforward: everything on the full volume, distances from exact EDTs of the surfel corners."""
    table = surfel_area_table(spacing)
    g, p = ref == label, pred == label
    gp, pp = np.pad(g, 1).view(np.uint8), np.pad(p, 1).view(np.uint8)
    gc, pc = neighbour_codes(gp), neighbour_codes(pp)
    gs, ps = (gc != 0) & (gc != 255), (pc != 0) & (pc != 255)
    dg = ndimage.distance_transform_edt(~gs, sampling=spacing)
    d_pred_to_ref = dg[ps]
    del dg
    dp = ndimage.distance_transform_edt(~ps, sampling=spacing)
    d_ref_to_pred = dp[gs]
    del dp
    ag, ap = table[gc[gs]], table[pc[ps]]

    def perc(d, a, q):
        o = np.argsort(d, kind="stable")
        cum = np.cumsum(a[o]) / a.sum()
        return d[o][min(int(np.searchsorted(cum, q)), len(d) - 1)]

    inter = np.count_nonzero(g & p)
    return {
        "dsc": 2 * inter / (g.sum() + p.sum()),
        "nsd": float((ag[d_ref_to_pred <= 1].sum() + ap[d_pred_to_ref <= 1].sum()) / (ag.sum() + ap.sum())),
        "hd95": float(max(perc(d_ref_to_pred, ag, 0.95), perc(d_pred_to_ref, ap, 0.95))),
        "hd": float(max(d_ref_to_pred.max(), d_pred_to_ref.max())),
    }


def max_rel_diff(a: dict, b: dict, labels) -> dict:
    out = {}
    for m in METRICS:
        worst = 0.0
        for k in labels:
            x, y = a[k][m], b[k][m]
            worst = max(worst, abs(x - y) / max(abs(y), 1e-12))
        out[m] = worst
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs=3, default=(512, 512, 400))
    ap.add_argument("--naive-classes", type=int, default=3, help="classes timed for the naive version (0 = all)")
    ap.add_argument("--skip-package", action="store_true")
    ap.add_argument("--repeat", type=int, default=5, help="satds timings: best of this many runs")
    ap.add_argument("--package-repeat", type=int, default=2, help="package timings: best of this many runs per class")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    t = time.perf_counter()
    ref, pred, spacing, names = make_case(shape=tuple(args.shape))
    labels = list(range(1, len(names) + 1))
    print(f"case {ref.shape} spacing {spacing.tolist()}: {len(labels)} classes, built in {time.perf_counter() - t:.1f} s")
    sizes = {k: int(v) for k, v in zip(*np.unique(ref, return_counts=True)) if k}
    print(f"class sizes (voxels): min {min(sizes.values())}, median {int(np.median(list(sizes.values())))}, max {max(sizes.values())}")
    res: dict = {"shape": list(ref.shape), "spacing": spacing.tolist(), "classes": len(labels)}

    score_label_maps(ref[:64, :64, :64], pred[:64, :64, :64], spacing)  # warm-up (imports, table)
    def best(fn):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return out, min(times)

    ours, res["satds_s"] = best(lambda: score_label_maps(ref, pred, spacing))
    _, res["satds_2threads_s"] = best(lambda: score_label_maps(ref, pred, spacing, threads=2))
    ours_d = {k: {m: getattr(ours[k], m) for m in METRICS} for k in labels}
    print(f"satds, all classes:          {res['satds_s']:8.2f} s   ({res['satds_2threads_s']:.2f} s with 2 threads)")

    if not args.skip_package:
        pkg, per = {}, {}
        t0 = time.perf_counter()
        for k in labels:
            for _ in range(max(1, args.package_repeat)):
                t = time.perf_counter()
                pkg[k] = package_class(ref, pred, k, spacing)
                per[k] = min(per.get(k, np.inf), time.perf_counter() - t)
        res["package_wall_s"] = time.perf_counter() - t0
        res["package_s"] = float(sum(per.values()))
        res["package_per_class_median_s"] = float(np.median(list(per.values())))
        res["package_per_class_max_s"] = float(max(per.values()))
        print(
            f"surface-distance package:    {res['package_s']:8.2f} s   (per class: median {res['package_per_class_median_s']:.3f} s, "
            f"max {res['package_per_class_max_s']:.2f} s)"
        )
        res["speedup_vs_package"] = res["package_s"] / res["satds_s"]
        res["speedup_vs_package_2threads"] = res["package_s"] / res["satds_2threads_s"]
        res["max_rel_diff_vs_package"] = max_rel_diff(ours_d, pkg, labels)
        print(f"satds speed-up over the package: {res['speedup_vs_package']:.1f}x ({res['speedup_vs_package_2threads']:.1f}x with 2 threads)")
        print("largest relative difference satds vs package: " + ", ".join(f"{m} {v:.1e}" for m, v in res["max_rel_diff_vs_package"].items()))
        res["dsc_exactly_equal"] = all(ours_d[k]["dsc"] == pkg[k]["dsc"] for k in labels)

    n_naive = len(labels) if args.naive_classes <= 0 else min(args.naive_classes, len(labels))
    pick = labels if n_naive == len(labels) else [labels[int(i)] for i in np.linspace(0, len(labels) - 1, n_naive).round()]
    naive, per = {}, []
    for k in pick:
        t = time.perf_counter()
        naive[k] = naive_class(ref, pred, k, spacing)
        per.append(time.perf_counter() - t)
    res["naive_classes_timed"] = pick
    res["naive_per_class_mean_s"] = float(np.mean(per))
    res["naive_s"] = float(np.sum(per)) if n_naive == len(labels) else float(np.mean(per) * len(labels))
    res["naive_extrapolated"] = n_naive != len(labels)
    res["speedup_vs_naive"] = res["naive_s"] / res["satds_s"]
    note = f" (extrapolated from {n_naive} classes, {res['naive_per_class_mean_s']:.1f} s each)" if res["naive_extrapolated"] else ""
    print(f"naive full-volume version:   {res['naive_s']:8.2f} s{note}")
    print(f"satds speed-up over naive: {res['speedup_vs_naive']:.0f}x")
    res["max_rel_diff_naive_vs_satds"] = max_rel_diff(naive, ours_d, pick)
    print("largest relative difference naive vs satds: " + ", ".join(f"{m} {v:.1e}" for m, v in res["max_rel_diff_naive_vs_satds"].items()))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
