//! Where approval links may be sent that the policy files name: the
//! operator's allow-list for members' own Teams Workflows URLs.
//!
//! A member's `teams:` URL comes from a policy file, which a policy author
//! may write without running the gate; links sent there approve live
//! requests. So the gate sends links only to URLs its own configuration
//! allows, and refuses a policy set naming any other at load and reload
//! (the previous set stays in force). Webhook and workspace Teams URLs are
//! written in the configuration itself and need no allow-list.

use url::Url;

/// The `teams:` section of the configuration: which member Teams URLs may
/// receive approval links. Empty (the default) allows none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkDestinations {
    /// Hosts whose URLs are allowed, lower case; `*.example.com` allows
    /// every subdomain of `example.com` (not `example.com` itself).
    pub allowed_hosts: Vec<String>,
    /// Whole URLs allowed, compared exactly.
    pub allowed_urls: Vec<String>,
}

/// Whether `host` is a loopback name or address.
fn loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    }
}

impl LinkDestinations {
    /// Why approval links may not be sent to `url`, or `Ok`: it must be
    /// `https` (plain `http` only to a loopback address), carry no user
    /// info, and be allowed by [`Self::allowed_urls`] or
    /// [`Self::allowed_hosts`].
    pub fn check(&self, url: &str) -> Result<(), String> {
        let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let host = parsed
            .host()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if loopback(&host) => {}
            "http" => {
                return Err(format!(
                    "`{url}` is plain http: approval links go over https (http only to a loopback address)"
                ));
            }
            other => return Err(format!("`{url}` has scheme `{other}`, not https")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("`{url}` carries user info"));
        }
        if self.allowed_urls.iter().any(|u| u == url) {
            return Ok(());
        }
        let name = host.to_string().to_ascii_lowercase();
        let host_allowed = self.allowed_hosts.iter().any(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix("*.") {
                Some(suffix) => name
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                None => name == h,
            }
        });
        if host_allowed {
            Ok(())
        } else {
            Err(format!(
                "`{url}` is not allowed by this gate's `teams.allowed_hosts` or `teams.allowed_urls`"
            ))
        }
    }

    /// Every member Teams URL of `set` that [`Self::check`] refuses, as
    /// policy diagnostics naming the member and the URL (pointing at the
    /// URL in its file when it can be found there).
    pub fn check_policies(
        &self,
        set: &countersign_engine::PolicySet,
    ) -> Result<(), countersign_engine::PolicyError> {
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for group in set.groups() {
            for m in &group.members {
                let Some(url) = m.teams.as_deref() else {
                    continue;
                };
                let Err(why) = self.check(url) else {
                    continue;
                };
                if !seen.insert((group.name.clone(), m.id.clone(), url.to_owned())) {
                    continue;
                }
                let message = format!(
                    "member `{}` of approver group `{}`: Teams URL {why}",
                    m.id, group.name
                );
                let help = "approval links go only where the gate's operators allow: add the \
                            host to `teams.allowed_hosts` (or the URL to `teams.allowed_urls`) \
                            in the gate's configuration, or remove `teams:` from the member";
                problems.push(locate(set, url).map_or_else(
                    || countersign_engine::PolicyDiagnostic::rejected(message.clone(), help),
                    |(path, text, span)| {
                        countersign_engine::PolicyDiagnostic::rejected_at(
                            path,
                            text,
                            span,
                            message.clone(),
                            help,
                        )
                    },
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(countersign_engine::PolicyError::from_diagnostics(problems))
        }
    }
}

/// The first policy file of `set` whose text holds `url`, and where.
fn locate(
    set: &countersign_engine::PolicySet,
    url: &str,
) -> Option<(std::path::PathBuf, String, (usize, usize))> {
    set.files().iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let at = text.find(url)?;
        Some((path.clone(), text, (at, at + url.len())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_https_urls_and_loopback_http() {
        let d = LinkDestinations {
            allowed_hosts: vec!["prod.logic.azure.com".into(), "*.example.org".into()],
            allowed_urls: vec!["https://flows.example.net/hook/1".into()],
        };
        for ok in [
            "https://prod.logic.azure.com/workflows/1",
            "https://PROD.logic.azure.com/x",
            "https://a.example.org/x",
            "https://flows.example.net/hook/1",
        ] {
            assert_eq!(d.check(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://evil.example.com/x",
            "https://example.org/x",
            "https://aexample.org/x",
            "https://flows.example.net/hook/2",
            "http://prod.logic.azure.com/x",
            "https://user:pw@prod.logic.azure.com/x",
            "ftp://prod.logic.azure.com/x",
            "not a url",
        ] {
            assert!(d.check(bad).is_err(), "{bad}");
        }
        let local = LinkDestinations {
            allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
            allowed_urls: Vec::new(),
        };
        assert_eq!(local.check("http://127.0.0.1:9000/hook"), Ok(()));
        assert_eq!(local.check("http://localhost:9000/hook"), Ok(()));
        assert!(
            LinkDestinations::default()
                .check("https://prod.logic.azure.com/x")
                .is_err(),
            "nothing is allowed by default"
        );
    }
}
