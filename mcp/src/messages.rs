//! The messages the proxy writes itself (every other one is relayed as
//! received): tool results with `isError`, JSON-RPC errors and progress
//! notifications, built from the MCP SDK's types.

use rmcp::model::{
    CallToolResult, ContentBlock, ErrorCode, ErrorData, ProgressNotificationParam, ProgressToken,
};
use serde_json::{Value, json};

/// A `tools/call` answer whose result has `isError: true` and `text` for
/// the model. `new_revision` keeps the `resultType` field the 2026-07-28
/// revision wants; older revisions do not know it.
pub(crate) fn tool_error(id: &Value, text: String, new_revision: bool) -> String {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    if !new_revision {
        result.result_type = None;
    }
    let result = serde_json::to_value(&result).unwrap_or(Value::Null);
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

/// A JSON-RPC error answer.
pub(crate) fn rpc_error(id: &Value, code: ErrorCode, message: String) -> String {
    let error = serde_json::to_value(ErrorData::new(code, message, None)).unwrap_or(Value::Null);
    json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string()
}

/// A `notifications/progress` for `token`, or `None` if the token is not
/// one (a string or an integer).
pub(crate) fn progress(token: &Value, progress: u64, message: String) -> Option<String> {
    let token: ProgressToken = serde_json::from_value(token.clone()).ok()?;
    // Progress counts notifications: far below 2^52, exact as a float.
    let mut params = ProgressNotificationParam::new(token, progress as f64);
    params.message = Some(message);
    let params = serde_json::to_value(&params).ok()?;
    Some(
        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_error_is_a_result_with_is_error() {
        let v: Value = serde_json::from_str(&tool_error(&json!(7), "no".into(), false)).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["result"]["isError"], true);
        assert_eq!(v["result"]["content"][0]["text"], "no");
        assert!(v["result"].get("resultType").is_none());
        let v: Value = serde_json::from_str(&tool_error(&json!("a"), "no".into(), true)).unwrap();
        assert_eq!(v["result"]["resultType"], "complete");
    }

    #[test]
    fn progress_needs_a_token() {
        assert!(progress(&json!({"x": 1}), 1, "m".into()).is_none());
        let v: Value =
            serde_json::from_str(&progress(&json!("t"), 3, "m".into()).unwrap()).unwrap();
        assert_eq!(v["params"]["progressToken"], "t");
        assert_eq!(v["params"]["progress"], 3.0);
    }
}
