"""A pool worker killed by the system (the OOM killer's SIGKILL) costs one case, not the run.

The test kills for real, from outside: one case's image is a named pipe, so the worker reading it waits;
a watcher finds the process holding the pipe open and sends it SIGKILL, every time one does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from satds.catalog import Catalog
from satds.ingest import ingest
from satds.phantoms import generate

from _robust import satds, tree_digest


class Killer(threading.Thread):
    """SIGKILLs every other process that holds ``fifo`` open, until stopped; counts the processes killed
    (each once: on a loaded machine a killed process can still show the open pipe on the next look)."""

    def __init__(self, fifo: Path):
        super().__init__(daemon=True)
        self.fifo = str(fifo)
        self.killed: set[int] = set()
        self.stop = threading.Event()
        # A helper process holds the write end (O_RDWR does not block on a FIFO): a reader's open()
        # returns at once and its read() waits for data that never comes. Not this process: workers
        # forked from it would inherit the descriptor.
        fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        try:
            self.holder = subprocess.Popen(["sleep", "600"], stdin=fd)
        finally:
            os.close(fd)

    def run(self) -> None:
        spare = {os.getpid(), self.holder.pid}
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) in spare:
                    continue
                try:
                    fds = os.listdir(f"/proc/{pid}/fd")
                    if any(os.readlink(f"/proc/{pid}/fd/{fd}") == self.fifo for fd in fds):
                        os.kill(int(pid), signal.SIGKILL)
                        self.killed.add(int(pid))
                except OSError:  # gone, or not ours
                    continue
            time.sleep(0.05)

    @property
    def kills(self) -> int:
        return len(self.killed)

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.holder.kill()
        self.holder.wait()


def _pipe_instead_of(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_a_killed_ingest_worker_fails_its_case_and_the_run_goes_on(tmp_path):
    liver = generate("msd_liver", tmp_path / "Task03_Liver")
    _pipe_instead_of(liver / "imagesTr/liver_1.nii.gz")
    before = tree_digest(liver)
    killer = Killer(liver / "imagesTr/liver_1.nii.gz")
    killer.start()
    try:
        r = satds("ingest", "msd_liver", "--root", liver, "-C", tmp_path / "cat", "-w", "2", timeout=240)
    finally:
        killer.close()
    assert r.returncode == 0, r.stderr
    assert killer.kills == 2  # once in the pool, once alone
    assert "BrokenProcessPool" not in r.stderr and "Traceback" not in r.stderr
    assert "msd_liver: 2 scans ingested, 1 failed" in r.stdout
    assert "msd_liver/liver_1: imagesTr/liver_1.nii.gz: worker died: the process working on this case was killed (out of memory?)" in r.stderr.replace("\n", "")
    con = Catalog(tmp_path / "cat").connect()
    assert con.execute('SELECT "case", file, error_type, stage FROM failures').fetchall() == [("liver_1", "imagesTr/liver_1.nii.gz", "WorkerDied", "ingest")]
    assert sorted(con.execute("SELECT case_id FROM scans").fetchall()) == [("liver_0",), ("liver_7",)]
    assert con.execute("SELECT count(*) FROM annotations").fetchone()[0] == 4
    assert tree_digest(liver) == before


def test_a_killed_build_worker_fails_its_scan_and_the_build_goes_on(tmp_path):
    from satds.build import build

    liver = generate("msd_liver", tmp_path / "Task03_Liver")
    cat = Catalog(tmp_path / "cat")
    assert ingest("msd_liver", liver, cat, workers=1).scans == 3
    _pipe_instead_of(liver / "imagesTr/liver_7.nii.gz")  # the source changes under the catalog
    killer = Killer(liver / "imagesTr/liver_7.nii.gz")
    killer.start()
    try:
        s = build(cat, workers=2)
    finally:
        killer.close()
    assert killer.kills == 2
    assert (s.built, s.failed) == (2, 1)
    assert s.failures == ["msd_liver/liver_7: worker died: the process working on this case was killed (out of memory?), once among others and once alone"]
    con = cat.connect()
    assert con.execute('SELECT "case", error_type, stage FROM failures').fetchall() == [("liver_7", "WorkerDied", "build")]
    assert sorted(con.execute("SELECT case_id FROM scans WHERE normalised_image IS NOT NULL").fetchall()) == [("liver_0",), ("liver_1",)]


def test_runner_blames_only_the_item_that_kills_its_worker():
    """Items in flight when the pool broke are not blamed: alone, they succeed; a new pool does the rest."""
    from satds import parallel

    out = {x: (ok, res) for x, ok, res in parallel.run(_die_on_3, range(8), workers=2)}
    assert sorted(out) == list(range(8))
    assert all(ok and res == x * x for x, (ok, res) in out.items() if x != 3)
    ok, err = out[3]
    assert not ok and type(err).__name__ == "WorkerDied"


def _die_on_3(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
    time.sleep(0.05)
    return x * x


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # another cluster on this machine
def test_a_case_that_kills_its_dask_worker_says_how_dask_tried_it():
    # Dask retries a task whose worker died as its scheduler's allowed-failures says (none here), never
    # alone as the local pool does: the message must not claim a retry alone.
    pytest.importorskip("distributed")
    import dask

    from satds import parallel

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        [(item, ok, err)] = list(parallel.run(os._exit, [9], workers=1, executor="dask"))  # the worker process exits
    assert (item, ok, type(err).__name__) == (9, False, "WorkerDied")
    assert str(err).startswith("worker died: the process working on this case was killed (out of memory?)")
    assert "alone" not in str(err) and "allowed-failures" in str(err)
