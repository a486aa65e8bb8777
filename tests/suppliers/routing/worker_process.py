"""Runs in a separate OS process: the fulfilment worker loop of a shop, until it is killed.

Not a test module; test_worker_killed.py starts it and kills it with SIGKILL in the middle of a supplier call.
"""

from __future__ import annotations

import asyncio
import json
import sys


async def main(values: dict[str, object]) -> None:
    from quanyi.config import Settings
    from quanyi.context import build_context
    from quanyi.suppliers.routing import FulfilmentWorker

    ctx = build_context(Settings(_env_file=None, **values))  # type: ignore[arg-type]
    print("ready", flush=True)
    await FulfilmentWorker(ctx, owner="doomed-process").run_forever()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
