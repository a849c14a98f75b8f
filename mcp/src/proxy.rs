//! The stdio proxy: the MCP client starts `countersign mcp -- CMD ARGS…` in
//! place of the server; the proxy starts the server as its child and relays
//! every message between them unchanged, except `tools/call`, which it
//! decides with the gate first.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ErrorCode, RequestMetaObject};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::gate::{Gate, GateError, RunInfo};
use crate::messages::{progress, rpc_error, tool_error};
use crate::names::{action_name, call_key, canonical_json, sha256_hex};
use crate::state::{Entry, StateError, StateFile};

/// How often a waiting call sends a progress notification.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long the proxy waits for in-flight calls once one side has gone.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// The longest text of a result summary in an execution report.
const SUMMARY_CHARS: usize = 200;
/// The longest `context.mcp.client` name or version kept.
const CLIENT_FIELD_CHARS: usize = 200;
/// Execution reports are tried this many times before the proxy gives up.
const REPORT_ATTEMPTS: u32 = 3;

/// What `countersign mcp` was started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The gate's base URL.
    pub gate_url: String,
    /// The agent API key.
    pub api_key: String,
    /// The first part of action names; default: the upstream server's
    /// `serverInfo.name`, or the command's file name.
    pub server_name: Option<String>,
    /// The actor sent with every intercept (a key bound to an actor
    /// decides it anyway).
    pub actor: Option<String>,
    /// How long a call waits for an approval before answering that it
    /// awaits one.
    pub wait: Duration,
    /// How often the run is read while waiting.
    pub poll: Duration,
    /// How long the upstream server may take to answer a forwarded call.
    pub call_timeout: Duration,
    /// The state file.
    pub state_file: PathBuf,
    /// The upstream server's command and arguments.
    pub command: Vec<String>,
    /// Mark in `tools/list` answers which tools may need an approval.
    pub annotate: bool,
    /// Leave out of `tools/list` answers the tools policy blocks for every
    /// input (undeclared actions, and actions whose default and every
    /// enforced rule block).
    pub hide_blocked: bool,
}

/// Why the proxy could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// No command after `--`.
    #[error("no MCP server command given (countersign mcp [OPTIONS] -- CMD ARGS…)")]
    NoCommand,
    /// The server could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The state file is unusable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The gate client could not be built.
    #[error("{0}")]
    Gate(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the handshake told the proxy.
#[derive(Debug, Default)]
struct Session {
    upstream_name: Option<String>,
    client_name: Option<String>,
    client_version: Option<String>,
    protocol_version: Option<String>,
    /// Ids of `initialize` requests whose answers are still due.
    init_ids: HashSet<String>,
    /// Ids of the client's `tools/list` requests whose answers are due.
    list_ids: HashSet<String>,
}

/// A `tools/call` being handled.
struct InFlight {
    abort: AbortHandle,
    forwarded: Arc<AtomicBool>,
}

type Reply = oneshot::Sender<(Value, String)>;

struct Shared {
    config: Config,
    gate: Gate,
    state: StateFile,
    client_out: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    upstream_in: tokio::sync::Mutex<Option<tokio::process::ChildStdin>>,
    /// Answers awaited from the upstream, by JSON-RPC id (as JSON text).
    waiters: Mutex<HashMap<String, Reply>>,
    tools: tokio::sync::Mutex<Option<HashSet<String>>>,
    tools_stale: AtomicBool,
    session: Mutex<Session>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    call_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    next_id: AtomicU64,
    upstream_gone: AtomicBool,
}

/// Runs the proxy until the client closes its input or the server exits.
pub async fn run(config: Config) -> Result<(), McpError> {
    let (program, args) = config.command.split_first().ok_or(McpError::NoCommand)?;
    let gate =
        Gate::new(&config.gate_url, &config.api_key).map_err(|e| McpError::Gate(e.to_string()))?;
    let state = StateFile::load(&config.state_file)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| McpError::Spawn {
            command: program.clone(),
            source,
        })?;
    let upstream_in = child.stdin.take();
    let upstream_out = child.stdout.take();
    let shared = Arc::new(Shared {
        config,
        gate,
        state,
        client_out: tokio::sync::Mutex::new(Box::new(tokio::io::stdout())),
        upstream_in: tokio::sync::Mutex::new(upstream_in),
        waiters: Mutex::new(HashMap::new()),
        tools: tokio::sync::Mutex::new(None),
        tools_stale: AtomicBool::new(false),
        session: Mutex::new(Session::default()),
        in_flight: Mutex::new(HashMap::new()),
        call_locks: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        upstream_gone: AtomicBool::new(false),
    });
    let mut upstream = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Some(out) = upstream_out {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    shared.on_upstream_line(line).await;
                }
            }
            shared.upstream_gone.store(true, Ordering::SeqCst);
            // Every call waiting for the server learns it is gone.
            lock(&shared.waiters).clear();
        })
    };
    let mut client = BufReader::new(tokio::io::stdin()).lines();
    let client_closed = loop {
        tokio::select! {
            line = client.next_line() => match line {
                Ok(Some(line)) => Arc::clone(&shared).on_client_line(line).await,
                Ok(None) | Err(_) => break true,
            },
            _ = &mut upstream => break false,
        }
    };
    if client_closed {
        // Nobody is left to answer: calls awaiting approval stop here (their
        // runs stay, and a later identical call resumes them).
        for (_, f) in lock(&shared.in_flight).drain() {
            if !f.forwarded.load(Ordering::SeqCst) {
                f.abort.abort();
            }
        }
    }
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while !lock(&shared.in_flight).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Closing the server's input asks it to exit; kill it if it does not.
    shared.upstream_in.lock().await.take();
    if tokio::time::timeout(SHUTDOWN_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    Ok(())
}

