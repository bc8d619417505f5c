"""What the command line prints: data is shown as it is (no console markup), library warnings go to the
log (``--verbose`` shows them), and nothing is written under ``$HOME``."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from satds.cli import app
from satds.phantoms import generate

from _robust import satds, satds_env

runner = CliRunner()


@pytest.fixture
def liver(tmp_path):
    return generate("msd_liver", tmp_path / "Task03_Liver")


def test_markup_in_file_names_and_values_is_printed_as_is(liver, tmp_path):
    # Two cases whose names hold console markup, both without their label file (so both fail), and a
    # catalog whose path holds a closing tag (rich raises MarkupError on it when taken for markup).
    for name in ("liver_[bold]8", "liver_[red]9[x]"):
        shutil.copy(liver / "imagesTr/liver_1.nii.gz", liver / f"imagesTr/{name}.nii.gz")
    cat = tmp_path / "cat[" / "red]"
    r = runner.invoke(app, ["ingest", "msd_liver", "--root", str(liver), "-C", str(cat), "-w", "1"])
    assert r.exit_code == 0, r.output
    assert "msd_liver: 3 scans ingested, 2 failed" in r.output and "cat[/red]" in r.output
    assert "msd_liver/liver_[bold]8: labelsTr/liver_[bold]8.nii.gz: label file is missing" in r.output
    assert "msd_liver/liver_[red]9[x]: labelsTr/liver_[red]9[x].nii.gz: label file is missing" in r.output
    # satds query's table: values and column names from data.
    r = runner.invoke(app, ["query", """SELECT "case" AS "[b]case[/b]", '[/x]' AS v FROM failures ORDER BY 1""", "-C", str(cat)])
    assert r.exit_code == 0, r.output
    assert "[b]case[/b]" in r.output and "liver_[bold]8" in r.output and "liver_[red]9[x]" in r.output and "[/x]" in r.output
    # A SQL error that quotes the value is one clear line too.
    r = runner.invoke(app, ["query", "SELECT '[/x]'::INTEGER", "-C", str(cat)])
    assert r.exit_code == 1 and "[/x]" in r.output and "Traceback" not in r.output


def test_the_demo_prints_its_folders_as_they_are(tmp_path):
    import io

    from rich.console import Console

    from satds.demo import add_real_scans

    out = Console(file=io.StringIO(), width=400)
    add_real_scans(tmp_path / "demo[/x]", out)  # a closing tag in the demo's folder: MarkupError if taken for markup
    assert f"real scan added to btcv                 → {tmp_path}/demo[/x]/btcv" in out.file.getvalue()


def test_a_file_size_limit_is_said_like_a_full_disk(tmp_path):
    # ulimit -f (RLIMIT_FSIZE) makes a write fail with EFBIG: one clear line, as for ENOSPC, not a traceback.
    import resource
    import signal

    from satds.catalog import Catalog

    Catalog(tmp_path / "cat").write("runs", [{"run_id": "r", "command": "test"}])

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    r = satds("query", "SELECT range AS n FROM range(100000)", "-C", tmp_path / "cat", "-f", "csv", "--out", tmp_path / "n.csv", preexec_fn=limit)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "error: disk full (File too large): free some space" in r.stderr


def _nifti_with_odd_extension(path) -> None:
    """A NIfTI whose header extension is 20 bytes long (not a multiple of 16): nibabel warns on reading."""
    raw = gzip.decompress(path.read_bytes())
    offset = int(struct.unpack("<f", raw[108:112])[0])
    hdr = bytearray(raw[:348])
    ext = struct.pack("<ii", 20, 0) + b"satds-test\0\0"
    hdr[108:112] = struct.pack("<f", 348 + 4 + len(ext))
    path.write_bytes(gzip.compress(bytes(hdr) + bytes([1, 0, 0, 0]) + ext + raw[offset:]))


def test_library_warnings_go_to_the_log_and_verbose_shows_them(liver, tmp_path):
    _nifti_with_odd_extension(liver / "imagesTr/liver_0.nii.gz")
    warning = "Extension size is not a multiple of 16 bytes"
    log = tmp_path / "satds.log"
    env = satds_env(SATDS_LOG=str(log))
    # --headers-only: nibabel reads the header (and warns about the extension) in the pool workers; the full
    # read's own NIfTI parser skips extensions and so has nothing to warn about.
    r = satds("ingest", "msd_liver", "--root", liver, "--headers-only", "-C", tmp_path / "a", "-w", "2", env=env)
    assert r.returncode == 0, r.stderr
    assert warning not in r.stderr and "UserWarning" not in r.stderr
    assert f"library warnings were written to {log} (satds --verbose shows them)" in r.stderr.replace("\n", "")
    assert warning in log.read_text() and "py.warnings" in log.read_text()
    assert "3 scans ingested" in r.stdout
    r = satds("--verbose", "ingest", "msd_liver", "--root", liver, "--headers-only", "-C", tmp_path / "b", "-w", "1", env=env)
    assert r.returncode == 0 and warning in r.stderr


def test_qc_and_report_write_nothing_under_home(liver, tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in satds_env().items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "SATDS_LOG")}
    env |= {"HOME": str(home), "TMPDIR": str(tmp)}
    cat = tmp_path / "cat"
    script = (
        "from satds.cli import app\n"
        f"for args in (['ingest', 'msd_liver', '--root', {str(liver)!r}], ['build'], ['qc'], ['report', '--out', {str(tmp_path / 'r.html')!r}]):\n"
        f"    app(args + ['-C', {str(cat)!r}] + (['-w', '1'] if args[0] in ('ingest', 'build', 'qc') else []), standalone_mode=False)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.html").stat().st_size > 10_000 and list((cat / "qc" / "previews").rglob("*.png"))
    assert sorted(home.rglob("*")) == []
    assert (tmp / f"satds-{os.getuid()}" / "matplotlib").is_dir()
