//! What every HTTP surface of the gate shares, below both the JSON API
//! (`api`) and the HTML dashboard and confirmation pages (`ui`): the
//! client's address, body reading with a size limit, the security headers
//! of HTML pages, and making untrusted text safe and short.
//!
//! This module depends on nothing above it: `api` and `ui` import it, never
//! the other way round, and neither imports the other.

pub mod body;
pub mod client;
pub mod headers;
pub mod text;

pub use body::{MAX_FORM_BYTES, read_body};
pub use client::{ClientAddr, user_agent};
pub use headers::harden;
pub use text::{reveal, summarize_text};
