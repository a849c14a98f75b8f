"""An MCP server built with the official Python SDK for the proxy's tests:
tools that echo, fail, hang or kill the server."""

import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("crashy")


@server.tool()
def echo(text: str) -> str:
    """Returns the text."""
    return text


@server.tool()
def fail(why: str) -> str:
    """Fails with a tool error (a result with isError)."""
    raise ValueError(why)


@server.tool()
def hang(seconds: float) -> str:
    """Answers after `seconds`."""
    time.sleep(seconds)
    return "late"


@server.tool()
def crash() -> str:
    """Kills the server before it answers."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
