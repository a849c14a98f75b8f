//! An action's `summary:` template: the one-line title approvers see for a
//! request, such as `Refund {payload.amount} {payload.currency} to
//! {payload.customer.name}`.
//!
//! Placeholders are `{payload.PATH}` (a dotted path into the payload) and
//! `{actor}`; `{{` and `}}` stand for literal braces. The template is
//! checked when the policy loads; at render time a placeholder whose value
//! is missing, null, a list or an object makes the whole template give way
//! (the caller falls back to the action's description), so a title never
//! shows a half-filled sentence.

use std::fmt::Write as _;

/// The longest a rendered title may be, in characters; longer ones end
/// with `…`.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest one placeholder's value may be, in characters.
const MAX_VALUE_CHARS: usize = 80;
/// The most path segments a placeholder may have.
const MAX_DEPTH: usize = 16;

/// A checked `summary:` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Actor,
    Payload(Vec<String>),
}

/// A problem in a template: a message and the byte range of the template
/// text it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryError {
    /// What is wrong.
    pub message: String,
    /// Where, in bytes of the template text.
    pub span: (usize, usize),
    /// How to fix it.
    pub help: &'static str,
}

const HELP: &str = "placeholders are {payload.field}, {payload.nested.field} or {actor}; \
write {{ and }} for literal braces";

impl SummaryTemplate {
    /// Parses and checks a template.
    pub fn parse(text: &str) -> Result<Self, SummaryError> {
        let err = |message: String, start: usize, end: usize| SummaryError {
            message,
            span: (start, end.max(start + 1).min(text.len().max(start + 1))),
            help: HELP,
        };
        if text.trim().is_empty() {
            return Err(err("a summary cannot be empty".to_owned(), 0, 0));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(err("`}` without a matching `{`".to_owned(), i, i + 1)),
                '{' => {
                    let Some(close) = text[i + 1..].find('}').map(|o| i + 1 + o) else {
                        return Err(err("`{` is never closed".to_owned(), i, text.len()));
                    };
                    let inner = &text[i + 1..close];
                    let part = placeholder(inner.trim()).map_err(|m| err(m, i, close + 1))?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    while chars.peek().is_some_and(|(j, _)| *j <= close) {
                        chars.next();
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self {
            source: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The payload paths the template reads, dotted (`customer.name`).
    pub fn payload_paths(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Payload(path) => Some(path.join(".")),
                _ => None,
            })
            .collect()
    }

    /// The title for a request, or `None` when a placeholder has no
    /// printable value (missing, null, a list or an object).
    pub fn render(&self, payload: &serde_json::Value, actor: Option<&str>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Actor => out.push_str(&clip(actor?, MAX_VALUE_CHARS)),
                Part::Payload(path) => {
                    let mut v = payload;
                    for seg in path {
                        v = match v {
                            serde_json::Value::Object(m) => m.get(seg)?,
                            serde_json::Value::Array(items) => {
                                items.get(seg.parse::<usize>().ok()?)?
                            }
                            _ => return None,
                        };
                    }
                    match v {
                        serde_json::Value::String(s) => out.push_str(&clip(s, MAX_VALUE_CHARS)),
                        serde_json::Value::Number(n) => {
                            let _ = write!(out, "{n}");
                        }
                        serde_json::Value::Bool(b) => {
                            let _ = write!(out, "{b}");
                        }
                        _ => return None,
                    }
                }
            }
        }
        let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
        if out.is_empty() {
            None
        } else {
            Some(clip(&out, MAX_TITLE_CHARS))
        }
    }
}

fn placeholder(inner: &str) -> Result<Part, String> {
    if inner == "actor" {
        return Ok(Part::Actor);
    }
    let Some(path) = inner.strip_prefix("payload.") else {
        return Err(if inner.is_empty() {
            "an empty placeholder `{}`".to_owned()
        } else {
            format!("unknown placeholder `{{{inner}}}`")
        });
    };
    let segs: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segs.len() > MAX_DEPTH {
        return Err(format!(
            "`{{{inner}}}` is nested deeper than {MAX_DEPTH} fields"
        ));
    }
    for s in &segs {
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(format!(
                "`{{{inner}}}` is not a payload path: use field names of letters, digits, `_` or `-`, \
                 separated by dots"
            ));
        }
    }
    Ok(Part::Payload(segs))
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failing test")]
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_placeholders_from_the_payload() {
        let t = SummaryTemplate::parse(
            "Refund {payload.amount} {payload.currency} to {payload.customer.name} ({actor}) {{ok}}",
        )
        .unwrap();
        let p = json!({"amount": 250.5, "currency": "EUR", "customer": {"name": "Ada"}});
        assert_eq!(
            t.render(&p, Some("agent-7")).as_deref(),
            Some("Refund 250.5 EUR to Ada (agent-7) {ok}")
        );
        assert_eq!(t.payload_paths(), ["amount", "currency", "customer.name"]);
    }

    #[test]
    fn a_missing_or_structured_value_gives_way() {
        let t = SummaryTemplate::parse("Pay {payload.to}").unwrap();
        assert_eq!(t.render(&json!({}), None), None);
        assert_eq!(t.render(&json!({"to": null}), None), None);
        assert_eq!(t.render(&json!({"to": {"a": 1}}), None), None);
        assert_eq!(t.render(&json!({"to": [1]}), None), None);
        let items = SummaryTemplate::parse("First {payload.items.0}").unwrap();
        assert_eq!(
            items.render(&json!({"items": ["x"]}), None).as_deref(),
            Some("First x")
        );
        let actor = SummaryTemplate::parse("By {actor}").unwrap();
        assert_eq!(actor.render(&json!({}), None), None);
    }

    #[test]
    fn long_values_are_clipped() {
        let t = SummaryTemplate::parse("{payload.s}").unwrap();
        let out = t.render(&json!({"s": "x".repeat(500)}), None).unwrap();
        assert_eq!(out.chars().count(), MAX_VALUE_CHARS);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn bad_templates_are_refused_with_where() {
        let e = SummaryTemplate::parse("Refund {payload.amount").unwrap_err();
        assert!(e.message.contains("never closed"), "{e:?}");
        assert_eq!(e.span.0, 7);
        let e = SummaryTemplate::parse("Refund {amount}").unwrap_err();
        assert!(
            e.message.contains("unknown placeholder `{amount}`"),
            "{e:?}"
        );
        assert_eq!(e.span, (7, 15));
        let e = SummaryTemplate::parse("a } b").unwrap_err();
        assert_eq!(e.span, (2, 3));
        assert!(SummaryTemplate::parse("{payload.a..b}").is_err());
        assert!(SummaryTemplate::parse("{payload.a b}").is_err());
        assert!(SummaryTemplate::parse("{}").is_err());
        assert!(SummaryTemplate::parse("  ").is_err());
    }
}
