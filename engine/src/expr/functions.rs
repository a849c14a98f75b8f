//! The built-in functions: names, arities, argument types and behaviour.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::program::{Func, Ty};
use crate::value::Value;

/// Every function name, in the order the reference documents them.
pub(crate) const NAMES: [&str; 11] = [
    "has",
    "len",
    "lower",
    "upper",
    "trim",
    "starts_with",
    "ends_with",
    "contains",
    "matches",
    "hour",
    "weekday",
];

impl Func {
    pub(crate) fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "has" => Func::Has,
            "len" => Func::Len,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "trim" => Func::Trim,
            "starts_with" => Func::StartsWith,
            "ends_with" => Func::EndsWith,
            "contains" => Func::Contains,
            "matches" => Func::Matches,
            "hour" => Func::Hour,
            "weekday" => Func::Weekday,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Func::Has => "has",
            Func::Len => "len",
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Trim => "trim",
            Func::StartsWith => "starts_with",
            Func::EndsWith => "ends_with",
            Func::Contains => "contains",
            Func::Matches => "matches",
            Func::Hour => "hour",
            Func::Weekday => "weekday",
        }
    }

    /// The accepted types of each parameter; the length is the arity.
    pub(crate) fn params(self) -> &'static [&'static [Ty]] {
        const STR: &[Ty] = &[Ty::Str];
        const TIME: &[Ty] = &[Ty::Time, Ty::Str];
        match self {
            Func::Has => &[&[]],
            Func::Len => &[&[Ty::Str, Ty::List, Ty::Obj]],
            Func::Lower | Func::Upper | Func::Trim => &[STR],
            Func::StartsWith | Func::EndsWith | Func::Matches => &[STR, STR],
            Func::Contains => &[&[Ty::Str, Ty::List], &[]],
            Func::Hour | Func::Weekday => &[TIME, STR],
        }
    }

    pub(crate) fn result(self) -> Ty {
        match self {
            Func::Has | Func::StartsWith | Func::EndsWith | Func::Contains | Func::Matches => {
                Ty::Bool
            }
            Func::Len | Func::Hour | Func::Weekday => Ty::Num,
            Func::Lower | Func::Upper | Func::Trim => Ty::Str,
        }
    }

    /// Applies a function whose arguments are plain values. `has`, `matches`
    /// and the clock functions are compiled into their own operations.
    pub(crate) fn apply(self, args: &[&Value]) -> Result<Value, String> {
        match (self, args) {
            (Func::Len, [v]) => match v {
                Value::String(s) => Ok(Value::Number(Decimal::from(s.chars().count()))),
                Value::List(l) => Ok(Value::Number(Decimal::from(l.len()))),
                Value::Object(m) => Ok(Value::Number(Decimal::from(m.len()))),
                other => Err(format!(
                    "`len` expects a string, list or object, got {}",
                    other.type_name()
                )),
            },
            (Func::Lower, [v]) => Ok(Value::String(string_arg(self, v)?.to_lowercase())),
            (Func::Upper, [v]) => Ok(Value::String(string_arg(self, v)?.to_uppercase())),
            (Func::Trim, [v]) => Ok(Value::String(string_arg(self, v)?.trim().to_owned())),
            (Func::StartsWith, [s, p]) => Ok(Value::Bool(
                string_arg(self, s)?.starts_with(string_arg(self, p)?),
            )),
            (Func::EndsWith, [s, p]) => Ok(Value::Bool(
                string_arg(self, s)?.ends_with(string_arg(self, p)?),
            )),
            (Func::Contains, [hay, needle]) => match hay {
                Value::String(s) => Ok(Value::Bool(s.contains(string_arg(self, needle)?))),
                Value::List(l) => Ok(Value::Bool(l.iter().any(|x| x == *needle))),
                other => Err(format!(
                    "`contains` expects a string or list, got {}",
                    other.type_name()
                )),
            },
            _ => Err(format!("`{}` called with the wrong arguments", self.name())),
        }
    }
}

fn string_arg(f: Func, v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("`{}` expects a string, got {}", f.name(), v.type_name()))
}

/// Reads a timestamp argument: the `now` value or an RFC 3339 string.
pub(crate) fn timestamp_arg(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::Timestamp(t) => Ok(*t),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("`{s}` is not an RFC 3339 timestamp")),
        Value::Null => Err("expected a timestamp, got null (is `now` set?)".to_owned()),
        other => Err(format!("expected a timestamp, got {}", other.type_name())),
    }
}

/// Parses an IANA time zone name such as `Europe/Paris`.
pub(crate) fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone `{name}`"))
}

/// The hour (0–23) of `t` on the wall clock of `tz`.
pub(crate) fn hour(t: DateTime<Utc>, tz: Tz) -> Value {
    Value::Number(Decimal::from(t.with_timezone(&tz).hour()))
}

/// The ISO weekday (1 = Monday … 7 = Sunday) of `t` in `tz`.
pub(crate) fn weekday(t: DateTime<Utc>, tz: Tz) -> Value {
    Value::Number(Decimal::from(
        t.with_timezone(&tz).weekday().number_from_monday(),
    ))
}
