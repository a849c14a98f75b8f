//! The dashboard over real HTTP: sessions, sign-in by key and by emailed
//! link, CSRF and origin checks, and what each kind of visitor may see.
//! (The browser-level walk-through is in `e2e/`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::time::Duration;

use countersign_gate::ratelimit::SignInLimiter;
use countersign_store::{GrantKind, Role};

use crate::support::ui::{POLICY, Visitor, csrf, issue_link, propose, two_workspaces};
use crate::support::{Key, start};

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
        // A signed-out visitor is sent to sign in, and back afterwards.
        let p = v.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(
            p.location.as_deref(),
            Some(format!("/ui/login?next={next}").as_str()),
            "{path}"
        );
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
    assert_eq!(v.get("/ui/w/default").await.status, 303);
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
    assert_eq!(v.get("/ui/w/default").await.status, 303);
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
async fn the_sign_in_form_emails_approvers_only_and_answers_the_same_for_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = crate::support::smtp_server(dir.path());
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
        found = crate::support::mails(&smtp.maildir);
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = crate::support::mails(&smtp.maildir);
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
        crate::support::mails(&smtp.maildir).len(),
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

/// Regression: four source addresses asking three times each used up the
/// ten sign-in links of bob's address, and bob's own request got nothing.
#[tokio::test]
async fn strangers_asking_for_an_address_cannot_lock_its_owner_out() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = crate::support::smtp_server(dir.path());
    let email = smtp.email_config();
    let gate = start(POLICY, |c, _| c.email = Some(email)).await;
    let ask = |source: std::net::Ipv4Addr| {
        let gate = &gate;
        async move {
            let mut v = Visitor::from_source(gate, source);
            let login = v.get("/ui/login").await;
            let token = csrf(&login.body);
            v.post(
                "/ui/login/email",
                &[("csrf", &token), ("email", "bob@example.com")],
            )
            .await
            .status
        }
    };
    let wait_for = |n: usize| {
        let maildir = smtp.maildir.clone();
        async move {
            for _ in 0..200 {
                if crate::support::mails(&maildir).len() >= n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            crate::support::mails(&maildir)
        }
    };
    for i in 2..=5 {
        for _ in 0..3 {
            assert_eq!(ask(std::net::Ipv4Addr::new(127, 0, 0, i)).await, 200);
        }
    }
    // The strangers got the address's ten links, no more.
    let mails = wait_for(SignInLimiter::PER_ADDRESS).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(crate::support::mails(&smtp.maildir).len(), mails.len());
    assert_eq!(mails.len(), SignInLimiter::PER_ADDRESS);
    let before: std::collections::HashSet<String> = mails.into_iter().collect();

    // Bob, from his own address, still gets a link, and it works.
    assert_eq!(ask(std::net::Ipv4Addr::new(127, 0, 0, 9)).await, 200);
    let mails = wait_for(SignInLimiter::PER_ADDRESS + 1).await;
    let mine = mails
        .iter()
        .find(|m| !before.contains(*m))
        .expect("bob's own request gets a link");
    let start_at = mine.find(&format!("{}/ui/login/", gate.base)).unwrap();
    let link: String = mine[start_at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let mut bob = Visitor::from_source(&gate, std::net::Ipv4Addr::new(127, 0, 0, 9));
    let confirm = bob.get(&link).await;
    let c = csrf(&confirm.body);
    let signed = bob.post(&link, &[("csrf", &c)]).await;
    assert_eq!(signed.status, 303);
    assert_eq!(bob.get("/ui/inbox").await.status, 200);
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_and_never_to_another_site() {
    let gate = two_workspaces().await;
    let agent = gate.key(Role::Agent).await;
    let run_id = propose(&gate, &agent, 500, "agent-7").await;
    let k = countersign_gate::keys::generate().unwrap();
    gate.state
        .store
        .create_key(
            "default",
            &k.key_id,
            &k.hash,
            Role::Admin,
            Some("Ops <laptop>".into()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let admin = crate::support::Key(k.secret);

    // Asked for a run's page: sent to sign in, with the page in `next`.
    let mut v = Visitor::new(&gate);
    let wanted = format!("/ui/w/default/runs/{run_id}");
    let sent = v.get(&wanted).await;
    assert_eq!(sent.status, 303);
    let login_url = sent.location.unwrap();
    assert!(login_url.starts_with("/ui/login?next="), "{login_url}");
    let login = v.get(&login_url).await;
    assert_eq!(login.status, 200);
    assert!(
        login
            .body
            .contains(&format!("name=\"next\" value=\"{wanted}\"")),
        "the sign-in forms do not carry the page: {}",
        login.body
    );
    let csrf_token = csrf(&login.body);
    let back = v
        .post(
            "/ui/login/key",
            &[("csrf", &csrf_token), ("key", &admin.0), ("next", &wanted)],
        )
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some(wanted.as_str()));

    // The header names the key by its label (escaped), not its id.
    let page = v.get(&wanted).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Ops &#60;laptop&#62; (admin)"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&format!("admin key {}", k.key_id)));

    // An error page keeps the navigation.
    let missing = v.get("/ui/w/default/runs/run_nope").await;
    assert_eq!(missing.status, 404);
    for nav in [
        "/ui/w/default/runs\"",
        "/ui/w/default/policies\"",
        "data-testid=\"logout\"",
    ] {
        assert!(missing.body.contains(nav), "the 404 page lacks {nav}");
    }
    let unknown = v.get("/ui/w/default/nothing-here").await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("data-testid=\"logout\""),
        "{}",
        unknown.body
    );

    // `next` never leads off the dashboard: such values are dropped.
    for evil in [
        "https://evil.example/",
        "//evil.example/ui/",
        "/\\evil.example",
        "/ui/../../v1/runs",
        "/ui//evil.example",
    ] {
        let mut w = Visitor::new(&gate);
        let enc: String = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let login = w.get(&format!("/ui/login?next={enc}")).await;
        assert!(!login.body.contains("name=\"next\""), "{evil} kept");
        let csrf_token = csrf(&login.body);
        let r = w
            .post(
                "/ui/login/key",
                &[("csrf", &csrf_token), ("key", &admin.0), ("next", evil)],
            )
            .await;
        assert_eq!(r.status, 303);
        assert_eq!(r.location.as_deref(), Some("/ui/w/default"), "{evil}");
    }

    // An approver's emailed link keeps `next` through the confirmation.
    let mut a = Visitor::new(&gate);
    let token = issue_link(&gate, "alice@example.com").await;
    let confirm = a
        .get(&format!(
            "/ui/login/{token}?next=%2Fui%2Fw%2Fdefault%2Fruns%2F{run_id}"
        ))
        .await;
    assert_eq!(confirm.status, 200);
    let csrf_token = csrf(&confirm.body);
    let form_next = crate::support::ui::attr_values(&confirm.body, "value")
        .into_iter()
        .find(|v| v.starts_with("/ui/"))
        .unwrap();
    let signed = a
        .post(
            &format!("/ui/login/{token}"),
            &[("csrf", &csrf_token), ("next", &form_next)],
        )
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location.as_deref(), Some(wanted.as_str()));
}