/// Why a call is answered without running.
enum Waited {
    Decided(RunInfo),
    StillPending(RunInfo),
}

impl Shared {
    async fn send_client(&self, line: &str) {
        let mut out = self.client_out.lock().await;
        let _ = out.write_all(line.as_bytes()).await;
        let _ = out.write_all(b"\n").await;
        let _ = out.flush().await;
    }

    async fn send_upstream(&self, line: &str) -> Result<(), String> {
        let mut guard = self.upstream_in.lock().await;
        let Some(input) = guard.as_mut() else {
            return Err("the server's input is closed".to_owned());
        };
        input
            .write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        input.write_all(b"\n").await.map_err(|e| e.to_string())?;
        input.flush().await.map_err(|e| e.to_string())
    }

    fn new_revision(&self) -> bool {
        lock(&self.session)
            .protocol_version
            .as_deref()
            .is_some_and(|v| v >= "2026-07-28")
    }

    /// One line from the client.
    async fn on_client_line(self: Arc<Self>, line: String) {
        let text = line.trim();
        if text.is_empty() {
            return;
        }
        let msg: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let answer = rpc_error(
                    &Value::Null,
                    ErrorCode::PARSE_ERROR,
                    format!("malformed JSON-RPC message: {e}"),
                );
                return self.send_client(&answer).await;
            }
        };
        let Some(obj) = msg.as_object() else {
            if msg.is_array() {
                // A batch (protocol 2025-03-26): relayed as it is.
                let _ = self.send_upstream(text).await;
                return;
            }
            let answer = rpc_error(
                &Value::Null,
                ErrorCode::INVALID_REQUEST,
                "a JSON-RPC message must be an object".to_owned(),
            );
            return self.send_client(&answer).await;
        };
        let id = obj.get("id").cloned();
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            let answer = rpc_error(
                id.as_ref().unwrap_or(&Value::Null),
                ErrorCode::INVALID_REQUEST,
                "not a JSON-RPC 2.0 message (`jsonrpc` must be \"2.0\")".to_owned(),
            );
            return self.send_client(&answer).await;
        }
        match (obj.get("method").and_then(Value::as_str), id) {
            (Some("tools/call"), Some(id)) => {
                let forwarded = Arc::new(AtomicBool::new(false));
                let key = id.to_string();
                let shared = Arc::clone(&self);
                let flag = Arc::clone(&forwarded);
                let raw = text.to_owned();
                // Registered before the task can finish and unregister.
                let mut in_flight = lock(&self.in_flight);
                let task = tokio::spawn(async move {
                    let answer = shared.handle_call(&id, &raw, &msg, &flag).await;
                    lock(&shared.in_flight).remove(&id.to_string());
                    shared.send_client(&answer).await;
                });
                in_flight.insert(
                    key,
                    InFlight {
                        abort: task.abort_handle(),
                        forwarded,
                    },
                );
            }
            (Some("initialize"), Some(id)) => {
                {
                    let mut s = lock(&self.session);
                    let info = obj.get("params").and_then(|p| p.get("clientInfo"));
                    let field = |k: &str| {
                        info.and_then(|i| i.get(k))
                            .and_then(Value::as_str)
                            .map(|v| v.chars().take(CLIENT_FIELD_CHARS).collect())
                    };
                    s.client_name = field("name");
                    s.client_version = field("version");
                    s.init_ids.insert(id.to_string());
                }
                let _ = self.send_upstream(text).await;
            }
            (Some("tools/list"), Some(id)) if self.config.annotate || self.config.hide_blocked => {
                lock(&self.session).list_ids.insert(id.to_string());
                let _ = self.send_upstream(text).await;
            }
            (Some("notifications/cancelled"), None) => {
                let cancelled = obj
                    .get("params")
                    .and_then(|p| p.get("requestId"))
                    .map(Value::to_string);
                if let Some(key) = cancelled {
                    let mut in_flight = lock(&self.in_flight);
                    // A call still waiting for the gate stops; its run stays
                    // and nothing is forwarded for it. A forwarded call is
                    // the server's to cancel.
                    if in_flight
                        .get(&key)
                        .is_some_and(|f| !f.forwarded.load(Ordering::SeqCst))
                        && let Some(f) = in_flight.remove(&key)
                    {
                        f.abort.abort();
                    }
                }
                let _ = self.send_upstream(text).await;
            }
            _ => {
                let _ = self.send_upstream(text).await;
            }
        }
    }

    /// One line from the server.
    async fn on_upstream_line(&self, line: String) {
        if let Ok(msg) = serde_json::from_str::<Value>(&line) {
            let method = msg.get("method").and_then(Value::as_str);
            if let (None, Some(id)) = (method, msg.get("id")) {
                let key = id.to_string();
                let waiter = lock(&self.waiters).remove(&key);
                if let Some(tx) = waiter {
                    let _ = tx.send((msg, line));
                    return;
                }
                let listed = lock(&self.session).list_ids.remove(&key);
                if listed && msg.get("result").is_some() {
                    let rewritten = self.mark_tools(msg).await;
                    return self.send_client(&rewritten).await;
                }
                let mut s = lock(&self.session);
                if s.init_ids.remove(&key) {
                    let result = msg.get("result");
                    s.upstream_name = result
                        .and_then(|r| r.get("serverInfo"))
                        .and_then(|i| i.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    s.protocol_version = result
                        .and_then(|r| r.get("protocolVersion"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
            } else if method == Some("notifications/tools/list_changed") {
                self.tools_stale.store(true, Ordering::SeqCst);
            }
        }
        self.send_client(&line).await;
    }

    /// A `tools/list` answer with each tool marked (`--annotate`) or left
    /// out (`--hide-blocked`) as the gate's policies say. Without the
    /// policies (the gate is down), the list goes out unchanged: every call
    /// is still decided by the gate.
    async fn mark_tools(&self, mut msg: Value) -> String {
        let policies = match self.gate.policies().await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("countersign mcp: tools/list not annotated: {e}");
                return msg.to_string();
            }
        };
        let server = self.server_name();
        let tools = msg
            .get_mut("result")
            .and_then(|r| r.get_mut("tools"))
            .and_then(Value::as_array_mut);
        if let Some(tools) = tools {
            tools.retain_mut(|tool| {
                let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                let outlook = outlook(&policies, &action_name(&server, name));
                if outlook == Outlook::AlwaysBlocked && self.config.hide_blocked {
                    return false;
                }
                if self.config.annotate {
                    let note = match outlook {
                        Outlook::AlwaysBlocked => {
                            "[Countersign: policy blocks this tool; calls are refused.]"
                        }
                        Outlook::MayNeedApproval => {
                            "[Countersign: calls may need a person's approval; such a call waits, or answers that it awaits approval and should be retried later with the same arguments.]"
                        }
                        Outlook::Allowed => "",
                    };
                    if let (false, Some(t)) = (note.is_empty(), tool.as_object_mut()) {
                        let text = match t.get("description").and_then(Value::as_str) {
                            Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                            _ => note.to_owned(),
                        };
                        t.insert("description".to_owned(), Value::String(text));
                    }
                }
                true
            });
        }
        msg.to_string()
    }

    fn server_name(&self) -> String {
        if let Some(name) = &self.config.server_name {
            return name.clone();
        }
        if let Some(name) = &lock(&self.session).upstream_name {
            return name.clone();
        }
        self.config
            .command
            .first()
            .and_then(|c| std::path::Path::new(c).file_stem())
            .map_or_else(|| "mcp".to_owned(), |s| s.to_string_lossy().into_owned())
    }

    /// A request of the proxy's own to the server (its ids never collide
    /// with the client's: they are strings with this prefix).
    async fn request_upstream(&self, method: &str, params: Value) -> Result<Value, String> {
        let id = format!(
            "countersign-mcp-{}",
            self.next_id.fetch_add(1, Ordering::SeqCst)
        );
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(Value::String(id.clone()).to_string(), tx);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_upstream(&msg.to_string()).await?;
        match tokio::time::timeout(self.config.call_timeout, rx).await {
            Ok(Ok((answer, _))) => Ok(answer),
            Ok(Err(_)) => Err("the server exited".to_owned()),
            Err(_) => {
                lock(&self.waiters).remove(&Value::String(id).to_string());
                Err(format!("no answer to {method} in time"))
            }
        }
    }

    /// Whether the server has a tool named `name` (its list is read once,
    /// and again when a name is missing or the server says it changed).
    async fn knows_tool(
        &self,
        name: &str,
        meta: Option<&RequestMetaObject>,
    ) -> Result<bool, String> {
        let mut tools = self.tools.lock().await;
        let stale = self.tools_stale.swap(false, Ordering::SeqCst);
        if let (false, Some(known)) = (stale, tools.as_ref())
            && known.contains(name)
        {
            return Ok(true);
        }
        let mut names = HashSet::new();
        let mut cursor: Option<String> = None;
        // Pages of a list: bounded, so a server that loops cannot hang us.
        for _ in 0..64 {
            let mut params = serde_json::Map::new();
            if let Some(c) = cursor.take() {
                params.insert("cursor".to_owned(), Value::String(c));
            }
            // The 2026-07-28 revision carries the client's context in each
            // request's `_meta`: the call's, without its progress token.
            if let Some(meta) = meta {
                let mut m = meta.0.0.clone();
                m.remove("progressToken");
                if !m.is_empty() {
                    params.insert("_meta".to_owned(), Value::Object(m.into_iter().collect()));
                }
            }
            let answer = self
                .request_upstream("tools/list", Value::Object(params))
                .await?;
            if let Some(err) = answer.get("error") {
                return Err(format!("tools/list failed: {err}"));
            }
            let result = answer.get("result");
            for tool in result
                .and_then(|r| r.get("tools"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(n) = tool.get("name").and_then(Value::as_str) {
                    names.insert(n.to_owned());
                }
            }
            cursor = result
                .and_then(|r| r.get("nextCursor"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        let known = names.contains(name);
        *tools = Some(names);
        Ok(known)
    }

    fn call_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.call_locks);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(locks.entry(key.to_owned()).or_default())
    }

    fn set_state(&self, key: &str, entry: Option<Entry>) -> Result<(), String> {
        self.state.set(key, entry).map_err(|e| e.to_string())
    }

    /// Decides one `tools/call` and answers it: the line to send back.
    async fn handle_call(
        &self,
        id: &Value,
        raw: &str,
        msg: &Value,
        forwarded: &AtomicBool,
    ) -> String {
        let nr = self.new_revision();
        let params: CallToolRequestParams = match msg
            .get("params")
            .cloned()
            .map(serde_json::from_value::<CallToolRequestParams>)
        {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                return rpc_error(
                    id,
                    ErrorCode::INVALID_PARAMS,
                    format!("invalid tools/call params: {e}"),
                );
            }
            None => {
                return rpc_error(
                    id,
                    ErrorCode::INVALID_PARAMS,
                    "tools/call needs params".to_owned(),
                );
            }
        };
        let tool = params.name.to_string();
        match self.knows_tool(&tool, params.meta.as_ref()).await {
            Ok(true) => {}
            Ok(false) => {
                return rpc_error(
                    id,
                    ErrorCode::INVALID_PARAMS,
                    format!("Unknown tool: {tool}"),
                );
            }
            Err(e) => {
                return tool_error(
                    id,
                    format!(
                        "Countersign could not read the server's tool list ({e}), so the call was not executed."
                    ),
                    nr,
                );
            }
        }
        let arguments = Value::Object(params.arguments.clone().unwrap_or_default());
        let server = self.server_name();
        let (client_name, client_version, protocol) = {
            let s = lock(&self.session);
            let from_meta = params
                .meta
                .as_ref()
                .and_then(RequestMetaObject::client_info);
            let trim = |v: String| v.chars().take(CLIENT_FIELD_CHARS).collect::<String>();
            let name = from_meta
                .as_ref()
                .map(|i| trim(i.name.clone()))
                .or(s.client_name.clone());
            let version = from_meta
                .as_ref()
                .map(|i| trim(i.version.clone()))
                .or(s.client_version.clone());
            let protocol = params
                .meta
                .as_ref()
                .and_then(RequestMetaObject::protocol_version)
                .map(|v| v.to_string())
                .or(s.protocol_version.clone());
            (name, version, protocol)
        };
        // The revision of this call: from its `_meta` (2026-07-28, no
        // handshake) or from the handshake.
        let nr = protocol.as_deref().is_some_and(|v| v >= "2026-07-28");
        let client_label = format!(
            "{}/{}",
            client_name.as_deref().unwrap_or(""),
            client_version.as_deref().unwrap_or("")
        );
        let key = call_key(&server, &tool, &arguments, &client_label);
        let call_lock = self.call_lock(&key);
        let _one_at_a_time = call_lock.lock().await;
        let client = client_name
            .as_ref()
            .map(|n| json!({"name": n, "version": client_version}));
        let request = json!({
            "action": action_name(&server, &tool),
            "payload": arguments,
            "actor": self.config.actor,
            "reasoning": Value::Null,
            "source": "mcp",
            "context": {"mcp": {
                "server": server,
                "tool": tool,
                "client": client,
                "protocol_version": protocol,
            }},
        });
        let token = params
            .meta
            .as_ref()
            .and_then(RequestMetaObject::get_progress_token)
            .and_then(|t| serde_json::to_value(t).ok());
        match self.govern(id, raw, &key, request, token, forwarded).await {
            Ok(answer) => answer,
            Err(text) => tool_error(id, text, nr),
        }
    }

    /// Finds or creates the call's run, waits for a decision, forwards an
    /// allowed or approved call. `Err` is the text of an `isError` result.
    async fn govern(
        &self,
        id: &Value,
        raw: &str,
        key: &str,
        mut request: Value,
        token: Option<Value>,
        forwarded: &AtomicBool,
    ) -> Result<String, String> {
        let not_run = "The call was not executed.";
        let mut entry = self.state.get(key);
        let mut run = None;
        if let Some(e) = entry.clone()
            && let Some(run_id) = &e.run_id
        {
            let current = self.gate.run(run_id).await.map_err(|err| {
                format!("Countersign could not reach the gate ({err}). {not_run} Try again later.")
            })?;
            match current {
                Some(r) if e.forwarded && r.execution_status == "awaiting_execution" => {
                    // Handed to the server before the proxy stopped, and
                    // never reported: never forwarded a second time.
                    self.report_failed(
                        run_id,
                        "the MCP proxy stopped while the call was running; its outcome is unknown",
                    )
                    .await;
                    self.set_state(key, None)?;
                    return Err(format!(
                        "This call (run {run_id}) was handed to the server before the Countersign proxy restarted, and its outcome is unknown. It was not executed again; check its effect before calling again."
                    ));
                }
                Some(r) if is_open(&r) => run = Some(r),
                _ => {
                    // Decided and done (or unknown to the gate): the same
                    // call again is a new run.
                    entry = None;
                    self.set_state(key, None)?;
                }
            }
        }
        let nonce = match &entry {
            Some(e) => e.nonce.clone(),
            None => random_hex()?,
        };
        let run = match run {
            Some(r) => r,
            None => {
                self.set_state(
                    key,
                    Some(Entry {
                        nonce: nonce.clone(),
                        run_id: None,
                        forwarded: false,
                    }),
                )?;
                if let Some(m) = request.as_object_mut() {
                    let idem = format!("mcp-{}", sha256_hex(&format!("{key}:{nonce}")));
                    m.insert("idempotency_key".to_owned(), Value::String(idem));
                }
                match self.gate.intercept(&request).await {
                    // Allowed: `forward` records the run with the hand-over,
                    // and until then the nonce leads a retry to this run.
                    Ok(r) if r.governance_status == "allowed" => r,
                    Ok(r) => {
                        self.set_state(
                            key,
                            Some(Entry {
                                nonce: nonce.clone(),
                                run_id: Some(r.run_id.clone()),
                                forwarded: false,
                            }),
                        )?;
                        r
                    }
                    Err(e @ GateError::Unreachable { .. }) => {
                        return Err(format!(
                            "Countersign could not reach the gate ({e}), so it cannot tell whether this call is allowed. {not_run} Try again later."
                        ));
                    }
                    Err(GateError::Refused {
                        status: 413,
                        message,
                        ..
                    }) => {
                        self.set_state(key, None)?;
                        return Err(format!(
                            "The call's arguments are larger than the Countersign gate accepts ({message}). {not_run}"
                        ));
                    }
                    Err(GateError::Refused {
                        status,
                        code,
                        message,
                    }) => {
                        self.set_state(key, None)?;
                        return Err(format!(
                            "The Countersign gate refused the call ({status} {code}: {message}). {not_run}"
                        ));
                    }
                }
            }
        };
        let run = if run.governance_status == "pending_approval" {
            match self.wait(run, token.as_ref()).await {
                Waited::Decided(r) => r,
                Waited::StillPending(r) => {
                    let approvers = r
                        .approval
                        .as_ref()
                        .map(|a| a.approvers.join(", "))
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "the approvers".to_owned());
                    let expires = r
                        .approval
                        .as_ref()
                        .map(|a| format!(" The request expires at {}.", a.expires_at))
                        .unwrap_or_default();
                    return Err(format!(
                        "This call awaits approval by {approvers} (Countersign run {}; {}).{expires} It has not been executed yet. Retry the same call with the same arguments later: it maps to this run and is executed once, when approved.",
                        r.run_id, r.governance_reason
                    ));
                }
            }
        } else {
            run
        };
        let run_id = run.run_id.clone();
        let rule = run
            .rule
            .as_deref()
            .map(|r| format!(" (rule `{r}`)"))
            .unwrap_or_default();
        match (
            run.governance_status.as_str(),
            run.execution_status.as_str(),
        ) {
            ("allowed" | "approved", "awaiting_execution") => {
                self.forward(id, raw, key, &nonce, &run_id, forwarded).await
            }
            ("blocked", _) => {
                self.set_state(key, None)?;
                Err(format!(
                    "Countersign blocked this call: {}{rule}. Run {run_id}. {not_run} Do not retry it unchanged.",
                    run.governance_reason
                ))
            }
            ("rejected", _) => {
                self.set_state(key, None)?;
                let by = run
                    .approvals
                    .iter()
                    .find(|a| a.decision == "reject")
                    .map(|a| {
                        let comment = a
                            .comment
                            .as_deref()
                            .map(|c| format!(": \"{c}\""))
                            .unwrap_or_default();
                        format!(" by {}{comment}", a.approver)
                    })
                    .unwrap_or_default();
                Err(format!(
                    "This call was rejected{by} (Countersign run {run_id}). {not_run}"
                ))
            }
            ("expired", _) => {
                self.set_state(key, None)?;
                Err(format!(
                    "Nobody approved this call before its approval request expired (Countersign run {run_id}). {not_run}"
                ))
            }
            (governance, execution) => {
                self.set_state(key, None)?;
                Err(format!(
                    "Countersign run {run_id} is {governance} and {execution}. {not_run}"
                ))
            }
        }
    }

    /// Waits up to `--wait` for the run to be decided, sending progress
    /// notifications when the client asked for them.
    async fn wait(&self, mut run: RunInfo, token: Option<&Value>) -> Waited {
        let deadline = Instant::now() + self.config.wait;
        let mut next_progress = Instant::now();
        let mut sent = 0u64;
        loop {
            let now = Instant::now();
            if let (Some(token), true) = (token, now >= next_progress) {
                sent += 1;
                let approvers = run
                    .approval
                    .as_ref()
                    .map(|a| a.approvers.join(", "))
                    .unwrap_or_default();
                let left = deadline.saturating_duration_since(now).as_secs();
                let text = format!(
                    "awaiting approval of Countersign run {} by {approvers} ({left} s left)",
                    run.run_id
                );
                if let Some(note) = progress(token, sent, text) {
                    self.send_client(&note).await;
                }
                next_progress = now + PROGRESS_EVERY;
            }
            if now >= deadline {
                return Waited::StillPending(run);
            }
            let step = self
                .config
                .poll
                .min(deadline.saturating_duration_since(now))
                .min(
                    next_progress
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(10)),
                );
            tokio::time::sleep(step).await;
            // A gate that stops answering while we wait: keep asking until
            // the deadline, then say the call still awaits approval.
            if let Ok(Some(r)) = self.gate.run(&run.run_id).await {
                if r.governance_status != "pending_approval" {
                    return Waited::Decided(r);
                }
                run = r;
            }
        }
    }

    /// Hands the call to the server, exactly once for this run, and reports
    /// its outcome to the gate. The server's answer goes back unchanged.
    async fn forward(
        &self,
        id: &Value,
        raw: &str,
        key: &str,
        nonce: &str,
        run_id: &str,
        forwarded: &AtomicBool,
    ) -> Result<String, String> {
        if self.upstream_gone.load(Ordering::SeqCst) {
            self.report_failed(run_id, "the MCP server had exited")
                .await;
            self.set_state(key, None)?;
            return Err(format!(
                "The MCP server is not running (Countersign run {run_id}). The call was not executed."
            ));
        }
        // Durable before the server sees the call: a restart never sends it again.
        self.set_state(
            key,
            Some(Entry {
                nonce: nonce.to_owned(),
                run_id: Some(run_id.to_owned()),
                forwarded: true,
            }),
        )?;
        forwarded.store(true, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        let waiter_key = id.to_string();
        lock(&self.waiters).insert(waiter_key.clone(), tx);
        if let Err(e) = self.send_upstream(raw).await {
            lock(&self.waiters).remove(&waiter_key);
            self.report_failed(
                run_id,
                &format!("could not send the call to the MCP server: {e}"),
            )
            .await;
            self.set_state(key, None)?;
            return Err(format!(
                "The MCP server could not be reached ({e}); the call was not executed (Countersign run {run_id})."
            ));
        }
        let outcome = tokio::time::timeout(self.config.call_timeout, rx).await;
        self.set_state(key, None)?;
        // The run is reported before the client has its answer: a client
        // that stops the proxy right after a call cannot lose the report.
        match outcome {
            Ok(Ok((answer, line))) => {
                if let Some(err) = answer.get("error") {
                    let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                    self.report_failed(
                        run_id,
                        &format!("the MCP server answered with an error: {message}"),
                    )
                    .await;
                } else {
                    let result = answer.get("result").cloned().unwrap_or(Value::Null);
                    let mut text = String::new();
                    canonical_json(&result, &mut text);
                    let hash = sha256_hex(&text);
                    let summary = summarize(&result);
                    if result.get("isError").and_then(Value::as_bool) == Some(true) {
                        self.report_failed(
                            run_id,
                            &format!("the tool returned isError: {summary} (result sha256 {hash})"),
                        )
                        .await;
                    } else {
                        self.report_executed(run_id, json!({"sha256": hash, "summary": summary}))
                            .await;
                    }
                }
                Ok(line)
            }
            Ok(Err(_)) => {
                self.report_failed(run_id, "the MCP server exited before answering")
                    .await;
                Err(format!(
                    "The MCP server exited before answering (Countersign run {run_id}); whether the call took effect is unknown."
                ))
            }
            Err(_) => {
                lock(&self.waiters).remove(&waiter_key);
                let secs = self.config.call_timeout.as_secs();
                self.report_failed(
                    run_id,
                    &format!("the MCP server did not answer within {secs} s"),
                )
                .await;
                Err(format!(
                    "The MCP server did not answer within {secs} s (Countersign run {run_id}); whether the call took effect is unknown."
                ))
            }
        }
    }

    async fn report_executed(&self, run_id: &str, result: Value) {
        for attempt in 1..=REPORT_ATTEMPTS {
            match self.gate.executed(run_id, result.clone()).await {
                Ok(()) | Err(GateError::Refused { .. }) => return,
                Err(e) if attempt == REPORT_ATTEMPTS => {
                    eprintln!("countersign mcp: could not report run {run_id} executed: {e}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn report_failed(&self, run_id: &str, error: &str) {
        for attempt in 1..=REPORT_ATTEMPTS {
            match self.gate.failed(run_id, error).await {
                Ok(()) | Err(GateError::Refused { .. }) => return,
                Err(e) if attempt == REPORT_ATTEMPTS => {
                    eprintln!("countersign mcp: could not report run {run_id} failed: {e}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// What policy may decide for an action, from its declaration alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outlook {
    Allowed,
    MayNeedApproval,
    AlwaysBlocked,
}

/// The outlook of `action` in the policies `GET /v1/policies` serves: an
/// undeclared action is always blocked; otherwise the decisions its default,
/// its enforced rules and (when it has rules) its `on_error` can take.
fn outlook(policies: &Value, action: &str) -> Outlook {
    let declared = policies
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("name").and_then(Value::as_str) == Some(action));
    let Some(a) = declared else {
        return Outlook::AlwaysBlocked;
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("block").to_owned();
    let rules: Vec<&Value> = a
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("mode").and_then(Value::as_str) != Some("shadow"))
        .collect();
    let mut possible = vec![text(a.get("default"))];
    possible.extend(rules.iter().map(|r| text(r.get("decision"))));
    if !rules.is_empty() {
        possible.push(text(a.get("on_error")));
    }
    if possible.iter().all(|d| d == "block") {
        Outlook::AlwaysBlocked
    } else if possible.iter().any(|d| d == "require_approval") {
        Outlook::MayNeedApproval
    } else {
        Outlook::Allowed
    }
}

/// A run the call may still be executed under: pending, or allowed or
/// approved and not yet executed.
fn is_open(r: &RunInfo) -> bool {
    r.governance_status == "pending_approval"
        || (matches!(r.governance_status.as_str(), "allowed" | "approved")
            && r.execution_status == "awaiting_execution")
}

fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

/// A short summary of a tool result for the execution report: its first
/// text, collapsed and cut, and how many content blocks it had.
fn summarize(result: &Value) -> String {
    let blocks = result
        .get("content")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let text = blocks
        .iter()
        .find_map(|b| b.get("text").and_then(Value::as_str))
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let mut out: String = text.chars().take(SUMMARY_CHARS).collect();
    if text.chars().count() > SUMMARY_CHARS {
        out.push('…');
    }
    if blocks.len() != 1 || out.is_empty() {
        out = format!("{out} [{} content blocks]", blocks.len())
            .trim()
            .to_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlooks_follow_the_declarations() {
        let p = json!({"actions": [
            {"name": "fs.read", "default": "allow", "on_error": "block", "rules": []},
            {"name": "fs.write", "default": "allow", "on_error": "block",
             "rules": [{"decision": "require_approval", "mode": "enforce"}]},
            {"name": "fs.move", "default": "block", "on_error": "block",
             "rules": [{"decision": "block", "mode": "enforce"},
                       {"decision": "allow", "mode": "shadow"}]},
        ]});
        assert_eq!(outlook(&p, "fs.read"), Outlook::Allowed);
        assert_eq!(outlook(&p, "fs.write"), Outlook::MayNeedApproval);
        assert_eq!(outlook(&p, "fs.move"), Outlook::AlwaysBlocked);
        assert_eq!(outlook(&p, "fs.undeclared"), Outlook::AlwaysBlocked);
    }

    #[test]
    fn summaries_are_short() {
        let r = json!({"content": [{"type": "text", "text": "a\n  b"}]});
        assert_eq!(summarize(&r), "a b");
        let long = json!({"content": [{"type": "text", "text": "x".repeat(500)}]});
        assert_eq!(summarize(&long).chars().count(), SUMMARY_CHARS + 1);
        assert_eq!(summarize(&json!({"content": []})), "[0 content blocks]");
    }
}
