//! What the dashboard tests share: policies with approvers, sign-in links,
//! CSRF tokens read from pages, and proposing runs.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_gate::approvals::tokens::token_hash;
use countersign_gate::clock::Clock;
use countersign_gate::config::WorkspaceConfig;
use countersign_store::{GrantKind, NewGrant};
use serde_json::json;

use super::{Gate, Key, start};

pub const POLICY: &str = r#"version: 1
approvers:
  finance:
    members:
      - { id: alice, name: Alice Ng, email: alice@example.com }
      - { id: bob, email: Bob@Example.com }
    quorum: 1
    timeout: 1h
actions:
  issue_refund:
    risk: high
    approvers: finance
    rules:
      - name: big-refund
        when: payload.amount > 100
        decision: require_approval
        reason: Refunds over 100 need finance
      - name: small-refund
        decision: allow
        reason: Small refunds are routine
"#;

pub const OTHER_POLICY: &str = r#"version: 1
approvers:
  ops:
    members:
      - { id: olga, email: olga@example.com }
actions:
  restart:
    approvers: ops
    rules:
      - name: always
        decision: require_approval
"#;

/// A visitor with its own cookies (HttpOnly cookies are just cookies to us).
pub struct Visitor<'g> {
    pub gate: &'g Gate,
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    pub set_cookie: Vec<String>,
}

pub struct Page {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl<'g> Visitor<'g> {
    pub fn new(gate: &'g Gate) -> Self {
        Self {
            gate,
            http: gate.http.clone(),
            cookies: HashMap::new(),
            set_cookie: Vec::new(),
        }
    }

    /// A visitor connecting from its own loopback address (`127.0.0.x`),
    /// so the gate sees a distinct client.
    pub fn from_source(gate: &'g Gate, source: std::net::Ipv4Addr) -> Self {
        let mut v = Self::new(gate);
        v.http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::V4(source))
            .build()
            .unwrap();
        v
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn finish(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for v in headers.get_all("set-cookie") {
            let text = v.to_str().unwrap().to_owned();
            let pair = text.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
            self.set_cookie.push(text);
        }
        let location = headers
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        Page {
            status,
            body: resp.text().await.unwrap(),
            location,
            headers,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.gate.base)
        };
        let resp = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_from(path, form, None).await
    }

    pub async fn post_from(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.gate.base)
        };
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// Answers a run of the default workspace from the inbox.
    pub async fn answer(&mut self, run: &str, csrf: &str, decision: &str) -> Page {
        self.post(
            &format!("/ui/inbox/default/{run}"),
            &[("csrf", csrf), ("decision", decision)],
        )
        .await
    }

    /// Signs in with an API key through the login form.
    pub async fn sign_in_with_key(&mut self, key: &Key) -> Page {
        let login = self.get("/ui/login").await;
        let csrf = csrf(&login.body);
        self.post("/ui/login/key", &[("csrf", &csrf), ("key", &key.0)])
            .await
    }

    /// Signs in as an approver through a sign-in link issued for `email`
    /// (the email transport is exercised by the browser tests).
    pub async fn sign_in_as(&mut self, email: &str) -> Page {
        let token = issue_link(self.gate, email).await;
        let confirm = self.get(&format!("/ui/login/{token}")).await;
        assert_eq!(confirm.status, 200, "{}", confirm.body);
        let csrf = csrf(&confirm.body);
        self.post(&format!("/ui/login/{token}"), &[("csrf", &csrf)])
            .await
    }
}

pub async fn issue_link(gate: &Gate, email: &str) -> String {
    let mut bytes = [0u8; 32];
    countersign_gate::keys::random_bytes(&mut bytes).unwrap();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = gate.clock.now();
    gate.state
        .store
        .create_grant(
            NewGrant {
                grant_id: format!("sig_{}", &token[..12]),
                kind: GrantKind::SignIn,
                token_hash: token_hash(&token),
                workspace: None,
                subject: email.to_owned(),
                label: None,
                expires_at: now + chrono::Duration::minutes(15),
            },
            now,
        )
        .await
        .unwrap();
    token
}

/// The first CSRF token of a page's forms.
pub fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

pub fn attr_values(html: &str, attr: &str) -> Vec<String> {
    html.match_indices(&format!("{attr}=\""))
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

pub async fn propose(gate: &Gate, agent: &Key, amount: u32, actor: &str) -> String {
    let (status, run) = gate
        .post_json(
            "/v1/intercept",
            Some(agent),
            &json!({"action": "issue_refund", "payload": {"amount": amount, "actor": actor, "reasoning": "customer <b>asked</b>"}}),
        )
        .await;
    assert!(status == 201 || status == 200, "{run}");
    run["run_id"].as_str().unwrap().to_owned()
}

pub async fn two_workspaces() -> Gate {
    start(POLICY, |c, dir| {
        let p = dir.join("other-policies");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("policy.yaml"), OTHER_POLICY).unwrap();
        c.workspaces.push(WorkspaceConfig::new("other", p));
    })
    .await
}
