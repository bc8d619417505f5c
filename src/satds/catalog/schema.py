"""Every catalog table's schema, defined once. Column names are part of the interface users query.

Tables are stored as immutable Parquet part files; the DuckDB views in :mod:`satds.catalog.store` show
the current state (newest ingest of each dataset, newest generation of each scan). The columns ``gen``
and ``ingest_id`` implement that bookkeeping.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

_f64 = pa.float64()
_i64 = pa.int64()
_str = pa.string()
_ts = pa.timestamp("us", tz="UTC")
_f64s = pa.list_(_f64)
_i64s = pa.list_(_i64)
_strs = pa.list_(_str)


TABLES: dict[str, pa.Schema] = {
    # One row per ingest of a dataset; the newest row is the dataset's current state.
    "datasets": pa.schema(
        [
            ("dataset", _str),
            ("title", _str),
            ("modality", _str),
            ("region", _str),
            ("licence", _str),
            ("redistributable", pa.bool_()),
            ("url", _str),
            ("root", _str),
            ("arrangement", _str),  # which of the spec's arrangements the root holds ("release": the publisher's)
            ("spec_hash", _str),
            ("ingest_id", _str),
            ("cases", _i64),
            ("scans", _i64),
            ("failures", _i64),
            ("ingested_at", _ts),
            ("satds_version", _str),
            ("ontology_version", _str),
        ]
    ),
    # One row per image (with its channels) and per generation (ingest, then each build).
    "scans": pa.schema(
        [
            ("scan_id", _str),
            ("dataset", _str),
            ("case_id", _str),
            ("patient_id", _str),
            ("sat_id", _str),
            ("modality", _str),
            ("channels", _strs),
            ("channel_modalities", _strs),
            ("image_paths", _strs),
            ("label_paths", _strs),
            ("label_kind", _str),
            ("source_values", _strs),
            ("shape", _i64s),
            ("spacing", _f64s),
            ("affine", _f64s),
            ("axcodes", _str),
            ("dtype", _str),
            # A DICOM series acquired with a tilted gantry: the tilt (degrees between the slice step and the
            # slice normal); its slices were resampled onto the orthogonal grid above as dcm2niix does. Null:
            # no tilt, the voxels are the file's own.
            ("gantry_tilt_deg", _f64),
            ("official_split", _str),
            ("case_files", _str),
            ("stat_key", _str),
            ("input_hash", _str),
            ("fingerprint", _str),
            ("normalised_image", _str),
            ("normalised_label", _str),
            ("target_shape", _i64s),
            ("target_spacing", _f64s),
            ("target_affine", _f64s),
            ("crop_box", _i64s),
            ("build_hash", _str),
            ("status", _str),
            ("ingest_id", _str),
            ("gen", _i64),
            ("updated_at", _ts),
        ]
    ),
    # One row per scan x class the scan's dataset annotates (voxels = 0: annotated and absent).
    "annotations": pa.schema(
        [
            ("scan_id", _str),
            ("dataset", _str),
            ("class_id", _str),
            ("class_name", _str),
            ("source_values", _strs),
            ("derived", pa.bool_()),
            ("rule", _str),
            ("label_values", _i64s),
            ("voxels", _i64),
            ("volume_ml", _f64),
            ("voxels_target", _i64),
            ("volume_ml_target", _f64),
            ("bbox_min_mm", _f64s),
            ("bbox_max_mm", _f64s),
            ("centroid_mm", _f64s),
            ("ingest_id", _str),
            ("gen", _i64),
        ]
    ),
    # What each dataset can annotate (source and derived classes), for coverage.
    "dataset_classes": pa.schema(
        [
            ("dataset", _str),
            ("class_id", _str),
            ("class_name", _str),
            ("derived", pa.bool_()),
            ("rule", _str),
            ("ingest_id", _str),
        ]
    ),
    # One row per scan per split run; the newest run is current.
    "splits": pa.schema(
        [
            ("split_id", _str),
            ("scan_id", _str),
            ("dataset", _str),
            ("split", _str),
            ("group_id", _str),
            ("reason", _str),
            ("created_at", _ts),
        ]
    ),
    # Cross-validation and leave-one-dataset-out folds: the fold in which a scan is held out.
    "folds": pa.schema(
        [
            ("split_id", _str),
            ("scheme", _str),
            ("scan_id", _str),
            ("dataset", _str),
            ("fold", _i64),
            ("role", _str),
            ("group_id", _str),
        ]
    ),
    "failures": pa.schema(
        [
            ("dataset", _str),
            ("case", _str),
            ("scan_id", _str),
            ("file", _str),
            ("stage", _str),
            ("error_type", _str),
            ("error", _str),
            ("ingest_id", _str),
            ("gen", _i64),
            ("time", _ts),
        ]
    ),
    # Provenance of every command that wrote to the catalog.
    "runs": pa.schema(
        [
            ("run_id", _str),
            ("command", _str),
            ("satds_version", _str),
            ("ontology_version", _str),
            ("config", _str),
            ("summary", _str),
            ("started_at", _ts),
            ("finished_at", _ts),
        ]
    ),
    "evaluations": pa.schema(
        [
            ("run_id", _str),
            ("case", _str),
            ("label", _i64),
            ("class_id", _str),
            ("class_name", _str),
            ("dataset", _str),
            ("scan_id", _str),
            ("dsc", _f64),
            ("nsd", _f64),
            ("hd95", _f64),
            ("hd", _f64),
            ("ref_ml", _f64),
            ("pred_ml", _f64),
            ("tolerance_mm", _f64),
            ("flag", _str),
            ("metrics_version", _str),
            ("pred_dir", _str),
            ("ref_dir", _str),
            ("created_at", _ts),
        ]
    ),
    "qc_flags": pa.schema(
        [
            ("run_id", _str),
            ("scan_id", _str),
            ("dataset", _str),
            ("class_id", _str),
            ("check", _str),
            ("severity", _str),
            ("message", _str),
            ("value", _f64),
            ("preview", _str),
            ("created_at", _ts),
        ]
    ),
}


def schema(table: str) -> pa.Schema:
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"no catalog table {table!r}; tables are {', '.join(TABLES)}") from None


def empty(table: str) -> pa.Table:
    return schema(table).empty_table()
