"""Runs in a separate OS process: the fulfilment worker of a shop.

Not a test module. argv: the settings as JSON, then optionally an owner name and `--drain-on-go`.
- test_worker_killed.py: runs the loop until it is killed with SIGKILL in the middle of a supplier call.
- test_prepaid_under_load.py: several of these wait for a line on stdin (so they all start at once), drain
  the queue together, print how many jobs they claimed and exit.
"""

from __future__ import annotations

import asyncio
import json
import sys


async def main(values: dict[str, object], owner: str, drain_on_go: bool) -> None:
    from quanyi.config import Settings
    from quanyi.context import build_context
    from quanyi.suppliers.routing import FulfilmentWorker

    ctx = build_context(Settings(_env_file=None, **values))  # type: ignore[arg-type]
    worker = FulfilmentWorker(ctx, owner=owner)
    print("ready", flush=True)
    if not drain_on_go:
        await worker.run_forever()
        return
    try:
        await asyncio.to_thread(sys.stdin.readline)
        print(f"claimed {await worker.drain()}", flush=True)
    finally:
        await ctx.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(json.loads(args[0]), args[1] if len(args) > 1 else "doomed-process", "--drain-on-go" in args))
