//! Values that expressions compute with: JSON plus timestamps, with numbers
//! held as exact decimals.
//!
//! Payloads arrive as JSON. Reading them through `f64` would make
//! `0.1 + 0.2 != 0.3` and `1250.10` differ from `1250.1` in the last bit, which
//! is not what a finance rule means, so [`Value::Number`] is a
//! [`rust_decimal::Decimal`] (28 significant digits) and [`parse_json`] reads
//! number text directly into it. A number that does not fit is an error, never
//! a silent rounding.

mod json;
mod serde_impl;
mod types;

pub(crate) use json::parse_decimal as parse_decimal_literal;
pub use json::{JsonError, JsonLimits, parse_json, parse_json_with_limits};
pub(crate) use types::compare;
pub use types::{Map, Value, write_json_string};
