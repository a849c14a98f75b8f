//! The dashboard over real HTTP: sessions, CSRF and origin checks, what each
//! kind of visitor may see, the approvals inbox's rules, share links and the
//! live stream. (The browser-level walk-through is in `e2e/`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_gate::approvals::tokens::token_hash;
use countersign_gate::clock::Clock;
use countersign_gate::config::WorkspaceConfig;
use countersign_gate::receipts;
use countersign_store::{EventKind, GrantKind, NewGrant, Role};
use serde_json::{Value, json};
use support::{Gate, Key, start};

const POLICY: &str = r#"version: 1
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

const OTHER_POLICY: &str = r#"version: 1
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
struct Visitor<'g> {
    gate: &'g Gate,
    cookies: HashMap<String, String>,
    set_cookie: Vec<String>,
}

struct Page {
    status: u16,
    body: String,
    location: Option<String>,
    headers: reqwest::header::HeaderMap,
}

impl<'g> Visitor<'g> {
    fn new(gate: &'g Gate) -> Self {
        Self {
            gate,
            cookies: HashMap::new(),
            set_cookie: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
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

    async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.gate.base)
        };
        let resp = self
            .gate
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_from(path, form, None).await
    }

    async fn post_from(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.gate.base)
        };
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .gate
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
    async fn answer(&mut self, run: &str, csrf: &str, decision: &str) -> Page {
        self.post(
            &format!("/ui/inbox/default/{run}"),
            &[("csrf", csrf), ("decision", decision)],
        )
        .await
    }

    /// Signs in with an API key through the login form.
    async fn sign_in_with_key(&mut self, key: &Key) -> Page {
        let login = self.get("/ui/login").await;
        let csrf = csrf(&login.body);
        self.post("/ui/login/key", &[("csrf", &csrf), ("key", &key.0)])
            .await
    }

    /// Signs in as an approver through a sign-in link issued for `email`
    /// (the email transport is exercised by the browser tests).
    async fn sign_in_as(&mut self, email: &str) -> Page {
        let token = issue_link(self.gate, email).await;
        let confirm = self.get(&format!("/ui/login/{token}")).await;
        assert_eq!(confirm.status, 200, "{}", confirm.body);
        let csrf = csrf(&confirm.body);
        self.post(&format!("/ui/login/{token}"), &[("csrf", &csrf)])
            .await
    }
}

