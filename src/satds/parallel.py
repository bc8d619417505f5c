"""Run one function over many items: in-process, on a local process pool, or on a Dask cluster.

Results come back as they finish, so callers can write them to the catalog in batches and a killed
run loses at most the last batch. Exceptions are returned, not raised: one bad item never stops a run,
nor does a worker process the system kills (its item is retried alone, then recorded as failed; on Dask,
retried as the scheduler's ``allowed-failures`` says).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from .errors import WorkerDied

DIED = "worker died: the process working on this case was killed (out of memory?), once among others and once alone"
# Dask retries a task whose worker died on another worker, up to the scheduler's allowed-failures, then gives up.
DIED_DASK = "worker died: the process working on this case was killed (out of memory?), on every try Dask allows (distributed.scheduler.allowed-failures)"


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _worker_init() -> None:
    """Each worker: one core, and library warnings into satds's log (not between satds's messages)."""
    from . import log

    _single_thread_env()
    log.worker_setup()


def _single_thread_env() -> None:
    # Each worker owns one core; nested BLAS/ITK/torch thread pools would oversubscribe it.
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[k] = "1"
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    except Exception:
        pass


def _itk_threads(n: int | None) -> int | None:
    """Set SimpleITK's default thread count; returns the previous value (None when SimpleITK is absent)."""
    if n is None:
        return None
    try:
        import SimpleITK as sitk
    except ImportError:  # pragma: no cover
        return None
    old = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    return old


def _call(fn: Callable, item: Any) -> tuple[bool, Any]:
    try:
        return True, fn(item)
    except BaseException as e:  # returned to the caller, who records it
        if isinstance(e, KeyboardInterrupt):
            raise
        return False, e


def run(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
) -> Iterator[tuple[Any, bool, Any]]:
    """Yield ``(item, ok, result_or_exception)`` in completion order.

    ``executor``: ``local`` (a process pool of ``workers``; 1 = in this process) or ``dask`` (a
    ``distributed`` cluster at ``scheduler``, or a LocalCluster of ``workers`` when none is given).
    """
    items = list(items)
    workers = workers or default_workers()
    if executor == "dask":
        yield from _run_dask(fn, items, workers, scheduler)
        return
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r} (local or dask)")
    if workers <= 1 or len(items) <= 1:
        # One worker is one core, as each pool worker is: library thread pools stay at one thread.
        restore = _itk_threads(1)
        from . import log

        log.route_itk()
        try:
            for it in items:
                ok, res = _call(fn, it)
                yield it, ok, res
        finally:
            _itk_threads(restore)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn") if os.environ.get("SATDS_SPAWN") else mp.get_context("fork")
    yield from _run_pool(fn, items, workers, ctx)


def _run_pool(fn: Callable, items: list, workers: int, ctx) -> Iterator[tuple[Any, bool, Any]]:
    """The local process pool. When a worker dies (the OOM killer's SIGKILL), the pool breaks and every
    item in flight fails with it: those run again one at a time, each alone in a fresh pool, and one
    that kills its worker again is that item's failure (:class:`WorkerDied`); then a new pool goes on."""
    queue = deque(items)
    while queue:
        suspects: list = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
            pending: dict = {}
            while queue or pending:
                # Keep at most 2x workers tasks in flight so memory stays bounded on huge datasets.
                while queue and len(pending) < 2 * workers:
                    x = queue.popleft()
                    try:
                        pending[pool.submit(_call, fn, x)] = x
                    except BrokenProcessPool:
                        queue.appendleft(x)
                        break
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                before = len(suspects)
                yield from _settle(done, pending, suspects)
                if len(suspects) > before:  # a worker died: the others in flight share the broken pool's fate
                    yield from _settle(list(pending), pending, suspects)
                    break
        for x in suspects:
            ok, res = _alone(fn, x, ctx)
            yield x, ok, res


def _settle(futures: Iterable, pending: dict, suspects: list) -> Iterator[tuple[Any, bool, Any]]:
    """Take ``futures`` off ``pending``: yield each outcome, or add its item to ``suspects`` when its worker died."""
    for fut in futures:
        x = pending.pop(fut)
        ok, res, died = _outcome(fut)
        if died:
            suspects.append(x)
        else:
            yield x, ok, res


def _outcome(fut) -> tuple[bool, Any, bool]:
    """(ok, result or exception, whether the worker process died)."""
    try:
        ok, res = fut.result()
    except BrokenProcessPool:
        return False, None, True
    except BaseException as e:  # the result could not be sent back (e.g. not picklable)
        return False, e, False
    return ok, res, False


def _alone(fn: Callable, item: Any, ctx) -> tuple[bool, Any]:
    """One item in a pool of its own: a second death is the item's failure."""
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_worker_init) as pool:
        ok, res, died = _outcome(pool.submit(_call, fn, item))
    return (False, WorkerDied(DIED)) if died else (ok, res)


def _run_dask(fn: Callable, items: list, workers: int, scheduler: str | None) -> Iterator[tuple[Any, bool, Any]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("the dask executor needs the scale extra: pip install 'satds[scale]'") from e
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")  # any free port: never clash on 8787
        client = Client(cluster)
    try:
        client.run(_worker_init)
        futs = {client.submit(_call, fn, x, pure=False): x for x in items}
        for fut in as_completed(futs):
            x = futs[fut]
            try:
                ok, res = fut.result()
            except BaseException as e:
                ok, res = False, WorkerDied(DIED_DASK) if type(e).__name__ == "KilledWorker" else e
            yield x, ok, res
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
