//! The store's behaviour, written once and run against every backend.

mod access;
mod approvals;
mod keys;
mod log;
mod runs;
mod verifiable;

pub use access::*;
pub use approvals::*;
pub use keys::*;
pub use log::*;
pub use runs::*;
pub use verifiable::*;

use countersign_store::{Event, EventKind, Store};

pub(crate) fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

pub(crate) async fn head_seq(store: &dyn Store, ws: &str) -> u64 {
    store.verify_chain(ws).await.unwrap().events
}
