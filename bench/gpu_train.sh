#!/usr/bin/env bash
# GPU check of the universal-33 training pieces: short real nnU-Net trainings, scored on the test split.
#
#   spine specialist:  nnUNetTrainer_Satds (plain nnU-Net)   vs  nnUNetTrainer_SatdsCPTM (cross-patch transformer)
#   organ specialist:  ignore export + nnUNetTrainer_Satds   vs  marginal export + nnUNetTrainer_SatdsMargExc
#
# Data: satds's own demo releases (phantoms of CTSpine1K and the organ datasets, plus the real example scans
# when ../shared/realdata is there), ingested, built and split by satds. Each model trains EPOCHS epochs on
# every training case (fold all), predicts the test split and is scored with `satds evaluate`; the script
# prints, per model, the mean time per epoch (nnU-Net's own "Epoch time", first epoch left out), the training
# time, the test DSC (mean over classes) and, for the spine, the vertebra identification rate.
#
# Usage:  bench/gpu_train.sh [OUT]                (OUT defaults to a new folder in the system temp folder)
# Environment:
#   EPOCHS=50 ITERATIONS=250 VAL_ITERATIONS=50   schedule of every training (satds trainers read SATDS_*)
#   DEVICE=cuda PROCESSES=8                      nnU-Net device and worker processes
#   WHEELS=DIR                                   install nnunetv2 (and satds's dependencies) from these wheels,
#                                                offline, when they are not importable
#   FULL=1                                       afterwards run the whole pipeline: satds train --recipe universal33-paper
#   PYTHON=python3
# nnUNet_compile defaults to off here (same setting for every model; compiling costs minutes per model).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/satds_gpu_train.XXXXXX")}
EPOCHS=${EPOCHS:-50}
ITERATIONS=${ITERATIONS:-250}
VAL_ITERATIONS=${VAL_ITERATIONS:-50}
DEVICE=${DEVICE:-cuda}
PROCESSES=${PROCESSES:-8}
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export nnUNet_compile=${nnUNet_compile:-f}
export SATDS_ITERATIONS=$ITERATIONS SATDS_VAL_ITERATIONS=$VAL_ITERATIONS
mkdir -p "$OUT"
ROOT="$OUT/nnunet"
CAT="$OUT/demo/catalog"
satds() { "$PY" -m satds "$@"; }
log() { echo "[gpu_train] $*" >&2; }
raw_folder() {  # a task recipe or an exported task's name -> DatasetNNN_Name
    "$PY" -c "import sys; from satds.export.recipe import find_recipe; print(find_recipe(sys.argv[1], sys.argv[2]).folder_name)" "$1" "$ROOT/nnUNet_raw"
}

# ---------------------------------------------------------------- environment
if ! "$PY" -c "import nnunetv2, torch" 2>/dev/null; then
    if [[ -n "${WHEELS:-}" ]]; then
        log "installing nnunetv2 from $WHEELS"
        "$PY" -m pip install -q --no-index --find-links "$WHEELS" nnunetv2
    else
        log "nnunetv2 (and torch) are not importable with $PY; install them or set WHEELS=DIR"; exit 2
    fi
fi
if ! "$PY" -c "import satds.cli" 2>/dev/null; then
    if [[ -n "${WHEELS:-}" ]]; then
        log "installing satds's dependencies from $WHEELS"
        "$PY" -m pip install -q --no-index --find-links "$WHEELS" -e "$REPO"
    else
        log "satds's dependencies are missing (pip install -e $REPO, or set WHEELS=DIR)"; exit 2
    fi
fi
"$PY" - "$DEVICE" <<'EOF'
import sys, torch, nnunetv2
from importlib.metadata import version
dev = sys.argv[1]
if dev == "cuda" and not torch.cuda.is_available():
    sys.exit("[gpu_train] DEVICE=cuda but torch sees no GPU")
name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
print(f"[gpu_train] torch {torch.__version__}, nnunetv2 {version('nnunetv2')}, device {name}", file=sys.stderr)
EOF

# ---------------------------------------------------------------- data (satds's own releases)
if [[ ! -d "$CAT" ]]; then
    log "demo releases -> ingest -> build -> split in $OUT/demo"
    "$PY" - "$OUT/demo" "$PROCESSES" <<'EOF'
import sys
from pathlib import Path
from satds.demo import prepare
prepare(Path(sys.argv[1]), workers=int(sys.argv[2]), real=True)
EOF
fi

