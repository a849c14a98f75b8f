//! The YAML schema of policy files as serde sees it. Scalars the loader
//! validates itself are kept as `Spanned<String>` so its diagnostics point at
//! them; unknown fields are rejected so a typo such as `wen:` is an error,
//! not a rule that silently always matches.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML mapping kept in file order, with the location of each key.
#[derive(Debug)]
pub(crate) struct OrderedMap<V>(pub(crate) Vec<(Spanned<String>, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

/// Deserializes a field that is present (serde only calls this when the key
/// exists), keeping an explicit null as `Some(Spanned { value: None })`.
fn present<'de, D, T>(d: D) -> Result<Option<Spanned<Option<T>>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Spanned::<Option<T>>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) version: Spanned<u32>,
    #[serde(default)]
    pub(crate) on_error: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) approvers: OrderedMap<RawGroup>,
    /// `name:` with nothing under it declares an action without rules
    /// (always blocked), hence the `Option`.
    #[serde(default)]
    pub(crate) actions: OrderedMap<Option<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) members: Spanned<Vec<RawMember>>,
    #[serde(default)]
    pub(crate) quorum: Option<Spanned<u32>>,
    #[serde(default)]
    pub(crate) timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) escalate_to: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) escalate_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMember {
    pub(crate) id: Spanned<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) email: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) slack: Option<Spanned<String>>,
    /// The member's own Teams Workflows URL (a 1:1 chat), for personal links.
    #[serde(default)]
    pub(crate) teams: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAction {
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// The approvers' one-line title, e.g. `Refund {payload.amount}`.
    #[serde(default)]
    pub(crate) summary: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) risk: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) approvers: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) default: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) on_error: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// `Some(None)` is a `when:` written with no condition: an error, never
    /// "always matches" (that would fail open).
    #[serde(default, deserialize_with = "present")]
    pub(crate) when: Option<Spanned<Option<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) when_cel: Option<Spanned<Option<String>>>,
    pub(crate) decision: Spanned<String>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) quorum: Option<Spanned<u32>>,
    #[serde(default)]
    pub(crate) approvers: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) mode: Option<Spanned<String>>,
}
