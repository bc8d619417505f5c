"""The catalog under faults: a damaged part, a foreign part, a full disk, concurrent compaction, and SQL
that reaches for files. Reads name the bad part; repair quarantines it and says what to re-ingest."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from satds.catalog import Catalog
from satds.cli import app
from satds.ingest import ingest
from satds.phantoms import generate

from _robust import satds_env, tree_digest

runner = CliRunner()


def count(cat: Catalog, sql: str):
    con = cat.connect()
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def ingested(tmp_path):
    liver = generate("msd_liver", tmp_path / "Task03_Liver")
    cat = Catalog(tmp_path / "cat")
    assert ingest("msd_liver", liver, cat, workers=1).scans == 3
    return liver, cat


def test_truncated_part_is_named_then_quarantined_and_reingest_restores_it(ingested):
    liver, cat = ingested
    before = tree_digest(liver)
    want = count(cat, "SELECT scan_id, class_id, voxels FROM annotations ORDER BY 1, 2")
    [part] = cat.parts("annotations")
    part.write_bytes(part.read_bytes()[:300])  # a copy cut short
    name = f"annotations/{part.name}"
    # Every read names the part and the way out (no traceback).
    r = runner.invoke(app, ["query", "SELECT count(*) FROM scans", "-C", str(cat.root)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{name}: damaged: its Parquet footer cannot be read" in r.output and "satds catalog repair" in r.output
    r = runner.invoke(app, ["catalog", "check", "-C", str(cat.root)])
    assert r.exit_code == 1 and part.name[:20] in r.output and "unreadable" in r.output
    r = runner.invoke(app, ["catalog", "repair", "-C", str(cat.root)])
    assert r.exit_code == 0, r.output
    assert (cat.root / "quarantine" / "annotations" / part.name).exists() and not part.exists()
    assert f"satds ingest msd_liver --root {liver}" in r.output and "3 labelled scan(s) have no annotation rows" in r.output
    assert count(cat, "SELECT count(*) FROM annotations") == [(0,)]
    # Re-ingesting reads again exactly the cases whose rows went with the part.
    s = ingest("msd_liver", liver, cat, workers=1)
    assert (s.scans, s.reused) == (3, 0)
    assert count(cat, "SELECT scan_id, class_id, voxels FROM annotations ORDER BY 1, 2") == want
    assert runner.invoke(app, ["catalog", "check", "-C", str(cat.root)]).exit_code == 0
    assert tree_digest(liver) == before


def test_part_garbled_behind_an_intact_footer_is_named_when_read(ingested):
    _, cat = ingested
    [part] = cat.parts("annotations")
    raw = bytearray(part.read_bytes())
    raw[60:400] = bytes(b ^ 0x5A for b in raw[60:400])  # data pages garbled, footer intact
    part.write_bytes(bytes(raw))
    r = runner.invoke(app, ["query", "SELECT * FROM annotations", "-C", str(cat.root)])
    assert r.exit_code == 1 and f"annotations/{part.name}: damaged: its data cannot be read" in r.output
    r = runner.invoke(app, ["catalog", "check", "--quick", "-C", str(cat.root)])
    assert r.exit_code == 0  # the footer alone looks fine; the full check reads the data
    r = runner.invoke(app, ["catalog", "check", "-C", str(cat.root)])
    assert r.exit_code == 1 and part.name[:20] in r.output
    from satds.catalog.repair import check

    assert [(b.path, b.problem.split(" (")[0]) for b in check(cat)] == [(part, "damaged: its data cannot be read")]


def test_a_users_sql_error_is_said_as_it_is_without_reading_every_part(ingested):
    # A failed cast is the query's own error, never a damaged file's: no full read of the catalog (which
    # would take minutes on a large one), and no blame on a damaged part the query did not touch.
    import duckdb

    from satds.catalog.store import diagnose

    _, cat = ingested
    [part] = cat.parts("annotations")
    raw = bytearray(part.read_bytes())
    raw[60:400] = bytes(b ^ 0x5A for b in raw[60:400])  # data pages garbled, footer intact
    part.write_bytes(bytes(raw))
    with pytest.raises(duckdb.ConversionException) as typo:
        duckdb.connect().execute("SELECT 'a'::INT")
    assert diagnose(typo.value, [cat.root]) is None
    r = runner.invoke(app, ["query", "SELECT 'a'::INT", "-C", str(cat.root)])
    assert r.exit_code == 1 and "Could not convert string 'a' to INT32" in r.output and "damaged" not in r.output, r.output
    # What DuckDB raises on a garbled page still leads to the part.
    with pytest.raises(duckdb.Error) as bad:
        cat.connect().execute("SELECT * FROM annotations").fetchall()
    assert f"annotations/{part.name}: damaged: its data cannot be read" in diagnose(bad.value, [cat.root])


def test_lost_datasets_part_is_found_by_comparing_tables(ingested):
    liver, cat = ingested
    [part] = cat.parts("datasets")
    part.write_bytes(b"\0" * part.stat().st_size)  # garbled in place
    from satds.catalog.repair import repair

    rep = repair(cat)
    assert [(b.table, b.datasets) for b, _ in rep.moved] == [("datasets", None)]
    assert rep.reingest == {"msd_liver": ["it has scans but no datasets row"]}
    s = ingest("msd_liver", liver, cat, workers=1)
    assert s.reused == 3 and count(cat, "SELECT count(*) FROM scans") == [(3,)]


def test_sql_reaches_only_the_catalog_and_a_copied_in_file_is_refused(ingested, tmp_path):
    _, cat = ingested
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b\n1,2\n")
    root = str(cat.root)
    r = runner.invoke(app, ["query", f"SELECT * FROM read_csv('{outside}')", "-C", root])
    assert r.exit_code == 1 and "file system operations are disabled" in r.output and "--allow-files" in r.output
    r = runner.invoke(app, ["query", f"COPY (SELECT * FROM scans) TO '{tmp_path / 'leak.csv'}'", "-C", root])
    assert r.exit_code == 1 and not (tmp_path / "leak.csv").exists()
    r = runner.invoke(app, ["query", "SET enable_external_access = true", "-C", root])
    assert r.exit_code == 1 and "locked" in r.output.lower()
    r = runner.invoke(app, ["query", f"SELECT b FROM read_csv('{outside}')", "-C", root, "--allow-files", "-f", "csv"])
    assert r.exit_code == 0 and r.output.splitlines() == ["b", "2"]
    # Inside the catalog a COPY may write, but the next read refuses the file by name.
    r = runner.invoke(app, ["query", f"COPY (SELECT * FROM _raw_scans) TO '{cat.root / 'scans' / 'mine.parquet'}'", "-C", root])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["query", "SELECT count(*) FROM scans", "-C", root])
    assert r.exit_code == 1 and "scans/mine.parquet: not a satds part (no satds entry in its footer; written by DuckDB" in r.output
    r = runner.invoke(app, ["catalog", "repair", "-C", root])
    assert r.exit_code == 0 and "mine.parquet was not satds's (its rows of msd_liver were never part of the catalog)" in r.output
    assert "re-ingest" not in r.output
    assert count(cat, "SELECT count(*) FROM scans") == [(3,)]
    # A satds-looking footer on another table's folder is refused too.
    [ann] = cat.parts("annotations")
    shutil.copy(ann, cat.root / "scans" / ann.name)
    with pytest.raises(Exception, match=r"a part of table 'annotations', not 'scans'"):
        cat.connect()


COMPACTOR = """
import sys
from satds.catalog import Catalog
cat, tag, rounds = Catalog(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(rounds):
    for j in range(2):
        cat.write("runs", [{"run_id": f"{tag}-{i}-{j}", "command": "test"}])
    cat.compact("runs")
"""

READER = """
import sys
from satds.catalog import Catalog
cat, rounds = Catalog(sys.argv[1]), int(sys.argv[2])
seen = []
for i in range(rounds):
    con = cat.connect()
    n, distinct = con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone()
    assert n == distinct, f"duplicated rows: {n} rows, {distinct} distinct"
    seen.append(n)
    n2 = con.execute("SELECT count(*) FROM runs").fetchone()[0]  # the same view, queried after a merge
    assert n2 >= n, (n, n2)
    con.close()
assert seen == sorted(seen), seen
print(seen[-1])
"""


def test_two_compactions_and_a_reader_at_once_lose_and_duplicate_nothing(tmp_path):
    cat = Catalog(tmp_path / "cat")
    for i in range(30):
        cat.write("runs", [{"run_id": f"seed-{i}", "command": "test"}])
    env = satds_env()
    procs = [subprocess.Popen([sys.executable, "-c", COMPACTOR, str(cat.root), tag, "12"], env=env, stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    reader = subprocess.Popen([sys.executable, "-c", READER, str(cat.root), "40"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errs = [p.communicate(timeout=240)[1] for p in procs]
    out, rerr = reader.communicate(timeout=240)
    assert [p.returncode for p in procs] == [0, 0], errs
    assert reader.returncode == 0, rerr
    assert 30 <= int(out) <= 30 + 2 * 12 * 2
    total = 30 + 2 * 12 * 2
    assert count(cat, "SELECT count(*), count(DISTINCT run_id) FROM runs") == [(total, total)]
    # Replaced parts stay for readers that listed them, then go: one part, the same rows.
    assert cat.compact("runs", keep_s=0) <= 2
    cat.compact("runs", keep_s=0)
    assert len(cat.parts("runs")) == 1 and len(list((cat.root / "runs").glob("*.parquet"))) == 1
    assert count(cat, "SELECT count(*), count(DISTINCT run_id) FROM runs") == [(total, total)]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare --user --mount` to mount a small tmpfs")
def test_disk_full_is_said_clearly_and_the_catalog_stays_consistent(ingested, tmp_path):
    liver, cat = ingested
    spleen = generate("msd_spleen", tmp_path / "Task09_Spleen")
    before = (tree_digest(liver), tree_digest(spleen))
    mnt = tmp_path / "disk"
    mnt.mkdir()
    satds = f"{sys.executable} -m satds"
    # A real 1 MiB filesystem (tmpfs in a private mount namespace) holding a catalog, then filled up.
    script = textwrap.dedent(f"""
        mount -t tmpfs -o size=1m tmpfs {mnt} || exit 9
        cp -r {cat.root} {mnt}/cat
        dd if=/dev/zero of={mnt}/filler bs=4k 2>/dev/null
        {satds} ingest msd_spleen --root {spleen} -C {mnt}/cat -w 1
        echo "rc=$?"
        echo "left: $(find {mnt}/cat -name '*.tmp' | wc -l) temp files"
        {satds} query "SELECT dataset, count(*) FROM scans GROUP BY 1 ORDER BY 1" -C {mnt}/cat -f csv
        rm {mnt}/filler
        echo "space freed"
        {satds} ingest msd_spleen --root {spleen} -C {mnt}/cat -w 1 >/dev/null
        {satds} query "SELECT dataset, count(*) FROM scans GROUP BY 1 ORDER BY 1" -C {mnt}/cat -f csv
    """)
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], capture_output=True, text=True, env=satds_env(), timeout=300)
    out, err = r.stdout, r.stderr.replace("\n", "")
    assert r.returncode == 0, (out, err)
    assert "Traceback" not in err
    assert "error: disk full: cannot write a part of table" in err and f"{mnt}/cat/" in err and "No space left on device" in err
    full, freed = out.split("space freed")
    # While full: the ingest failed clearly, left no temp file, and the catalog still reads as before.
    assert "rc=1" in full and "left: 0 temp files" in full
    assert full.split("temp files")[1].split() == ["dataset,count_star()", "msd_liver,3"]
    # Space freed: the same command goes through.
    assert freed.split() == ["dataset,count_star()", "msd_liver,3", "msd_spleen,2"]
    assert (tree_digest(liver), tree_digest(spleen)) == before
