//! Dashboard sessions, CSRF tokens and who may see which workspace.
//!
//! A session is an access grant whose random token lives only in an
//! HttpOnly, SameSite=Strict cookie; the store keeps its SHA-256. Forms carry
//! a CSRF token derived (HMAC) from the session token, or, before sign-in,
//! from a random pre-session cookie, and checked in constant time. POSTs
//! whose `Origin` names another host are refused as well.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_store::{Grant, GrantKind, NewGrant, Role};
use subtle::ConstantTimeEq;

use super::render::UiError;
use super::view::{Chrome, NavLink, Tab};
use crate::approvals::tokens::{token_hash, well_formed};
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "cs_session";
/// The pre-session cookie that anchors sign-in forms' CSRF tokens.
pub const PRE_COOKIE: &str = "cs_pre";
/// How long a session lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);
/// Subject prefix of admin sessions.
const ADMIN: &str = "admin:";
/// Subject prefix of approver sessions.
const APPROVER: &str = "approver:";

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// Signed in with an admin key of one workspace.
    Admin {
        /// The key's workspace.
        workspace: String,
        /// The key's id.
        key_id: String,
    },
    /// Signed in by an emailed link.
    Approver {
        /// The address the link went to (lower case).
        email: String,
    },
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub viewer: Viewer,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    /// The session grant's id (for sign-out).
    pub grant_id: String,
    /// The admin key's label, shown in the header (admin sessions).
    pub label: Option<String>,
}

/// A fresh random token: 32 bytes, URL-safe base64 (43 characters).
pub fn new_token() -> Result<String, UiError> {
    let mut bytes = [0u8; 32];
    crate::keys::random_bytes(&mut bytes).map_err(|e| {
        UiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            e,
        )
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The value of cookie `name`, if the request has a well-formed one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| well_formed(v))
}

/// A `Set-Cookie` value for `/ui`, HttpOnly and SameSite=Strict; `Secure`
/// when the gate's public URL is HTTPS. `max_age` 0 deletes the cookie.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text =
        format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds a `Set-Cookie` header.
pub fn add_cookie(response: &mut Response, value: HeaderValue) {
    response.headers_mut().append(header::SET_COOKIE, value);
}

/// Constant-time check of a submitted CSRF token.
pub fn csrf_matches(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(s) if !expected.is_empty() && s.len() == expected.len() => {
            bool::from(expected.as_bytes().ct_eq(s.as_bytes()))
        }
        _ => false,
    }
}

/// Refuses a POST whose `Origin` is another site: it must name the host
/// the request was sent to, or the gate's `public_url` (behind a proxy that
/// rewrites `Host`). Browsers send `Origin` on form posts; its absence (old
/// clients, tests) falls back to the CSRF token alone.
pub fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), UiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host));
    let public = public_url.trim_end_matches('/');
    let same_public = public.split_once("://").is_some_and(|(scheme, rest)| {
        let authority = rest.split('/').next().unwrap_or("");
        origin.eq_ignore_ascii_case(&format!("{scheme}://{authority}"))
    });
    if same_host || same_public {
        Ok(())
    } else {
        Err(UiError::forged())
    }
}

/// The CSRF token of sign-in forms, anchored to the pre-session cookie.
pub fn pre_csrf(state: &AppState, pre: &str) -> String {
    state.token_secret.mac("ui pre-session csrf", pre)
}

/// The session of this request, if it has a live one.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, UiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(grant) = state.store.find_grant(&token_hash(&token)).await? else {
        return Ok(None);
    };
    if grant.kind != GrantKind::Session || !grant.is_live(state.clock.now()) {
        return Ok(None);
    }
    let mut label = None;
    let viewer = if let Some(email) = grant.subject.strip_prefix(APPROVER) {
        Viewer::Approver {
            email: email.to_owned(),
        }
    } else if let Some(key_id) = grant.subject.strip_prefix(ADMIN) {
        let Some(workspace) = grant.workspace.clone() else {
            return Ok(None);
        };
        // An admin session lives only as long as its key.
        let keys = state.store.list_keys(&workspace).await?;
        let Some(key) = keys
            .iter()
            .find(|k| k.key_id == key_id && k.role == Role::Admin && k.revoked_at.is_none())
        else {
            return Ok(None);
        };
        label = key
            .label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(super::view::reveal);
        Viewer::Admin {
            workspace,
            key_id: key_id.to_owned(),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(Session {
        viewer,
        csrf: state.token_secret.mac("ui session csrf", &token),
        grant_id: grant.grant_id,
        label,
    }))
}

/// The session, or a 401 page that offers to sign in.
pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<Session, UiError> {
    current(state, headers).await?.ok_or_else(|| {
        UiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "Please sign in",
            "Your session has ended or you have not signed in yet.",
        )
    })
}

/// The session, and workspace `ws` if it may see it (401 or 404 otherwise).
pub async fn require_in(
    state: &AppState,
    headers: &HeaderMap,
    ws: &str,
) -> Result<(Session, std::sync::Arc<crate::workspace::Workspace>), UiError> {
    let s = require(state, headers).await?;
    let workspace = s.workspace(state, ws)?;
    Ok((s, workspace))
}

