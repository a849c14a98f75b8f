//! Countersign's MCP proxy, started by `countersign mcp [OPTIONS] -- CMD
//! ARGS…`: an MCP client starts it in place of a stdio MCP server, and every
//! `tools/call` becomes an intercept at the gate (over its HTTP API, so the
//! gate may be remote) before the server sees it. Every other message is
//! relayed unchanged.
//!
//! - **allowed**: forwarded; the server's answer goes back unchanged and the
//!   run is reported executed (or failed, when the result has `isError` or
//!   the server fails), with the result's SHA-256 and a short summary.
//! - **blocked**: not forwarded; the client gets a result with `isError` that
//!   names the policy's reason, the rule and the run.
//! - **require_approval**: the call waits (`--wait`, progress notifications
//!   while it does); approved in time, it is forwarded; otherwise the answer
//!   says it awaits approval, by whom, under which run, and that the same
//!   call later maps to that run. A run is forwarded at most once, even
//!   across a restart of the proxy ([`state`](crate) file).
//!
//! The action is `<server>.<tool>` ([`action_name`]), the payload the
//! call's arguments, the top-level `source` is `"mcp"` and `context.mcp`
//! holds the server, tool, client and protocol revision.

mod gate;
mod messages;
mod names;
mod proxy;
mod state;

pub use names::action_name;
pub use proxy::{Config, McpError, run};
pub use state::StateError;
