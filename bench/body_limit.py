"""Server memory under an oversized request body: one unauthenticated `POST /api/orders` of `--mib` MiB (200)
against a real `quanyi serve`, once with a declared Content-Length and once streamed (chunked, no length).

Prints, per request: the answer, the seconds until it came, how much of the body the client managed to send,
and the server's resident memory before and after plus its peak (VmHWM from /proc). With the body limit
(QUANYI_MAX_REQUEST_BYTES, 1 MiB) the server answers 413 without reading the body and its memory stays flat.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import FreshDatabase, Processes, Server, free_port, human_bytes, prepare_shop, table  # noqa: E402

CHUNK = 256 * 1024


def _memory(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def _post(url: str, total: int, *, declared: bool) -> tuple[str, float, int]:
    sent = 0

    def body():
        nonlocal sent
        chunk = b" " * CHUNK
        while sent < total:
            sent += CHUNK
            yield chunk

    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(total)
    started = time.perf_counter()
    try:
        response = httpx.post(url + "/api/orders", content=body(), headers=headers, timeout=300)
        answer = f"{response.status_code} {response.headers.get('content-type', '').split(';')[0]}"
        if response.status_code == 413:
            answer += " " + response.json().get("code", "")
    except httpx.HTTPError as exc:
        answer = f"connection closed ({type(exc).__name__})"
    return answer, time.perf_counter() - started, min(sent, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=200, help="body size in MiB (200)")
    args = parser.parse_args()
    total = args.mib * 1024 * 1024
    with FreshDatabase(None) as db, Processes() as processes:
        shop = prepare_shop(db, keys=10)
        server = processes.add(Server(shop.env, db.tmp, free_port(), workers=1))
        server.wait_healthy()
        httpx.get(server.url + "/api/catalog/products", timeout=30)  # warm
        rows = []
        for declared in (True, False):
            before = _memory(server.process.pid)
            answer, seconds, sent = _post(server.url, total, declared=declared)
            time.sleep(0.5)
            after = _memory(server.process.pid)
            rows.append(["Content-Length" if declared else "chunked", answer, f"{seconds:.2f}",
                         human_bytes(sent), human_bytes(before["VmRSS"]), human_bytes(after["VmRSS"]),
                         human_bytes(after["VmHWM"])])
        print(f"POST /api/orders with a {args.mib} MiB body, one `quanyi serve` process (SQLite)")
        print(table(["body", "answer", "seconds", "client sent", "RSS before", "RSS after", "peak RSS"], rows,
                    left=(0, 1)))


if __name__ == "__main__":
    main()
