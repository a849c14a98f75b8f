"""`countersign mcp` between the official Python MCP SDK (client) and the
reference filesystem server from npm (upstream), with a real gate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, List, Optional, Sequence, Tuple

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation

from conftest import BIN, FS_SERVER, NODE, Gate, free_port

RUN_ID = re.compile(r"run_[0-9a-f]{32}")


CRASHY = [sys.executable, str(Path(__file__).with_name("crashy_server.py"))]


def proxy_args(
    gate_url: str, files: Path, state: Path, wait: str, upstream: Optional[List[str]] = None, extra: Sequence[str] = ()
) -> List[str]:
    name = "crashy" if upstream else "fs"
    return [
        "mcp", "--gate", gate_url, "--server-name", name, "--wait", wait, "--poll", "100ms",
        "--state", str(state), *extra, "--", *(upstream or [NODE, FS_SERVER, str(files)]),
    ]


@asynccontextmanager
async def proxied(
    gate: Gate,
    files: Path,
    state: Path,
    *,
    wait: str = "20s",
    client: str = "pytest-client",
    gate_url: Optional[str] = None,
    upstream: Optional[List[str]] = None,
    extra: Sequence[str] = (),
) -> AsyncIterator[ClientSession]:
    env = {"COUNTERSIGN_API_KEY": gate.agent_key, "PATH": os.environ.get("PATH", "")}
    args = proxy_args(gate_url or gate.url, files, state, wait, upstream, extra)
    params = StdioServerParameters(command=str(BIN), args=args, env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, client_info=Implementation(name=client, version="1.0")) as session:
            await session.initialize()
            yield session


def state_calls(path: Path) -> dict:
    """The calls in progress in a proxy state file (a document, then changes)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    calls = json.loads(lines[0])["calls"]
    for line in lines[1:]:
        change = json.loads(line)
        if change["entry"] is None:
            calls.pop(change["key"], None)
        else:
            calls[change["key"]] = change["entry"]
    return calls


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def call(gate: Gate, files: Path, state: Path, tool: str, args: dict, **kw: Any) -> Any:
    async def go() -> Any:
        async with proxied(gate, files, state, **kw) as s:
            return await s.call_tool(tool, args)

    return anyio.run(go)


def test_an_allowed_call_is_forwarded_and_reported(gate: Gate, files: Path, tmp_path: Path) -> None:
    async def go() -> Tuple[Any, Any]:
        async with proxied(gate, files, tmp_path / "state.json") as s:
            tools = await s.list_tools()
            read = await s.call_tool("read_text_file", {"path": str(files / "hello.txt")})
            return tools, read

    tools, read = anyio.run(go)
    # Everything but tools/call passes through: the server's own tool list.
    assert "read_text_file" in {t.name for t in tools.tools}
    assert not read.is_error
    assert text_of(read) == "hello from the test\n"
    runs = [r for r in gate.runs("fs.read_text_file") if r["execution_status"] == "executed"]
    assert runs, "no executed run"
    run = gate.run(runs[0]["run_id"])
    assert run["source"] == "mcp"
    assert run["context"]["mcp"]["server"] == "fs"
    assert run["context"]["mcp"]["tool"] == "read_text_file"
    assert run["context"]["mcp"]["client"]["name"] == "pytest-client"
    result = run["execution"]["execution_result"]
    assert re.fullmatch(r"[0-9a-f]{64}", result["sha256"])
    assert result["summary"] == "hello from the test"


def test_reading_the_same_file_twice_is_two_runs(gate: Gate, files: Path, tmp_path: Path) -> None:
    before = len(gate.runs("fs.list_allowed_directories"))

    async def go() -> None:
        async with proxied(gate, files, tmp_path / "state.json") as s:
            for _ in range(2):
                r = await s.call_tool("list_allowed_directories", {})
                assert not r.is_error

    anyio.run(go)
    runs = gate.runs("fs.list_allowed_directories")
    assert len(runs) == before + 2
    assert all(r["execution_status"] == "executed" for r in runs)