/// Starts a session for `viewer`; returns the cookie to set.
pub async fn start(state: &AppState, viewer: &Viewer) -> Result<HeaderValue, UiError> {
    let token = new_token()?;
    let now = state.clock.now();
    let (subject, workspace) = match viewer {
        Viewer::Admin { workspace, key_id } => {
            (format!("{ADMIN}{key_id}"), Some(workspace.clone()))
        }
        Viewer::Approver { email } => (format!("{APPROVER}{email}"), None),
    };
    let grant = NewGrant {
        grant_id: format!("ses_{}", uuid::Uuid::now_v7().simple()),
        kind: GrantKind::Session,
        token_hash: token_hash(&token),
        workspace,
        subject,
        label: None,
        expires_at: now + SESSION_TTL,
    };
    let _: Grant = state.store.create_grant(grant, now).await?;
    Ok(set_cookie(
        state,
        SESSION_COOKIE,
        &token,
        SESSION_TTL.num_seconds(),
    ))
}

impl Session {
    /// Checks a form's CSRF token and origin.
    pub fn check_form(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        submitted: Option<&str>,
    ) -> Result<(), UiError> {
        check_origin(headers, &state.config.public_url)?;
        if csrf_matches(&self.csrf, submitted) {
            Ok(())
        } else {
            Err(UiError::forged())
        }
    }

    /// Whether this viewer signed in with an admin key.
    pub fn is_admin(&self) -> bool {
        matches!(self.viewer, Viewer::Admin { .. })
    }

    /// The approver's address, for approver sessions.
    pub fn email(&self) -> Option<&str> {
        match &self.viewer {
            Viewer::Approver { email } => Some(email),
            Viewer::Admin { .. } => None,
        }
    }

    /// Workspaces this viewer may see, sorted.
    pub fn workspaces(&self, state: &AppState) -> Vec<String> {
        match &self.viewer {
            Viewer::Admin { workspace, .. } => vec![workspace.clone()],
            Viewer::Approver { email } => state
                .workspaces
                .iter()
                .filter(|(_, ws)| lists_email(ws, email))
                .map(|(name, _)| name.clone())
                .collect(),
        }
    }

    /// The workspace `ws` if this viewer may see it; 404 otherwise (never
    /// revealing that another workspace exists).
    pub fn workspace(
        &self,
        state: &AppState,
        ws: &str,
    ) -> Result<std::sync::Arc<crate::workspace::Workspace>, UiError> {
        let visible = match &self.viewer {
            Viewer::Admin { workspace, .. } => workspace == ws,
            Viewer::Approver { email } => state
                .workspaces
                .get(ws)
                .is_some_and(|w| lists_email(w, email)),
        };
        state
            .workspaces
            .get(ws)
            .filter(|_| visible)
            .cloned()
            .ok_or_else(|| UiError::not_found("This workspace"))
    }

    /// Refuses non-admins.
    pub fn require_admin(&self) -> Result<(), UiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(UiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "Admins only",
                "Sign in with an admin key of this workspace to manage it.",
            ))
        }
    }

    /// The page frame for this viewer, in workspace `ws` on tab `tab`.
    pub fn chrome(&self, state: &AppState, title: &str, ws: Option<&str>, tab: Tab) -> Chrome {
        let mut nav = Vec::new();
        if let Some(ws) = ws {
            let base = format!("/ui/w/{ws}");
            nav.push(NavLink {
                href: base.clone(),
                label: "Overview",
                active: tab == Tab::Overview,
            });
            nav.push(NavLink {
                href: format!("{base}/runs"),
                label: "Runs",
                active: tab == Tab::Runs,
            });
        }
        nav.push(NavLink {
            href: "/ui/inbox".to_owned(),
            label: "Approvals",
            active: tab == Tab::Inbox,
        });
        if let Some(ws) = ws {
            nav.push(NavLink {
                href: format!("/ui/w/{ws}/policies"),
                label: "Policies",
                active: tab == Tab::Policies,
            });
            if self.is_admin() {
                nav.push(NavLink {
                    href: format!("/ui/w/{ws}/share"),
                    label: "Share links",
                    active: tab == Tab::Share,
                });
            }
        }
        let who = match &self.viewer {
            Viewer::Admin { key_id, .. } => match &self.label {
                Some(label) => format!("{label} (admin)"),
                None => format!("admin key {key_id}"),
            },
            Viewer::Approver { email } => email.clone(),
        };
        Chrome {
            title: title.to_owned(),
            nav,
            who: Some(who),
            csrf: self.csrf.clone(),
            workspace: ws.map(str::to_owned),
            other_workspaces: self
                .workspaces(state)
                .into_iter()
                .filter(|w| Some(w.as_str()) != ws)
                .collect(),
            shared: false,
        }
    }
}

/// Whether a workspace's policies list `email` as an approver.
pub fn lists_email(ws: &crate::workspace::Workspace, email: &str) -> bool {
    ws.policies().groups().iter().any(|g| {
        g.members.iter().any(|m| {
            m.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_comparison_needs_an_exact_match() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", Some("ab")));
        assert!(!csrf_matches("abc", None));
        assert!(
            !csrf_matches("", Some("")),
            "an empty expected token never matches"
        );
    }

    #[test]
    fn cookies_are_found_by_name_and_shape() {
        let token = "A".repeat(43);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; cs_session={token}; cs_pre=short"))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some(token));
        assert_eq!(cookie(&h, PRE_COOKIE), None, "malformed values are ignored");
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn cross_site_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            check_origin(&h, "http://127.0.0.1:8080").is_ok(),
            "no Origin: left to the CSRF token"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(check_origin(&h, "https://gate.example").is_ok());
        h.insert(header::HOST, HeaderValue::from_static("10.0.0.5:8080"));
        assert!(
            check_origin(&h, "https://gate.example").is_err(),
            "behind a proxy: not the public URL"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://gate.example"),
        );
        assert!(check_origin(&h, "https://gate.example/base/").is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(check_origin(&h, "https://gate.example").is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_origin(&h, "https://gate.example").is_err());
    }
}
