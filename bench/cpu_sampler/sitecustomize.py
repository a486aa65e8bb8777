"""A CPU-time sampling profiler for `quanyi serve`'s processes in a bench race (docs/PERFORMANCE.md, section 14).

Put this directory first on the server's PYTHONPATH and set BENCH_SAMPLE_DIR (`bench/flash_sale.py
--sample-servers DIR` does both). In each process running `quanyi serve` (uvicorn's spawned workers included),
while DIR/ON exists: SIGPROF on ITIMER_PROF (the process's CPU time, ~250 samples per CPU second at the kernel's
tick) counts the Python stack; `gc.callbacks` times the collections. Written every half second to
DIR/<pid>.folded (one "frame;frame;... count" line per stack) and DIR/<pid>.meta. C work (the event loop, socket
reads, asyncpg's protocol) is charged to the next Python function entered. Not py-spy: on a loaded machine that
samples a runnable process's wall time, preemptions included.
"""

import os
import sys

if os.environ.get("BENCH_SAMPLE_DIR") and ("serve" in sys.argv or "--multiprocessing-fork" in sys.argv):
    import collections
    import gc
    import signal
    import threading
    import time

    _DIR = os.environ["BENCH_SAMPLE_DIR"]
    _counts: collections.Counter[str] = collections.Counter()
    _gc = {"seconds": 0.0, "collections": [0, 0, 0], "started": None}
    _on = {"on": False, "cpu0": 0.0}

    def _frame_name(frame) -> str:  # type: ignore[no-untyped-def]
        code = frame.f_code
        path = code.co_filename.split("site-packages/")[-1].split("/src/")[-1]
        return f"{code.co_name} ({path}:{frame.f_lineno})"

    def _sample(_signum, frame) -> None:  # type: ignore[no-untyped-def]
        stack = []
        while frame is not None and len(stack) < 80:
            stack.append(_frame_name(frame))
            frame = frame.f_back
        if _gc["started"] is not None:
            stack.append("<gc>")
        _counts[";".join(reversed(stack))] += 1

    def _gc_probe(phase: str, info: dict) -> None:  # type: ignore[type-arg]
        if not _on["on"]:
            return
        if phase == "start":
            _gc["started"] = time.process_time()
        elif _gc["started"] is not None:
            _gc["seconds"] += time.process_time() - _gc["started"]
            _gc["collections"][info["generation"]] += 1
            _gc["started"] = None

    def _dump() -> None:
        path = os.path.join(_DIR, str(os.getpid()))
        with open(path + ".tmp", "w") as out:
            out.writelines(f"{stack} {n}\n" for stack, n in list(_counts.items()))
        os.replace(path + ".tmp", path + ".folded")
        with open(path + ".meta", "w") as out:
            out.write(f"cpu_seconds={time.process_time() - _on['cpu0']:.3f}\ngc_seconds={_gc['seconds']:.4f}\n"
                      f"gc_collections={_gc['collections']}\nsamples={sum(_counts.values())}\n")

    def _watch() -> None:
        while True:
            time.sleep(0.5)
            wanted = os.path.exists(os.path.join(_DIR, "ON"))
            if wanted and not _on["on"]:
                _counts.clear()
                _on.update(on=True, cpu0=time.process_time())
                signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)
            elif not wanted and _on["on"]:
                signal.setitimer(signal.ITIMER_PROF, 0, 0)
                _on["on"] = False
                _dump()
            elif _on["on"]:
                _dump()

    signal.signal(signal.SIGPROF, _sample)
    signal.siginterrupt(signal.SIGPROF, False)  # restart interrupted system calls
    gc.callbacks.append(_gc_probe)
    threading.Thread(target=_watch, daemon=True, name="bench-cpu-sampler").start()
