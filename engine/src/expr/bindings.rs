//! The request values an expression reads, for both condition languages.

use crate::value::Value;

/// The values one evaluation reads.
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'r> {
    /// `actor`
    pub actor: &'r Value,
    /// `payload`
    pub payload: &'r Value,
    /// `source`
    pub source: &'r Value,
    /// `context`: what the surface adds (`context.mcp.tool`); null when none.
    pub context: &'r Value,
    /// `now`: a [`Value::Timestamp`], or null when unset.
    pub now: &'r Value,
}
