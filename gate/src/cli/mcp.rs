//! `countersign mcp`: the MCP proxy (crate `countersign-mcp`), with its
//! options read from the command line and the environment.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Options of `countersign mcp`.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// The gate's base URL.
    #[arg(long, env = "COUNTERSIGN_URL", default_value = "http://127.0.0.1:8080")]
    gate: String,
    /// The environment variable holding the agent API key.
    #[arg(long, default_value = "COUNTERSIGN_API_KEY")]
    key_env: String,
    /// The first part of action names (`<server>.<tool>`); default: the
    /// server's own name from its `initialize` answer.
    #[arg(long)]
    server_name: Option<String>,
    /// The actor of every run (a key bound to an actor decides it anyway).
    #[arg(long)]
    actor: Option<String>,
    /// How long a call waits for an approval before the model is told it
    /// awaits one (below the usual 60 s client timeout).
    #[arg(long, default_value = "45s", value_parser = parse_duration)]
    wait: Duration,
    /// How often the run is read while a call waits.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll: Duration,
    /// How long the server may take to answer a forwarded call.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    call_timeout: Duration,
    /// The state file remembering calls in progress across restarts
    /// (default: ~/.local/state/countersign/mcp-<server name>.json).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Mark in each tool's description (tools/list) whether its calls may
    /// need an approval.
    #[arg(long)]
    annotate: bool,
    /// Leave out of tools/list the tools the policies block for every input.
    #[arg(long)]
    hide_blocked: bool,
    /// The MCP server's command and arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// `45s`, `2m`, `500ms`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (like 45s, 2m, 500ms)"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        _ => Err(format!(
            "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
        )),
    }
}

fn default_state(args: &McpArgs) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    let name = args
        .server_name
        .clone()
        .unwrap_or_else(|| args.command.join(" "));
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    base.join("countersign").join(format!("mcp-{file}.json"))
}

/// Runs the proxy; its own errors go to stderr (stdout is the protocol).
pub fn run(args: McpArgs) -> ExitCode {
    let Some(key) = std::env::var(&args.key_env).ok().filter(|k| !k.is_empty()) else {
        eprintln!(
            "countersign mcp: the environment variable {} holding the agent API key is not set",
            args.key_env
        );
        return ExitCode::from(2);
    };
    let state_file = args.state.clone().unwrap_or_else(|| default_state(&args));
    let config = countersign_mcp::Config {
        gate_url: args.gate,
        api_key: key,
        server_name: args.server_name,
        actor: args.actor,
        wait: args.wait,
        poll: args.poll,
        call_timeout: args.call_timeout,
        state_file,
        command: args.command,
        annotate: args.annotate,
        hide_blocked: args.hide_blocked,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("countersign mcp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(countersign_mcp::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersign mcp: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
