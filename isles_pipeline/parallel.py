"""Running a per-case function over many cases: a spawn-safe process pool, a progress bar, and bad cases
reported (one line each) instead of stopping the rest.

Workers are started with the "spawn" method (safe with threads and on every OS) and with single-threaded
BLAS/OpenMP, so N workers use N cores rather than N times all cores. The pool is concurrent.futures'
ProcessPoolExecutor rather than multiprocessing.Pool: when a worker dies (killed for memory, or a calling
script without `if __name__ == "__main__":`), Pool silently replaces it and waits forever for the lost
case, while the executor raises BrokenProcessPool, which we turn into a clear error.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

from tqdm import tqdm

from isles_pipeline.errors import CaseError
from isles_pipeline.paths import temporary_environment

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")


def _call(task: tuple[Callable, str, tuple]) -> tuple[str, Any, str | None]:
    """(case, result, None) or (case, None, one-line error)."""
    function, case, args = task
    try:
        return case, function(*args), None
    except CaseError as error:
        return case, None, str(error)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:  # an unexpected failure of one case must not lose the others
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return case, None, f"{case}: {type(error).__name__}: {text}"


def _single_threaded_children():
    """Children inherit the environment at spawn time; the parent's own is restored afterwards."""
    return temporary_environment({name: "1" for name in _THREAD_VARIABLES})


def map_cases(function: Callable, jobs: Sequence[tuple[str, tuple]], num_processes: int = 1,
              desc: str = "cases", progress: bool = True) -> Iterator[tuple[str, Any, str | None]]:
    """Yield (case, result, error) for each (case, args) job as they finish; `function(*args)` runs in
    `num_processes` spawned workers (in this process when 1). `function` must be importable (module level)."""
    tasks = [(function, case, tuple(args)) for case, args in jobs]
    bar = tqdm(total=len(tasks), desc=desc, unit="case", disable=not (tasks and progress))
    try:
        if num_processes <= 1 or len(tasks) <= 1:
            for task in tasks:
                yield _call(task)
                bar.update()
            return
        workers = min(int(num_processes), len(tasks))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            with _single_threaded_children():  # workers start on submit and inherit this environment
                futures = [pool.submit(_call, task) for task in tasks]
            try:
                for future in as_completed(futures):
                    yield future.result()
                    bar.update()
            except BrokenProcessPool:
                raise RuntimeError(f"{desc}: a worker process died (out of memory? or a script that starts "
                                   "this without `if __name__ == '__main__':`)") from None
    finally:
        bar.close()
