"""Turning the servers' sampler (`sitecustomize.py` here) on for a race, and its samples as CPU ms per purchase by
layer of the server:

    python bench/cpu_sampler/layers.py DIR PURCHASES
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def enable_for_servers(directory: Path) -> None:
    """Processes started from now on (the bench's servers keep non-QUANYI variables) load the sampler."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["BENCH_SAMPLE_DIR"] = str(directory.resolve())
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent),
                                                             os.environ.get("PYTHONPATH")]))


@contextlib.contextmanager
def sampling(directory: Path | None) -> Iterator[None]:
    """The servers sample while the block runs (their samplers look for the flag every half second)."""
    if directory is None:
        yield
        return
    flag = directory / "ON"
    flag.touch()
    time.sleep(0.6)
    try:
        yield
    finally:
        flag.unlink()
        time.sleep(0.6)

REQUESTS = (("checkout_lane", "checkout"), ("_notify (quanyi", "notification"), ("_pay (quanyi", "start payment"),
            ("_reveal (quanyi", "reveal"), ("sold_out_lane", "refused checkouts (sold-out lane)"))


def layer(frames: list[str]) -> str:
    stack, leaf = ";".join(frames), frames[-1]
    if "<gc>" in frames:
        return "garbage collector"
    if ("quanyi/tasks.py" in stack or "run_forever (quanyi" in stack) and "run_asgi" not in stack:
        return "background loops and the ledger worker"
    if "access_line" in stack or "_write (quanyi/accesslog" in stack:
        return "access log line"
    if "proxy_headers" in leaf or "ipaddress" in leaf:
        return "proxy headers (X-Forwarded-For)"
    if "telemetry" in stack:
        return "FastAPI telemetry check"
    if leaf.startswith(("send (uvicorn", "on_response_complete (uvicorn")):
        return "uvicorn: response writes"
    if "uvicorn/" in leaf:
        return "uvicorn: parse, task per request (and C work charged to it)"
    if "asyncio/runners.py" not in stack:
        return "SQLAlchemy's greenlet side (all requests)"
    for marker, name in REQUESTS:
        if marker in stack:
            return name
    if "run_asgi" in stack:
        return "front door, framework, other"
    return "event loop: callbacks, wake-ups"


def summarize(directory: Path, purchases: int) -> str:
    counts: Counter[str] = Counter()
    cpu = gc_seconds = 0.0
    for meta in directory.glob("*.meta"):
        values = dict(line.split("=", 1) for line in meta.read_text().splitlines() if "=" in line)
        cpu += float(values["cpu_seconds"])
        gc_seconds += float(values["gc_seconds"])
    for folded in directory.glob("*.folded"):
        for line in folded.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            counts[layer(stack.split(";"))] += int(n)
    total = sum(counts.values())
    if not total or not purchases:
        return "no samples"
    per = 1000 * cpu / purchases
    lines = [f"server CPU {per:.2f} ms per purchase in the sampled window ({total} samples); "
             f"garbage collector {1000 * gc_seconds / purchases:.3f} ms per purchase (timed)"]
    lines += [f"{per * n / total:7.3f} ms {100 * n / total:5.1f} %  {name}" for name, n in counts.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]), int(sys.argv[2])))
