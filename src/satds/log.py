"""satds's log: where library warnings go, so that they never mix with satds's own messages.

Warnings of the libraries satds drives (nibabel, pydicom, numpy through ``warnings``; ITK through its
output window) are written to a log file per command (``$SATDS_LOG`` when set), in a per-user folder of
the system temp folder; satds's own debug records (e.g. the traceback behind a failure) go there too.
``satds --verbose`` also shows them on stderr. Pool workers inherit the setting through the environment
(so spawned and Dask workers too).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

LOG_ENV = "SATDS_LOG"
VERBOSE_ENV = "SATDS_VERBOSE"
_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
_itk_logger = None


def user_temp(name: str) -> Path:
    """A folder of this user's in the system temp folder (caches satds keeps out of $HOME)."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    d = Path(tempfile.gettempdir()) / f"satds-{uid}" / name
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def setup(verbose: bool = False) -> tuple[Path, Callable[[], int]]:
    """Send warnings and satds's log records to a log file (and to stderr when ``verbose``).

    The file is ``$SATDS_LOG``, else a new ``satds-<time>-<pid>.log`` per command in a per-user temp
    folder (the newest 20 are kept). Returns that file and ``done()``, which undoes the routing and returns
    how many bytes this command logged (so the CLI can say where its warnings went).
    """
    saved = {k: os.environ.get(k) for k in (LOG_ENV, VERBOSE_ENV)}
    if saved[LOG_ENV]:
        path = Path(saved[LOG_ENV])
    else:
        folder = user_temp("log")
        for old in sorted(folder.glob("satds-*.log"))[:-19]:
            old.unlink(missing_ok=True)
        path = folder / f"satds-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    start = path.stat().st_size if path.exists() else 0
    os.environ[LOG_ENV] = str(path)
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)
    _configure(path, verbose)
    route_itk()

    def done() -> int:
        _remove_handlers()
        logging.captureWarnings(False)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            return path.stat().st_size - start
        except OSError:
            return 0

    return path, done


def worker_setup() -> None:
    """In a worker process: the same routing as the process that started it (if it set one up)."""
    if os.environ.get(LOG_ENV):
        _configure(Path(os.environ[LOG_ENV]), bool(os.environ.get(VERBOSE_ENV)))
        route_itk()


def _configure(path: Path, verbose: bool) -> None:
    logging.captureWarnings(True)
    _remove_handlers()
    root = logging.getLogger()
    handlers: list[logging.Handler] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, encoding="utf-8", errors="backslashreplace", delay=True))
        handlers[-1].setFormatter(logging.Formatter(_FORMAT))
    except OSError:  # an unwritable log must not stop a command
        handlers.append(logging.NullHandler())
    if verbose:
        handlers.append(logging.StreamHandler())
        handlers[-1].setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for h in handlers:
        h._satds = True  # type: ignore[attr-defined]
        root.addHandler(h)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    logging.getLogger("satds").setLevel(logging.DEBUG)


def _remove_handlers() -> None:
    """Take satds's handlers off the root logger (and close their files)."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_satds", False)]:
        root.removeHandler(h)
        h.close()


def route_itk() -> None:
    """ITK's warnings (printed by C++ to stderr) into the log, once SimpleITK is in use."""
    global _itk_logger
    if _itk_logger is not None or not os.environ.get(LOG_ENV):
        return
    try:
        import SimpleITK as sitk
    except ImportError:  # pragma: no cover
        return
    itk_log = logging.getLogger("itk")

    class _ToLog(sitk.LoggerBase):
        def DisplayText(self, t):
            itk_log.info(t.strip())

        def DisplayErrorText(self, t):
            itk_log.error(t.strip())

        def DisplayWarningText(self, t):
            itk_log.warning(t.strip())

        def DisplayGenericOutputText(self, t):
            itk_log.info(t.strip())

        def DisplayDebugText(self, t):
            itk_log.debug(t.strip())

    _itk_logger = _ToLog()
    _itk_logger.SetAsGlobalITKLogger()
