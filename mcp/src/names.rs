//! Naming a tool call for the gate: the action name `<server>.<tool>`, and
//! the key under which the proxy recognises a retry of the same call.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest action name the gate accepts.
const MAX_ACTION: usize = 128;

/// The gate's action name for `tool` of `server`: `<server>.<tool>`, each
/// character an action name may not hold (anything but ASCII letters,
/// digits, `_`, `-`, `.`, `:`) replaced by `_`, cut to 128 characters. A
/// name that would not start with a letter or digit is prefixed with `x`.
///
/// ```
/// assert_eq!(countersign_mcp::action_name("fs", "read_file"), "fs.read_file");
/// assert_eq!(countersign_mcp::action_name("my server", "créer/ticket"), "my_server.cr_er_ticket");
/// assert_eq!(countersign_mcp::action_name("_x", "t"), "x_x.t");
/// ```
pub fn action_name(server: &str, tool: &str) -> String {
    let mut name: String = format!("{server}.{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name.insert(0, 'x');
    }
    // Every character is ASCII now, so any byte index is a boundary.
    name.truncate(MAX_ACTION);
    name
}

/// Writes `v` as JSON with every object's keys sorted, so two spellings of
/// the same arguments give the same text.
pub(crate) fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(item) = m.get(k) {
                    canonical_json(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 of `text`, in hex.
pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The identity of a call for retries: the same server, tool, canonical
/// arguments and client give the same key.
pub(crate) fn call_key(server: &str, tool: &str, arguments: &Value, client: &str) -> String {
    let mut text = String::new();
    canonical_json(
        &Value::Array(vec![
            Value::String(server.to_owned()),
            Value::String(tool.to_owned()),
            arguments.clone(),
            Value::String(client.to_owned()),
        ]),
        &mut text,
    );
    sha256_hex(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn action_names_are_valid() {
        assert_eq!(action_name("github", "create_issue"), "github.create_issue");
        assert_eq!(action_name("a b", "c/d"), "a_b.c_d");
        assert_eq!(action_name("", "t"), "x.t");
        assert_eq!(action_name(&"s".repeat(200), "t").len(), 128);
    }

    #[test]
    fn the_call_key_ignores_key_order_only() {
        let a = call_key("s", "t", &json!({"x": 1, "y": [1, {"b": 2, "a": 1}]}), "c");
        let b = call_key("s", "t", &json!({"y": [1, {"a": 1, "b": 2}], "x": 1}), "c");
        assert_eq!(a, b);
        assert_ne!(a, call_key("s", "t", &json!({"x": 2}), "c"));
        assert_ne!(
            a,
            call_key("s", "t2", &json!({"x": 1, "y": [1, {"b": 2, "a": 1}]}), "c")
        );
        assert_ne!(
            a,
            call_key(
                "s",
                "t",
                &json!({"x": 1, "y": [1, {"b": 2, "a": 1}]}),
                "other"
            )
        );
    }
}