def test_a_blocked_call_is_not_forwarded(gate: Gate, files: Path, tmp_path: Path) -> None:
    r = call(gate, files, tmp_path / "state.json", "move_file",
             {"source": str(files / "hello.txt"), "destination": str(files / "moved.txt")})
    assert r.is_error
    text = text_of(r)
    assert "Agents never move files" in text and "never-move" in text and RUN_ID.search(text), text
    assert (files / "hello.txt").exists() and not (files / "moved.txt").exists()


def test_policies_read_the_mcp_context_in_both_languages(gate: Gate, files: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    ok = call(gate, files, state, "list_directory", {"path": str(files)})
    assert not ok.is_error and "hello.txt" in text_of(ok)
    no = call(gate, files, state, "list_directory", {"path": str(files)}, client="untrusted-client")
    assert no.is_error and "may not list directories" in text_of(no)
    tree = call(gate, files, state, "directory_tree", {"path": str(files)})
    assert tree.is_error and "too large" in text_of(tree)


def approve_when_asked(gate: Gate, found: List[str], decision: str = "approve") -> threading.Thread:
    """Answers the first run id a progress notification names."""

    def work() -> None:
        deadline = time.monotonic() + 20
        while not found and time.monotonic() < deadline:
            time.sleep(0.05)
        if found:
            gate.answer(found[0], decision)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t


def test_approval_while_the_client_waits(gate: Gate, files: Path, tmp_path: Path) -> None:
    found: List[str] = []
    notes: List[str] = []

    async def progress(p: float, total: Optional[float], message: Optional[str]) -> None:
        notes.append(message or "")
        m = RUN_ID.search(message or "")
        if m and not found:
            found.append(m.group(0))

    async def go() -> Any:
        async with proxied(gate, files, tmp_path / "state.json") as s:
            return await s.call_tool(
                "write_file", {"path": str(files / "new.txt"), "content": "approved"}, progress_callback=progress
            )

    t = approve_when_asked(gate, found)
    r = anyio.run(go)
    t.join(5)
    assert not r.is_error, text_of(r)
    assert (files / "new.txt").read_text() == "approved"
    assert notes and "awaiting approval" in notes[0] and "alice" in notes[0]
    run = gate.run(found[0])
    assert run["governance_status"] == "approved" and run["execution_status"] == "executed"


def test_approval_after_the_wait_then_a_retry_runs_once(gate: Gate, files: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = {"path": str(files / "later.txt"), "content": "v1"}

    async def go() -> Tuple[Any, Any, Any, Any]:
        async with proxied(gate, files, state, wait="1s") as s:
            first = await s.call_tool("write_file", args)
            again = await s.call_tool("write_file", args)
            run_id = RUN_ID.search(text_of(first)).group(0)
            gate.answer(run_id)
            retry = await s.call_tool("write_file", args)
            repeat = await s.call_tool("write_file", args)
            return first, again, retry, repeat

    first, again, retry, repeat = anyio.run(go)
    assert first.is_error
    text = text_of(first)
    assert "awaits approval" in text and "alice, bob" in text and "Retry the same call" in text, text
    run_id = RUN_ID.search(text).group(0)
    # A retry while pending is the same run.
    assert again.is_error and run_id in text_of(again)
    assert not retry.is_error, text_of(retry)
    assert (files / "later.txt").read_text() == "v1"
    run = gate.run(run_id)
    assert run["execution_status"] == "executed"
    # Once executed, the same call again is a new run.
    assert repeat.is_error and run_id not in text_of(repeat) and RUN_ID.search(text_of(repeat))


def test_a_rejected_call_is_not_forwarded(gate: Gate, files: Path, tmp_path: Path) -> None:
    found: List[str] = []

    async def progress(p: float, total: Optional[float], message: Optional[str]) -> None:
        m = RUN_ID.search(message or "")
        if m and not found:
            found.append(m.group(0))

    async def go() -> Any:
        async with proxied(gate, files, tmp_path / "state.json") as s:
            return await s.call_tool("write_file", {"path": str(files / "no.txt"), "content": "x"}, progress_callback=progress)

    t = approve_when_asked(gate, found, "reject")
    r = anyio.run(go)
    t.join(5)
    assert r.is_error and "rejected by bob" in text_of(r), text_of(r)
    assert not (files / "no.txt").exists()
    assert gate.run(found[0])["governance_status"] == "rejected"


def test_the_proxy_restarted_while_a_call_awaits_approval(gate: Gate, files: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = {"path": str(files / "restart.txt"), "content": "once"}
    first = call(gate, files, state, "write_file", args, wait="1s")
    run_id = RUN_ID.search(text_of(first)).group(0)
    assert [e["run_id"] for e in state_calls(state).values()] == [run_id]
    gate.answer(run_id)
    # A new proxy process, same state file: the same run, executed once.
    second = call(gate, files, state, "write_file", args, wait="1s")
    assert not second.is_error, text_of(second)
    assert (files / "restart.txt").read_text() == "once"
    assert gate.run(run_id)["execution_status"] == "executed"
    assert state_calls(state) == {}


def test_a_call_handed_over_before_a_crash_is_never_sent_again(gate: Gate, files: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = {"path": str(files / "crash.txt"), "content": "x"}
    first = call(gate, files, state, "write_file", args, wait="1s")
    run_id = RUN_ID.search(text_of(first)).group(0)
    gate.answer(run_id)
    # What a proxy killed between forwarding and reporting leaves behind.
    calls = state_calls(state)
    for e in calls.values():
        e["forwarded"] = True
    state.write_text(json.dumps({"version": 1, "calls": calls}) + "\n")
    again = call(gate, files, state, "write_file", args, wait="1s")
    assert again.is_error and "outcome is unknown" in text_of(again), text_of(again)
    assert not (files / "crash.txt").exists()
    assert gate.run(run_id)["execution_status"] == "failed"


def test_a_gate_that_is_down_fails_closed(gate: Gate, files: Path, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    r = call(gate, files, tmp_path / "state.json", "write_file",
             {"path": str(files / "down.txt"), "content": "x"}, gate_url=dead)
    assert r.is_error and "could not reach the gate" in text_of(r), text_of(r)
    assert not (files / "down.txt").exists()


def test_arguments_over_the_gate_limit_fail_closed(gate: Gate, files: Path, tmp_path: Path) -> None:
    r = call(gate, files, tmp_path / "state.json", "write_file",
             {"path": str(files / "big.txt"), "content": "x" * 10000})
    assert r.is_error and "larger than the Countersign gate accepts" in text_of(r), text_of(r)
    assert not (files / "big.txt").exists()


def test_an_unknown_tool_is_a_protocol_error(gate: Gate, files: Path, tmp_path: Path) -> None:
    async def go() -> Optional[MCPError]:
        async with proxied(gate, files, tmp_path / "state.json") as s:
            try:
                await s.call_tool("rm_rf", {"path": "/"})
            except MCPError as e:
                return e
            return None

    before = len(gate.runs("fs.rm_rf"))
    err = anyio.run(go)
    assert err is not None and "Unknown tool: rm_rf" in str(err), err
    # Not an intercept either.
    assert len(gate.runs("fs.rm_rf")) == before


def test_malformed_json_rpc_gets_an_error_answer(gate: Gate, files: Path, tmp_path: Path) -> None:
    env = {"COUNTERSIGN_API_KEY": gate.agent_key, "PATH": os.environ.get("PATH", "")}
    p = subprocess.Popen([str(BIN), *proxy_args(gate.url, files, tmp_path / "state.json", "1s")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    out, _ = p.communicate(b'{"jsonrpc": "2.0", "id": 1, "method"\n[1\n"text"\n', timeout=20)
    answers = [json.loads(line) for line in out.decode().splitlines()]
    assert [a["error"]["code"] for a in answers] == [-32700, -32700, -32600], answers


def test_an_approval_that_expires_while_the_client_waits(gate: Gate, files: Path, tmp_path: Path) -> None:
    r = call(gate, files, tmp_path / "state.json", "create_directory", {"path": str(files / "d")}, wait="8s")
    assert r.is_error and "expired" in text_of(r), text_of(r)
    assert not (files / "d").exists()
    assert gate.run(RUN_ID.search(text_of(r)).group(0))["governance_status"] == "expired"


def test_a_cancelled_call_keeps_its_run_and_is_never_sent_by_itself(gate: Gate, files: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = {"path": str(files / "cancelled.txt"), "content": "once"}
    found: List[str] = []

    async def progress(p: float, total: Optional[float], message: Optional[str]) -> None:
        m = RUN_ID.search(message or "")
        if m and not found:
            found.append(m.group(0))

    async def go() -> Any:
        async with proxied(gate, files, state) as s:
            with anyio.move_on_after(1.5):
                await s.call_tool("write_file", args, progress_callback=progress)
            assert found, "no progress before the cancellation"
            # Approved after the client gave up: nothing is forwarded...
            gate.answer(found[0])
            await anyio.sleep(1.5)
            assert not (files / "cancelled.txt").exists()
            # ...until the same call comes again: the same run, once.
            return await s.call_tool("write_file", args)

    r = anyio.run(go)
    assert not r.is_error, text_of(r)
    assert (files / "cancelled.txt").read_text() == "once"
    assert gate.run(found[0])["execution_status"] == "executed"


def test_tool_errors_pass_through_and_are_reported_failed(gate: Gate, files: Path, tmp_path: Path) -> None:
    async def go() -> Tuple[Any, Any]:
        async with proxied(gate, files, tmp_path / "state.json", upstream=CRASHY) as s:
            return await s.call_tool("echo", {"text": "hi"}), await s.call_tool("fail", {"why": "boom"})

    ok, failed = anyio.run(go)
    assert not ok.is_error and text_of(ok) == "hi"
    # The server's own error result, unchanged.
    assert failed.is_error and text_of(failed) == "Error executing tool fail"
    run = gate.runs("crashy.fail")[0]
    assert run["execution_status"] == "failed"
    error = gate.run(run["run_id"])["execution"]["execution_error"]
    assert "isError" in error and "Error executing tool fail" in error, error


def test_an_upstream_that_hangs_times_out(gate: Gate, files: Path, tmp_path: Path) -> None:
    async def go() -> Any:
        async with proxied(gate, files, tmp_path / "state.json", upstream=CRASHY, extra=["--call-timeout", "1s"]) as s:
            return await s.call_tool("hang", {"seconds": 5})

    r = anyio.run(go)
    assert r.is_error and "did not answer within 1 s" in text_of(r), text_of(r)
    assert gate.runs("crashy.hang")[0]["execution_status"] == "failed"


def test_an_upstream_that_crashes_mid_call(gate: Gate, files: Path, tmp_path: Path) -> None:
    async def go() -> Any:
        async with proxied(gate, files, tmp_path / "state.json", upstream=CRASHY) as s:
            try:
                return await s.call_tool("crash", {})
            except Exception as e:  # the proxy may close the connection once the server is gone
                return e

    r = anyio.run(go)
    if not isinstance(r, Exception):
        assert r.is_error and "exited before answering" in text_of(r), text_of(r)
    run = gate.runs("crashy.crash")[0]
    assert run["execution_status"] == "failed"
    assert "exited" in gate.run(run["run_id"])["execution"]["execution_error"]


def test_tools_list_marks_approvals_and_hides_blocked_tools(gate: Gate, files: Path, tmp_path: Path) -> None:
    async def go() -> Any:
        async with proxied(gate, files, tmp_path / "state.json", extra=["--annotate", "--hide-blocked"]) as s:
            return await s.list_tools()

    tools = {t.name: t for t in anyio.run(go).tools}
    # fs.move_file is blocked for every input; get_file_info is not declared.
    assert "move_file" not in tools and "get_file_info" not in tools
    assert "may need a person's approval" in (tools["write_file"].description or "")
    assert "Countersign" not in (tools["read_text_file"].description or "")
