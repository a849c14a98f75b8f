"""Added latency of `countersign mcp` for an allowed call: the same
`read_text_file` call through the proxy (with a real gate deciding and
recording every call) and straight to the reference filesystem server,
timed in the official Python MCP SDK client. Prints p50, p99 and mean.

    COUNTERSIGN_BIN=target/release/countersign \\
      target/mcp-venv/bin/python3 mcp/tests/bench_latency.py [CALLS]

Run mcp/tests/run-tests.sh once first: it installs the SDK and the server.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

sys.path.insert(0, str(Path(__file__).with_name("python")))
from conftest import BIN, FS_SERVER, NODE, Gate, Hooks  # noqa: E402

WARMUP = 30


async def timed(params: StdioServerParameters, path: Path, calls: int) -> List[float]:
    out: List[float] = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            for i in range(WARMUP + calls):
                t = time.perf_counter()
                r = await s.call_tool("read_text_file", {"path": str(path)})
                elapsed = time.perf_counter() - t
                assert not r.is_error, r
                if i >= WARMUP:
                    out.append(elapsed * 1000)
    return out


def pct(xs: List[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    root = Path(tempfile.mkdtemp(prefix="countersign-mcp-bench-"))
    files = root / "files"
    files.mkdir()
    (files / "a.txt").write_text("hello\n")
    gate = Gate(root / "gate", Hooks())
    try:
        direct = StdioServerParameters(command=NODE, args=[FS_SERVER, str(files)])
        proxied = StdioServerParameters(
            command=str(BIN),
            args=["mcp", "--gate", gate.url, "--server-name", "fs", "--state", str(root / "state.json"),
                  "--", NODE, FS_SERVER, str(files)],
            env={"COUNTERSIGN_API_KEY": gate.agent_key, "PATH": os.environ.get("PATH", "")},
        )
        a = anyio.run(timed, direct, files / "a.txt", calls)
        b = anyio.run(timed, proxied, files / "a.txt", calls)
    finally:
        gate.stop()
    print(f"binary: {BIN}; {calls} calls each after {WARMUP} warm-up calls")
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, xs in (("direct", a), ("proxied", b)):
        print(f"{name:10} {pct(xs, 50):8.2f} {pct(xs, 99):8.2f} {statistics.mean(xs):8.2f}")
    print(f"{'added':10} {pct(b, 50) - pct(a, 50):8.2f} {pct(b, 99) - pct(a, 99):8.2f} "
          f"{statistics.mean(b) - statistics.mean(a):8.2f}")


if __name__ == "__main__":
    main()
