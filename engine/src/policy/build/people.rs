//! One person, one approver id: across every group of a policy set, two
//! members with different ids may not share an email address (compared
//! ignoring case) or a Slack id (compared exactly), and one id listed in
//! several groups must have the same address and Slack id in each.
//!
//! Why: the store counts a quorum by approver id and refuses an answer from
//! the run's actor by the answering entry's identities. A person listed
//! under two ids could approve a run proposed under their other id, and
//! count twice towards a quorum of two, through any channel that answers by
//! id (links, webhooks). Refusing such a set at load is simple, explains
//! itself, and holds on every channel.

use std::collections::HashMap;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::loader::{Loader, origin};
use crate::policy::diagnostic::{DiagnosticKind, SourceFile};
use crate::policy::files::span_of;
use crate::policy::model::Origin;
use crate::policy::raw::RawGroup;

/// Where an address or Slack id was first seen.
struct Seen<'a> {
    id: &'a str,
    value: &'a str,
    at: Origin,
}

/// Which contact a check is about.
#[derive(Clone, Copy)]
enum Contact {
    Email,
    Slack,
}

impl Contact {
    fn noun(self) -> &'static str {
        match self {
            Contact::Email => "email address",
            Contact::Slack => "Slack id",
        }
    }

    /// Emails are compared ignoring case (mailbox providers do), Slack ids
    /// exactly (they are opaque ids such as `U024BE7LH`).
    fn key(self, value: &str) -> String {
        match self {
            Contact::Email => value.trim().to_lowercase(),
            Contact::Slack => value.to_owned(),
        }
    }
}

type RawGroups<'a> = [(&'a Arc<SourceFile>, &'a Spanned<String>, &'a RawGroup)];

/// Reports every member whose email address or Slack id belongs to another
/// member id, and every id whose address or Slack id differs between groups.
pub(super) fn one_person_one_id(l: &mut Loader, groups: &RawGroups<'_>) {
    // By contact key: who has it. By (contact, id): what it is for that id.
    let mut owners: HashMap<(u8, String), Seen<'_>> = HashMap::new();
    let mut of_id: HashMap<(u8, &str), Seen<'_>> = HashMap::new();
    for (file, group, g) in groups {
        for m in &g.members.value {
            let id = m.id.value.as_str();
            if id.trim().is_empty() || id.starts_with('@') {
                continue; // already reported by the group itself
            }
            let contacts = [
                (0u8, Contact::Email, m.email.as_ref()),
                (1u8, Contact::Slack, m.slack.as_ref()),
            ];
            for (tag, contact, value) in contacts {
                let Some(value) = value else { continue };
                let key = contact.key(&value.value);
                let here = || Seen {
                    id,
                    value: value.value.as_str(),
                    at: origin(file, value),
                };
                if let Some(prev) = of_id.get(&(tag, id)) {
                    if contact.key(prev.value) != key {
                        l.err(
                            DiagnosticKind::InvalidValue,
                            file,
                            span_of(file, value),
                            format!(
                                "member `{id}` has {} `{}` in group `{}` but `{}` at {}",
                                contact.noun(),
                                value.value,
                                group.value,
                                prev.value,
                                prev.at
                            ),
                        )
                        .set_label("differs")
                        .set_help(format!(
                            "one id is one person: give `{id}` the same {} in every group",
                            contact.noun()
                        ));
                        continue;
                    }
                } else {
                    of_id.insert((tag, id), here());
                }
                match owners.get(&(tag, key.clone())) {
                    Some(prev) if prev.id != id => {
                        l.err(
                            DiagnosticKind::Duplicate,
                            file,
                            span_of(file, value),
                            format!(
                                "members `{}` and `{id}` share the {} `{}`: one person, one approver id",
                                prev.id,
                                contact.noun(),
                                value.value
                            ),
                        )
                        .set_label("also used by another member")
                        .set_help(format!(
                            "`{}` has it at {}; a person listed under two ids could approve \
                             their own request and count twice towards a quorum, so list them \
                             under one id (the same id may appear in several groups)",
                            prev.id, prev.at
                        ));
                    }
                    Some(_) => {}
                    None => {
                        owners.insert((tag, key), here());
                    }
                }
            }
        }
    }
}