# ---------------------------------------------------------------- trainings
# label: task recipe | export policy (or -) | dataset id override (or -) | name override (or -) | trainer
RUNS=(
  "spine-nnunet|universal33-spine|-|-|-|nnUNetTrainer_Satds"
  "spine-cptm|universal33-spine|-|-|-|nnUNetTrainer_SatdsCPTM"
  "organs-ignore|universal33-organs|ignore|544|Universal33OrgansIgnore|nnUNetTrainer_Satds"
  "organs-margexc|universal33-organs|-|-|-|nnUNetTrainer_SatdsMargExc"
)
RESULTS="$OUT/results.tsv"
: > "$RESULTS"
for run in "${RUNS[@]}"; do
    IFS='|' read -r label task policy id name trainer <<< "$run"
    args=(--task "$task")
    if [[ "$policy" != "-" ]]; then
        # an ad-hoc copy of the recipe under its own name and id, with another policy
        satds export nnunet --task "$task" --policy "$policy" --dataset-id "$id" --name "$name" --out "$ROOT/nnUNet_raw" -C "$CAT" >&2
        args=(--task "$name")
    fi
    log "$label: $trainer, $EPOCHS epochs x $ITERATIONS iterations"
    t0=$(date +%s)
    satds train "${args[@]}" --trainer "$trainer" --epochs "$EPOCHS" --fold all --device "$DEVICE" --processes "$PROCESSES" --root "$ROOT" -C "$CAT" > "$OUT/$label.train.log" 2>&1 \
        || { log "$label: training failed, see $OUT/$label.train.log"; tail -30 "$OUT/$label.train.log" >&2; exit 1; }
    t1=$(date +%s)
    satds predict "${args[@]}" --trainer "$trainer" --fold all --split test --device "$DEVICE" --processes "$PROCESSES" --root "$ROOT" --out "$OUT/pred-$label" > "$OUT/$label.predict.log" 2>&1 \
        || { log "$label: prediction failed, see $OUT/$label.predict.log"; exit 1; }
    dataset=$(raw_folder "${args[1]}")
    folder="$ROOT/nnUNet_raw/$dataset"
    vert=()
    [[ "$task" == "universal33-spine" ]] && vert=(--vertebrae)
    satds evaluate --pred "$OUT/pred-$label" --ref "$folder/labelsTs" --labels "$folder/dataset.json" --out "$OUT/$label.csv" "${vert[@]}" > "$OUT/$label.evaluate.log" 2>&1 \
        || { log "$label: evaluation failed, see $OUT/$label.evaluate.log"; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$label" "$trainer" "$((t1 - t0))" "$ROOT/nnUNet_results/$dataset/${trainer}__nnUNetPlans__3d_fullres/fold_all" >> "$RESULTS"
done

# ---------------------------------------------------------------- report
"$PY" - "$OUT" "$EPOCHS" "$ITERATIONS" <<'EOF'
import glob, re, sys
from pathlib import Path
import pandas as pd
from satds.evaluate.vertebrae import summarise

out, epochs, iters = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
print(f"\n{epochs} epochs x {iters} iterations, fold all, scored on the test split")
print(f"{'model':<16} {'trainer':<28} {'s/epoch':>8} {'train s':>8} {'test DSC':>9} {'cases':>6} {'vert id':>8}")
for line in (out / "results.tsv").read_text().splitlines():
    label, trainer, seconds, model = line.split("\t")
    times = []
    for f in sorted(glob.glob(f"{model}/training_log_*.txt")):
        times += [float(x) for x in re.findall(r"Epoch time: ([0-9.]+) s", Path(f).read_text())]
    per_epoch = sum(times[1:]) / len(times[1:]) if len(times) > 1 else (times[0] if times else float("nan"))
    df = pd.read_csv(out / f"{label}.csv")
    dsc = df[df["ref_ml"] > 0].groupby("label")["dsc"].mean().mean()
    vf = out / f"{label}.vertebrae.csv"
    vid = f"{100 * summarise(pd.read_csv(vf).to_dict('records'))['id_rate']:.1f}%" if vf.exists() else "-"
    print(f"{label:<16} {trainer:<28} {per_epoch:>8.2f} {seconds:>8} {dsc:>9.3f} {df['case'].nunique():>6} {vid:>8}")
EOF

if [[ "${FULL:-0}" == "1" ]]; then
    log "the whole pipeline: satds train --recipe universal33-paper --epochs $EPOCHS"
    satds train --recipe universal33-paper --epochs "$EPOCHS" --device "$DEVICE" --processes "$PROCESSES" --root "$ROOT" -C "$CAT"
fi
log "outputs in $OUT"