async fn issue_link(gate: &Gate, email: &str) -> String {
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
fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn attr_values(html: &str, attr: &str) -> Vec<String> {
    html.match_indices(&format!("{attr}=\""))
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

async fn propose(gate: &Gate, agent: &Key, amount: u32, actor: &str) -> String {
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

async fn two_workspaces() -> Gate {
    start(POLICY, |c, dir| {
        let p = dir.join("other-policies");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("policy.yaml"), OTHER_POLICY).unwrap();
        c.workspaces.push(WorkspaceConfig::new("other", p));
    })
    .await
}

#[tokio::test]
async fn pages_need_a_session_and_an_admin_key_signs_in() {
    let gate = two_workspaces().await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    propose(&gate, &agent, 500, "agent-7").await;

    let mut v = Visitor::new(&gate);
    let home = v.get("/ui").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.location.as_deref(), Some("/ui/login"));
    for path in [
        "/ui/w/default",
        "/ui/w/default/runs",
        "/ui/inbox",
        "/ui/w/default/policies",
    ] {
        let p = v.get(path).await;
        assert_eq!(p.status, 401, "{path}");
        assert!(p.body.contains("Please sign in"), "{path}");
    }

    // An agent key is refused, and no session starts.
    let refused = v.sign_in_with_key(&agent).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("agent key"), "{}", refused.body);
    assert!(!v.cookies.contains_key("cs_session"));
    let wrong = v.sign_in_with_key(&Key("csk_00000000_nope".into())).await;
    assert_eq!(wrong.status, 401);

    let ok = v.sign_in_with_key(&admin).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/ui/w/default"));
    let session_cookie = v
        .set_cookie
        .iter()
        .find(|c| c.starts_with("cs_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(
            session_cookie.contains(attr),
            "{session_cookie} lacks {attr}"
        );
    }
    let overview = v.get("/ui/w/default").await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("data-testid=\"stat-runs\">1<"),
        "{}",
        overview.body
    );
    assert!(overview.body.contains("data-testid=\"stat-pending\">1<"));
    let csp = overview.headers["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(overview.headers["cache-control"], "no-store");

    // An admin key sees its own workspace only; another reads as not found.
    let other = v.get("/ui/w/other").await;
    assert_eq!(other.status, 404);
    assert_eq!(v.get("/ui/w/other/runs").await.status, 404);
    assert_eq!(v.get("/ui/w/nope").await.status, 404);

    // Revoking the key ends the session at once.
    let key_id = admin.0.split('_').nth(1).unwrap().to_owned();
    gate.state
        .store
        .revoke_key("default", &key_id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(v.get("/ui/w/default").await.status, 401);
}

#[tokio::test]
async fn forms_need_the_csrf_token_and_our_origin_and_gets_change_nothing() {
    let gate = start(POLICY, |_, _| {}).await;
    let admin = gate.key(Role::Admin).await;
    let mut v = Visitor::new(&gate);
    assert_eq!(v.sign_in_with_key(&admin).await.status, 303);
    let share = v.get("/ui/w/default/share").await;
    let token = csrf(&share.body);
    let form = [("label", "Acme audit"), ("days", "30")];

    // No token, a wrong token, a token from another origin: all refused.
    assert_eq!(v.post("/ui/w/default/share", &form).await.status, 403);
    let mut wrong = form.to_vec();
    wrong.push(("csrf", "A1b2"));
    assert_eq!(v.post("/ui/w/default/share", &wrong).await.status, 403);
    let mut good = form.to_vec();
    good.push(("csrf", &token));
    let cross = v
        .post_from("/ui/w/default/share", &good, Some("https://evil.example"))
        .await;
    assert_eq!(cross.status, 403);
    assert!(
        gate.state
            .store
            .list_grants("default", GrantKind::ShareLink)
            .await
            .unwrap()
            .is_empty(),
        "nothing was created by a refused form"
    );
    // A sign-in form from before the session has its own token: the
    // session's token does not work there, nor the reverse.
    let mut fresh = Visitor::new(&gate);
    let login = fresh.get("/ui/login").await;
    let pre = csrf(&login.body);
    assert_ne!(pre, token);
    assert_eq!(
        fresh
            .post("/ui/login/key", &[("csrf", &token), ("key", &admin.0)])
            .await
            .status,
        403
    );

    let mut reverse = good[..2].to_vec();
    reverse.push(("csrf", &pre));
    assert_eq!(v.post("/ui/w/default/share", &reverse).await.status, 403);
    // Sign-in forms refuse other origins too.
    let cross_login = fresh
        .post_from(
            "/ui/login/key",
            &[("csrf", &pre), ("key", &admin.0)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(cross_login.status, 403);
    assert!(!fresh.cookies.contains_key("cs_session"));

    // The same form with its token and our origin works.
    let origin = gate.base.clone();
    let created = v
        .post_from("/ui/w/default/share", &good, Some(&origin))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);

    // Browsing every page changes nothing in the audit chain.
    let before = gate.state.store.chain_head("default").await.unwrap();
    for path in [
        "/ui",
        "/ui/login",
        "/ui/w/default",
        "/ui/w/default/runs",
        "/ui/w/default/policies",
        "/ui/w/default/share",
        "/ui/inbox",
    ] {
        assert!(v.get(path).await.status < 400, "{path}");
    }
    assert_eq!(
        gate.state.store.chain_head("default").await.unwrap(),
        before
    );

    // Signing out ends the session server-side: the old cookie stops working.
    let stale = v.cookies.clone();
    let out = v.post("/ui/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, 303);
    assert!(!v.cookies.contains_key("cs_session"));
    v.cookies = stale;
    assert_eq!(v.get("/ui/w/default").await.status, 401);
}

#[tokio::test]
async fn sign_in_links_work_once_and_expire_and_approvers_see_only_their_workspaces() {
    let gate = two_workspaces().await;

    // Opening the link (GET) does not use it; confirming does, once.
    let token = issue_link(&gate, "alice@example.com").await;
    let mut v = Visitor::new(&gate);
    let first = v.get(&format!("/ui/login/{token}")).await;
    let again = v.get(&format!("/ui/login/{token}")).await;
    assert_eq!((first.status, again.status), (200, 200));
    assert!(first.body.contains("alice@example.com"));
    let csrf_token = csrf(&again.body);
    let signed = v
        .post(&format!("/ui/login/{token}"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location.as_deref(), Some("/ui/inbox"));
    // Replaying the confirmation, from the same browser or another, fails.
    let replay = v
        .post(&format!("/ui/login/{token}"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(replay.status, 410);
    let mut thief = Visitor::new(&gate);
    let page = thief.get(&format!("/ui/login/{token}")).await;
    assert_eq!(page.status, 410);
    let login = thief.get("/ui/login").await;
    let thief_csrf = csrf(&login.body);
    let stolen = thief
        .post(&format!("/ui/login/{token}"), &[("csrf", &thief_csrf)])
        .await;
    assert_eq!(stolen.status, 410);
    assert!(!thief.cookies.contains_key("cs_session"));

    // Approvers see the workspaces whose policies list them, no others.
    assert_eq!(v.get("/ui/w/default/runs").await.status, 200);
    assert_eq!(v.get("/ui/w/other").await.status, 404);
    let nav = v.get("/ui/inbox").await.body;
    assert!(!nav.contains("/ui/w/other"), "no link to another workspace");
    assert!(
        !nav.contains("Share links"),
        "approvers do not manage share links"
    );
    assert_eq!(v.get("/ui/w/default/share").await.status, 403);

    // An expired link no longer works; a malformed one is simply unknown.
    let late = issue_link(&gate, "bob@example.com").await;
    let mut slow = Visitor::new(&gate);
    let opened = slow.get(&format!("/ui/login/{late}")).await;
    let slow_csrf = csrf(&opened.body);
    gate.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(slow.get(&format!("/ui/login/{late}")).await.status, 410);
    let expired = slow
        .post(&format!("/ui/login/{late}"), &[("csrf", &slow_csrf)])
        .await;
    assert_eq!(expired.status, 410);
    assert!(!slow.cookies.contains_key("cs_session"));
    assert_eq!(slow.get("/ui/login/short").await.status, 404);
}

#[tokio::test]
async fn without_an_email_transport_there_is_no_approver_sign_in() {
    let gate = start(POLICY, |_, _| {}).await;
    let mut v = Visitor::new(&gate);
    let login = v.get("/ui/login").await;
    // Without an email transport the approver form is not offered.
    assert!(!login.body.contains("send-link"));
    let token = csrf(&login.body);
    let no_email = v
        .post(
            "/ui/login/email",
            &[("csrf", &token), ("email", "alice@example.com")],
        )
        .await;
    assert_eq!(no_email.status, 409);
    assert!(no_email.body.contains("not configured"));
}

#[tokio::test]
async fn the_inbox_applies_the_same_rules_as_every_channel() {
    let gate = start(POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    // alice proposed one of them herself.
    let own = propose(&gate, &agent, 900, "alice").await;
    let other = propose(&gate, &agent, 500, "agent-7").await;
    let small = propose(&gate, &agent, 5, "agent-7").await;

    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("Alice@Example.com").await;
    let inbox = alice.get("/ui/inbox").await;
    let items = attr_values(&inbox.body, "data-run-id");
    assert!(items.contains(&own) && items.contains(&other), "{items:?}");
    assert!(!items.contains(&small), "allowed runs wait on nobody");
    assert!(inbox.body.contains("data-testid=\"own-request\""));
    assert_eq!(
        inbox.body.matches("data-testid=\"approve\"").count(),
        1,
        "one approve button: not on her own request"
    );
    // The agent's text is escaped, never markup.
    assert!(
        inbox.body.contains("customer &lt;b&gt;asked&lt;/b&gt;")
            || inbox.body.contains("customer &#60;b&#62;")
    );
    let token = csrf(&inbox.body);

    // Forcing an answer to her own request is refused and records nothing.
    let forced = alice.answer(&own, &token, "approve").await;
    assert_eq!(forced.status, 403, "{}", forced.body);
    assert!(forced.body.contains("your own request"));
    let run = gate.run(&agent, &own).await;
    assert_eq!(run["governance_status"], "pending_approval");
    assert_eq!(run["approvals"], json!([]));

    let answered = alice
        .post(
            &format!("/ui/inbox/default/{other}"),
            &[
                ("csrf", &token),
                ("decision", "approve"),
                ("comment", "ok by me"),
            ],
        )
        .await;
    assert_eq!(answered.status, 303);
    let back = alice.get(answered.location.as_deref().unwrap()).await;
    assert!(back.body.contains("data-testid=\"flash\""));
    assert!(back.body.contains("You approved"));
    assert!(!attr_values(&back.body, "data-run-id").contains(&other));
    let run = gate.run(&agent, &other).await;
    assert_eq!(run["governance_status"], "approved");
    assert_eq!(run["approvals"][0]["approver"], "alice");
    assert_eq!(run["approvals"][0]["channel"], "dashboard");
    assert_eq!(run["approvals"][0]["comment"], "ok by me");

    // An answer after the decision is recorded but changes nothing.
    let mut bob = Visitor::new(&gate);
    bob.sign_in_as("bob@example.com").await;
    let bob_token = csrf(&bob.get("/ui/inbox").await.body);
    let late = bob.answer(&other, &bob_token, "reject").await;
    assert!(late.location.unwrap().contains("answered=decided"));
    assert_eq!(
        gate.run(&agent, &other).await["governance_status"],
        "approved"
    );

    // A non-member cannot answer, even with a valid session and token.
    let mut eve = Visitor::new(&gate);
    eve.sign_in_as("eve@example.com").await;
    let eve_token = csrf(&eve.get("/ui/inbox").await.body);
    assert_eq!(eve.get("/ui/w/default").await.status, 404);
    let refused = eve.answer(&own, &eve_token, "approve").await;
    assert_eq!(refused.status, 404);

    // Admins see what is pending but cannot answer.
    let mut boss = Visitor::new(&gate);
    boss.sign_in_with_key(&admin).await;
    let boss_inbox = boss.get("/ui/inbox").await;
    assert!(attr_values(&boss_inbox.body, "data-run-id").contains(&own));
    assert!(!boss_inbox.body.contains("data-testid=\"approve\""));
    let boss_token = csrf(&boss_inbox.body);
    let tried = boss.answer(&own, &boss_token, "approve").await;
    assert_eq!(tried.status, 403);

    // Once expired, the run leaves the inbox and cannot be answered.
    gate.clock.advance(chrono::Duration::hours(2));
    gate.state.store.expire_due(gate.clock.now()).await.unwrap();
    let later = alice.get("/ui/inbox").await;
    assert!(!attr_values(&later.body, "data-run-id").contains(&own));
}

#[tokio::test]
async fn run_pages_show_the_timeline_and_a_verified_receipt() {
    let gate = start(POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    let id = propose(&gate, &agent, 500, "agent-7").await;
    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("alice@example.com").await;
    let token = csrf(&alice.get("/ui/inbox").await.body);
    alice.answer(&id, &token, "approve").await;
    let (s, _) = gate
        .post_json(
            &format!("/v1/runs/{id}/executed"),
            Some(&agent),
            &json!({"execution_result": {"refund_id": "re_1"}}),
        )
        .await;
    assert_eq!(s, 200);

    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let detail = v.get(&format!("/ui/w/default/runs/{id}")).await;
    assert_eq!(detail.status, 200);
    let timeline = &detail.body[detail.body.find("data-testid=\"timeline\"").unwrap()..];
    for step in [
        "Proposed by agent-7",
        "Policy decided: pending approval",
        "Approval requested from finance",
        "Approved by alice",
        "Execution reported: executed",
    ] {
        assert!(timeline.contains(step), "timeline lacks {step}");
    }
    assert!(detail.body.contains("data-testid=\"chain-ok\""));

    let receipt = v.get(&format!("/ui/w/default/runs/{id}/receipt")).await;
    assert_eq!(receipt.status, 200);
    assert!(receipt.body.contains("signature valid"));
    assert!(receipt.body.contains(&id));
    let json_page = v
        .get(&format!("/ui/w/default/runs/{id}/receipt.json"))
        .await;
    assert!(
        json_page.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let signed: Value = serde_json::from_str(&json_page.body).unwrap();
    receipts::verify(&signed, std::slice::from_ref(gate.state.signer.public())).unwrap();
    assert_eq!(signed["receipt"]["execution_status"], "executed");

    // Tampering with the audit log shows on the run's page.
    let db = gate.dir.path().join("data/countersign.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update; UPDATE events SET data = replace(data, 'agent-7', 'agent-8') WHERE kind = 'run_proposed';",
    )
    .unwrap();
    let tampered = v.get(&format!("/ui/w/default/runs/{id}")).await;
    assert!(tampered.body.contains("data-testid=\"chain-broken\""));
    assert!(tampered.body.contains("hash mismatch"));

    let policies = v.get("/ui/w/default/policies").await;
    assert!(
        policies.body.contains("big-refund") && policies.body.contains("payload.amount &#62; 100")
    );
    assert!(
        policies
            .body
            .contains(gate.state.workspaces["default"].policies().version())
    );
}

#[tokio::test]
async fn share_links_show_history_and_receipts_only_until_revoked() {
    let gate = two_workspaces().await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    let id = propose(&gate, &agent, 500, "agent-7").await;
    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let token = csrf(&v.get("/ui/w/default/share").await.body);
    for (days, label) in [("0", "x"), ("400", "x"), ("30", "")] {
        let bad = v
            .post(
                "/ui/w/default/share",
                &[("csrf", &token), ("label", label), ("days", days)],
            )
            .await;
        assert_eq!(bad.status, 422, "days {days} label {label:?}");
    }
    let created = v
        .post(
            "/ui/w/default/share",
            &[("csrf", &token), ("label", "Acme <audit>"), ("days", "7")],
        )
        .await;
    assert_eq!(created.status, 201);
    let url = {
        let at = created.body.find("data-testid=\"share-url\">").unwrap();
        let rest = &created.body[at + "data-testid=\"share-url\">".len()..];
        rest[..rest.find('<').unwrap()].to_owned()
    };
    assert!(url.starts_with(&format!("{}/ui/s/", gate.base)));
    assert!(
        created.body.contains("Acme &lt;audit&gt;")
            || created.body.contains("Acme &#60;audit&#62;")
    );
    let events = gate.state.store.events("default", 0, 0).await.unwrap();
    let created_event = events
        .iter()
        .find(|e| e.kind == EventKind::ShareLinkCreated)
        .expect("share link creation is audited");
    let grant_id = created_event.data["grant_id"].as_str().unwrap().to_owned();
    assert!(
        !created_event
            .data
            .to_string()
            .contains(url.rsplit('/').next().unwrap()),
        "the token is never logged"
    );

    // A client without any cookie: history and receipts, nothing else.
    let mut client = Visitor::new(&gate);
    let history = client.get(&url).await;
    assert_eq!(history.status, 200);
    assert!(attr_values(&history.body, "data-run-id").contains(&id));
    assert!(!history.body.contains("data-testid=\"approve\""));
    assert!(
        !history.body.contains("/ui/w/default"),
        "no links into the dashboard"
    );
    assert_eq!(history.headers["referrer-policy"], "same-origin");
    let receipt = client.get(&format!("{url}/runs/{id}/receipt")).await;
    assert_eq!(receipt.status, 200);
    assert!(receipt.body.contains("signature valid"));
    let json_receipt = client.get(&format!("{url}/runs/{id}/receipt.json")).await;
    assert_eq!(json_receipt.status, 200);
    assert_eq!(client.get("/ui/w/default/runs").await.status, 401);
    assert_eq!(
        client
            .get(&format!("{url}/runs/run_nope/receipt"))
            .await
            .status,
        404
    );
    // A run of another workspace is not reachable through this link.
    let other_agent = gate.key_in("other", Role::Agent).await;
    let (s, other_run) = gate
        .post_json(
            "/v1/intercept",
            Some(&other_agent),
            &json!({"action": "restart", "payload": {"host": "db1"}}),
        )
        .await;
    assert_eq!(s, 201, "{other_run}");
    let other_id = other_run["run_id"].as_str().unwrap();
    assert_eq!(
        client
            .get(&format!("{url}/runs/{other_id}/receipt"))
            .await
            .status,
        404
    );
    assert_eq!(
        client
            .get(&format!("{url}/runs/{other_id}/receipt.json"))
            .await
            .status,
        404
    );
    // The share token is no session, and cannot be spent as a sign-in link.
    let share_token = url.rsplit('/').next().unwrap().to_owned();
    let mut forger = Visitor::new(&gate);
    forger
        .cookies
        .insert("cs_session".into(), share_token.clone());
    assert_eq!(forger.get("/ui/w/default").await.status, 401);
    forger.cookies.clear();
    let login = forger.get("/ui/login").await;
    let forger_csrf = csrf(&login.body);
    let spent = forger
        .post(
            &format!("/ui/login/{share_token}"),
            &[("csrf", &forger_csrf)],
        )
        .await;
    assert_eq!(spent.status, 404);
    assert_eq!(client.get(&url).await.status, 200, "the link still works");

    // Another workspace's admin cannot revoke it.
    let other_key = gate.key_in("other", Role::Admin).await;
    let mut stranger = Visitor::new(&gate);
    stranger.sign_in_with_key(&other_key).await;
    let stranger_token = csrf(&stranger.get("/ui/w/other/share").await.body);
    let denied = stranger
        .post(
            &format!("/ui/w/other/share/{grant_id}/revoke"),
            &[("csrf", &stranger_token)],
        )
        .await;
    assert_eq!(denied.status, 404);
    assert_eq!(client.get(&url).await.status, 200);

    let revoked = v
        .post(
            &format!("/ui/w/default/share/{grant_id}/revoke"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(revoked.status, 303);
    let gone = client.get(&url).await;
    assert_eq!(gone.status, 410);
    assert!(!gone.body.contains(&id));
    assert_eq!(
        client.get(&format!("{url}/runs/{id}/receipt")).await.status,
        410
    );
    let kinds: Vec<EventKind> = gate
        .state
        .store
        .events("default", 0, 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&EventKind::ShareLinkRevoked));
    gate.state.store.verify_chain("default").await.unwrap();
    let listed = v.get("/ui/w/default/share").await.body;
    assert!(listed.contains(">revoked<"));

    // Expiry ends a link too.
    let second = v
        .post(
            "/ui/w/default/share",
            &[("csrf", &token), ("label", "short"), ("days", "1")],
        )
        .await;
    let at = second.body.find("data-testid=\"share-url\">").unwrap();
    let rest = &second.body[at + "data-testid=\"share-url\">".len()..];
    let url2 = rest[..rest.find('<').unwrap()].to_owned();
    assert_eq!(client.get(&url2).await.status, 200);
    gate.clock.advance(chrono::Duration::days(2));
    assert_eq!(client.get(&url2).await.status, 410);
    assert_eq!(
        client
            .get("/ui/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_live_stream_reports_new_and_changed_runs() {
    let gate = start(POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let runs = v.get("/ui/w/default/runs").await;
    let live = attr_values(&runs.body, "data-live")[0].replace("&amp;", "&");
    assert!(live.starts_with("/ui/w/default/live?after="));

    let mut stream = gate
        .http
        .get(format!("{}{live}", gate.base))
        .header("cookie", v.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let id = propose(&gate, &agent, 500, "agent-7").await;
    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("alice@example.com").await;
    let token = csrf(&alice.get("/ui/inbox").await.body);
    alice.answer(&id, &token, "approve").await;

    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\"governance_status\":\"approved\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the approval reaches the stream within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: run"));
    assert!(text.contains(&format!("\"run_id\":\"{id}\"")));
    assert!(text.contains("\"is_new\":true"), "{text}");

    // Without a session there is no stream.
    let anon = gate
        .http
        .get(format!("{}{live}", gate.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
}

#[tokio::test]
async fn the_policies_page_shows_a_failed_reload_with_its_diagnostics() {
    let gate = start(POLICY, |_, _| {}).await;
    let admin = gate.key(Role::Admin).await;
    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let before = v.get("/ui/w/default/policies").await;
    assert!(!before.body.contains("data-testid=\"reload-error\""));

    let file = gate.dir.path().join("policies/policy.yaml");
    std::fs::write(&file, POLICY.replace("decision: allow", "decision: alow")).unwrap();
    let (status, _) = gate
        .post_json("/v1/policies/reload", Some(&admin), &json!({}))
        .await;
    assert_eq!(status, 422);
    let after = v.get("/ui/w/default/policies").await;
    assert!(after.body.contains("data-testid=\"reload-error\""));
    assert!(
        after.body.contains("policy.yaml:"),
        "the diagnostic names the file"
    );
    assert!(after.body.contains("alow"));
    // The old set stays in force and is still listed.
    assert!(after.body.contains("small-refund"));
    let overview = v.get("/ui/w/default").await;
    assert!(overview.body.contains("The last policy reload failed"));
}

#[tokio::test]
async fn the_sign_in_form_emails_approvers_only_and_answers_the_same_for_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = support::smtp_server(dir.path());
    let email = smtp.email_config();
    let gate = start(POLICY, |c, _| c.email = Some(email)).await;
    let mut v = Visitor::new(&gate);
    let login = v.get("/ui/login").await;
    assert!(login.body.contains("data-testid=\"send-link\""));
    let token = csrf(&login.body);
    let known = v
        .post(
            "/ui/login/email",
            &[("csrf", &token), ("email", " BOB@example.com ")],
        )
        .await;
    let unknown = v
        .post(
            "/ui/login/email",
            &[("csrf", &token), ("email", "mallory@example.com")],
        )
        .await;
    assert_eq!((known.status, unknown.status), (200, 200));
    assert_eq!(
        known.body, unknown.body,
        "the page says nothing about the address"
    );
    assert!(known.body.contains("data-testid=\"link-sent\""));
    let bad = v
        .post(
            "/ui/login/email",
            &[("csrf", &token), ("email", "not an address")],
        )
        .await;
    assert_eq!(bad.status, 422);

    // Only the approver gets a mail, with a working one-time link.
    let mut found = Vec::new();
    for _ in 0..100 {
        found = support::mails(&smtp.maildir);
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = support::mails(&smtp.maildir);
    assert_eq!(all.len(), 1, "one mail, for the known address only");
    let mail = &found[0];
    assert!(mail.contains("Subject: Sign in to Countersign"));
    assert!(
        mail.to_lowercase().contains("to: bob@example.com"),
        "{mail}"
    );
    assert!(!mail.contains("mallory"));
    let start_at = mail.find(&format!("{}/ui/login/", gate.base)).unwrap();
    let link: String = mail[start_at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let mut bob = Visitor::new(&gate);
    let confirm = bob.get(&link).await;
    assert!(confirm.body.contains("bob@example.com"));
    let c = csrf(&confirm.body);
    let signed = bob.post(&link, &[("csrf", &c)]).await;
    assert_eq!(signed.status, 303);
    assert_eq!(bob.get("/ui/inbox").await.status, 200);

    // A stranger asking again and again stops getting mails sent to bob.
    for _ in 0..5 {
        v.post(
            "/ui/login/email",
            &[("csrf", &token), ("email", "bob@example.com")],
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        support::mails(&smtp.maildir).len(),
        3,
        "at most 3 links per address for one client in 15 minutes"
    );
    // And the client itself is cut off after 10 requests.
    let mut last = 0;
    for _ in 0..5 {
        last = v
            .post(
                "/ui/login/email",
                &[("csrf", &token), ("email", "x@example.com")],
            )
            .await
            .status;
    }
    assert_eq!(last, 429);
}

const QUORUM_POLICY: &str = r#"version: 1
approvers:
  controllers:
    members:
      - { id: alice, email: alice@example.com }
      - { id: alice-backup, email: alice@example.com }
      - { id: bob, email: bob@example.com }
    quorum: 2
    timeout: 1h
actions:
  mark_paid:
    approvers: controllers
    rules:
      - name: four-eyes
        decision: require_approval
"#;

#[tokio::test]
async fn dashboard_answers_count_once_respect_quorum_expiry_and_aliases() {
    let gate = start(QUORUM_POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let new_run = |actor: &str, note: &str| json!({"action": "mark_paid", "payload": {"invoice": note, "actor": actor}});
    let (_, r) = gate
        .post_json(
            "/v1/intercept",
            Some(&agent),
            &new_run("agent-7", "INV-1 \u{202E}0001"),
        )
        .await;
    let id = r["run_id"].as_str().unwrap().to_owned();
    let (_, r) = gate
        .post_json(
            "/v1/intercept",
            Some(&agent),
            &new_run("alice-backup", "INV-2"),
        )
        .await;
    let alias_own = r["run_id"].as_str().unwrap().to_owned();

    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("alice@example.com").await;
    let inbox = alice.get("/ui/inbox").await;
    // A right-to-left override in the payload is shown, not obeyed.
    assert!(inbox.body.contains("[U+202E]"), "{}", inbox.body);
    assert!(!inbox.body.contains('\u{202E}'));
    let token = csrf(&inbox.body);

    // Proposed under her other id: still her own request.
    let own = alice.answer(&alias_own, &token, "approve").await;
    assert_eq!(own.status, 403);
    assert_eq!(gate.run(&agent, &alias_own).await["approvals"], json!([]));

    let first = alice.answer(&id, &token, "approve").await;
    assert!(
        first
            .location
            .unwrap()
            .contains("answered=approved_waiting")
    );
    assert_eq!(
        gate.run(&agent, &id).await["governance_status"],
        "pending_approval"
    );
    // Answering again records nothing: one answer per approver.
    for decision in ["approve", "reject"] {
        let again = alice.answer(&id, &token, decision).await;
        assert!(again.location.unwrap().contains("answered=duplicate"));
    }
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(
        run["governance_status"], "pending_approval",
        "one person, one vote"
    );

    let mut bob = Visitor::new(&gate);
    bob.sign_in_as("bob@example.com").await;
    let bob_token = csrf(&bob.get("/ui/inbox").await.body);
    let second = bob.answer(&id, &bob_token, "approve").await;
    assert!(second.location.unwrap().contains("answered=approved&"));
    assert_eq!(gate.run(&agent, &id).await["governance_status"], "approved");

    // Past its expiry a run cannot be answered, even before the sweep.
    let (_, r) = gate
        .post_json("/v1/intercept", Some(&agent), &new_run("agent-7", "INV-3"))
        .await;
    let late = r["run_id"].as_str().unwrap().to_owned();
    gate.clock.advance(chrono::Duration::minutes(61));
    let after = bob.answer(&late, &bob_token, "approve").await;
    assert!(after.location.unwrap().contains("answered=decided"));
    assert_eq!(gate.run(&agent, &late).await["approvals"], json!([]));
}
