//! The ceiling for the gate's load benchmark.
//!
//! The same HTTP stack as the gate (axum 0.8 on a multi-threaded tokio
//! runtime) answering `POST /v1/intercept` with a JSON object of the same
//! shape and size as the gate's answer, but with no authentication, no
//! policy evaluation and no storage. It reads the body, parses it with
//! serde_json, fills a fresh run id (and the request's idempotency key) into
//! a real gate response captured once, and answers 201.
//!
//! Usage: `countersign-bare-ceiling PORT` (listens on 127.0.0.1 only).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::Value;

/// A real `201` answer of the release gate to `benches/load/intercept.lua`'s
/// first request (a 500 EUR refund: pending_approval), 1,249 bytes. The
/// gate's answers to the script's other two cases are 1,065 (allowed) and
/// 1,148 (blocked) bytes, so the ceiling sends slightly more on average.
const TEMPLATE: &str = include_str!("../template.json");

async fn intercept(State(template): State<Arc<Value>>, body: Bytes) -> (StatusCode, Json<Value>) {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let error = serde_json::json!({"error": {"code": "validation_failed",
                "message": "the body must be a JSON object"}});
            return (StatusCode::BAD_REQUEST, Json(error));
        }
    };
    let mut answer = (*template).clone();
    if let Value::Object(m) = &mut answer {
        m.insert(
            "run_id".to_owned(),
            Value::String(format!("run_{}", uuid::Uuid::now_v7().simple())),
        );
        if let Some(k) = request.get("idempotency_key") {
            m.insert("idempotency_key".to_owned(), k.clone());
        }
    }
    (StatusCode::CREATED, Json(answer))
}

async fn healthz() -> Json<Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: countersign-bare-ceiling PORT")?
        .parse()?;
    let template: Value = serde_json::from_str(TEMPLATE)?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/intercept", post(intercept))
        .with_state(Arc::new(template));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bare ceiling listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
