// End-to-end tests of the dashboard (/ui) in a real browser: Debian's
// Chromium driven by playwright-core, against a real `countersign serve`
// with a real SMTP server (aiosmtpd) on loopback.
//
// The steps run in order and share state (runs, sessions, the share link).
// A step whose prerequisites failed is skipped, not failed again, so the
// first failure is the one to read. Screenshots of every page visited go to
// target/e2e-artifacts (or $E2E_ARTIFACTS), with the gate's log; a failing
// step also saves FAIL-*.png of its open pages.
//
//   COUNTERSIGN_BIN   the gate binary (default target/debug/countersign)
//   CHROMIUM_PATH     the browser (default /usr/bin/chromium)
//   E2E_ARTIFACTS     where screenshots and logs go
//   E2E_UPDATE_DOCS=1 also copy the README's screenshots to docs/screenshots

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import {
  ARTIFACTS,
  BIN,
  Fatal,
  CHROMIUM,
  cli,
  freePort,
  readMaildir,
  screenshot,
  sleep,
  startProcess,
  startSmtp,
  stopProcess,
  tempDir,
  updateDocs,
  waitFor,
} from '../lib/harness.mjs';

const WS = 'acme';
const ALICE = 'alice@example.test';
const ACTOR = 'agent-7';
const SHARE_LABEL = 'Auditor (e2e)';

const POLICY = `version: 1
approvers:
  finance-leads:
    members:
      - { id: alice, name: Alice Ng, email: ${ALICE} }
    quorum: 1
    timeout: 24h
actions:
  issue_refund:
    description: Refund all or part of a customer's charge.
    summary: "Refund {payload.amount} {payload.currency} for order {payload.order_id}"
    risk: high
    approvers: finance-leads
    rules:
      - name: non-positive-amount
        when: payload.amount <= 0
        decision: block
        reason: A refund amount must be more than zero
      - name: over-threshold
        when: payload.amount > 100
        decision: require_approval
        reason: Refunds above 100 need a finance lead
      - name: small-refund
        decision: allow
        reason: Refunds of 100 or less are automatic
`;

// State shared by the steps.
const S = {};

// ------------------------------------------------------------------ helpers

/**
 * One scenario step: a test that is skipped when an earlier step did not
 * produce what it `needs`, and that saves screenshots of every open page
 * when it fails.
 */
function step(name, needs, fn, timeout = 90_000) {
  test(name, { timeout }, async (t) => {
    const missing = needs.filter((k) => S[k] === undefined);
    if (missing.length) {
      t.skip(`an earlier step failed (missing: ${missing.join(', ')})`);
      return;
    }
    try {
      await fn(t);
    } catch (e) {
      S.failed = true;
      await failureShots(name);
      throw e;
    }
  });
}

async function failureShots(stepName) {
  if (!S.browser) return;
  const tag = stepName.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
  let i = 0;
  for (const ctx of S.browser.contexts()) {
    for (const page of ctx.pages()) {
      i += 1;
      try {
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: path.join(ARTIFACTS, `FAIL-${tag}-${i}.png`), fullPage: true });
      } catch {}
    }
  }
}

/** A call to the gate's JSON API. */
async function api(method, p, { key = S.agentKey, body } = {}) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(S.base + p, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text, headers: r.headers };
}

/** An agent asks to refund `amount`; returns the new run. */
async function intercept(amount, note) {
  const r = await api('POST', '/v1/intercept', {
    body: {
      action: 'issue_refund',
      payload: { amount, currency: 'EUR', order_id: `ord-${note}`, actor: ACTOR },
      reasoning: `e2e: ${note}`,
    },
  });
  assert.equal(r.status, 201, `intercept ${amount}: ${r.text}`);
  return r.json;
}

async function getRun(id) {
  const r = await api('GET', `/v1/runs/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function newContext() {
  const ctx = await S.browser.newContext({ baseURL: S.base, acceptDownloads: true });
  ctx.setDefaultTimeout(15_000);
  return ctx;
}

/** Navigates and checks the HTTP status of the page (after redirects). */
async function goto(page, url, status = 200) {
  const resp = await page.goto(url);
  assert.ok(resp, `no response for ${url}`);
  assert.equal(resp.status(), status, `GET ${url}: HTTP ${resp.status()} at ${page.url()}`);
  return resp;
}

/**
 * Clicks something that navigates (a submit button or a link) and returns
 * the final response of the main frame, redirects followed.
 */
async function submit(page, target) {
  const loc = typeof target === 'string' ? page.locator(target) : target;
  const final = page.waitForResponse(
    (r) =>
      r.request().isNavigationRequest() &&
      r.frame() === page.mainFrame() &&
      !(r.status() >= 300 && r.status() < 400),
  );
  await loc.click();
  const resp = await final;
  await page.waitForLoadState('load');
  return resp;
}

const pathOf = (page) => new URL(page.url()).pathname;

/** The number shown by a stat card of the overview. */
async function stat(page, name) {
  const text = (await page.locator(`[data-testid=stat-${name}]`).innerText()).trim();
  const n = Number(text.replace(/[,\s\u202f]/g, ''));
  assert.ok(Number.isInteger(n), `stat-${name} is not a number: ${JSON.stringify(text)}`);
  return n;
}

/** The run ids of a runs table, top to bottom. */
async function rowIds(page) {
  return page.locator('tr[data-run-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run-id')));
}

/** A GET with the context's cookies, redirects not followed. */
async function rawGet(ctx, url) {
  return ctx.request.get(url, { maxRedirects: 0 });
}

/** True when the response does not show a signed-in page. */
function isRefused(resp) {
  const s = resp.status();
  if (s === 401 || s === 403) return true;
  if (s >= 300 && s < 400) return /\/ui\/login/.test(resp.headers().location ?? '');
  return false;
}

/**
 * The fields a form would send when `button` submits it, read in the page:
 * { action, method, fields: [[name, value], …] }.
 */
async function formOf(button) {
  return button.evaluate((b) => {
    const f = b.form;
    if (!f) return null;
    return {
      action: f.action,
      method: (f.getAttribute('method') || 'get').toLowerCase(),
      fields: [...new FormData(f, b)].map(([k, v]) => [k, String(v)]),
    };
  });
}

function formBody(fields, { csrf }) {
  const out = {};
  for (const [k, v] of fields) {
    if (k === 'csrf') continue;
    out[k] = v;
  }
  if (csrf !== undefined) out.csrf = csrf;
  return out;
}

// ------------------------------------------------------------------ scenario

describe('dashboard (/ui) in Chromium', () => {
  after(async () => {
    if (S.browser) await S.browser.close().catch(() => {});
    await stopProcess(S.gate);
    await stopProcess(S.smtp?.child);
    if (process.env.E2E_UPDATE_DOCS === '1' && S.failed) {
      console.log('# docs/screenshots: not updated, a step failed');
    } else if (process.env.E2E_UPDATE_DOCS === '1') {
      const docs = {
        overview: 'desktop-overview',
        inbox: 'inbox',
        receipt: 'receipt',
        runs: 'desktop-runs',
        'phone-inbox': 'phone-inbox',
        'phone-runs': 'phone-runs',
        'phone-overview': 'phone-overview',
      };
      const missing = updateDocs(docs);
      if (missing.length) console.log(`# docs/screenshots: no screenshot of ${missing.join(', ')} to copy`);
      else console.log(`# docs/screenshots: ${Object.keys(docs).map((d) => `${d}.png`).join(', ')} updated`);
    }
    if (S.dir && process.env.E2E_KEEP !== '1') fs.rmSync(S.dir, { recursive: true, force: true });
  });

  step('1. setup: SMTP sink, policies, config, keys; the gate is ready', [], async () => {
    assert.ok(fs.existsSync(BIN), `no gate binary at ${BIN} (cargo build -p countersign, or set COUNTERSIGN_BIN)`);
    assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM} (apt-get install chromium)`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of fs.readdirSync(ARTIFACTS)) {
      if (/\.(png|json|log)$/.test(f)) fs.rmSync(path.join(ARTIFACTS, f));
    }

    const dir = tempDir();
    S.dir = dir;
    S.smtp = await startSmtp(dir, path.join(ARTIFACTS, 'smtp.log'));

    const policies = path.join(dir, 'policies');
    fs.mkdirSync(policies);
    fs.writeFileSync(path.join(policies, 'refunds.yaml'), POLICY);
    const check = cli(['check', policies]);
    assert.equal(check.code, 0, `countersign check: ${check.stdout}${check.stderr}`);

    const port = await freePort();
    S.base = `http://127.0.0.1:${port}`;
    fs.mkdirSync(path.join(dir, 'data'));
    S.config = path.join(dir, 'countersign.yaml');
    fs.writeFileSync(
      S.config,
      [
        `listen: 127.0.0.1:${port}`,
        `public_url: ${S.base}`,
        `data_dir: ${dir}/data`,
        `store: sqlite://${dir}/data/cs.db`,
        'console: false',
        `email: { host: 127.0.0.1, port: ${S.smtp.port}, security: plain, from: countersign@example.test }`,
        'delivery: { poll_interval: 100ms, base_delay: 100ms }',
        'workspaces:',
        `  ${WS}: { policies: ${policies} }`,
        '',
      ].join('\n'),
    );

    const key = (role) => {
      const r = cli(['keys', 'create', '--workspace', WS, '--role', role, '--label', `e2e ${role}`, '--config', S.config]);
      assert.equal(r.code, 0, `keys create --role ${role}: ${r.stderr}`);
      const k = r.stdout.trim();
      assert.match(k, /^csk_[0-9a-f]{8}_[0-9a-f]{64}$/, `keys create printed ${JSON.stringify(r.stdout)}`);
      return k;
    };
    const agentKey = key('agent');
    const adminKey = key('admin');

    S.gate = startProcess(BIN, ['serve', '--config', S.config], path.join(ARTIFACTS, 'gate.log'));
    await waitFor(
      `${S.base}/readyz`,
      async () => {
        if (S.gate.exitCode !== null) throw new Fatal(`the gate exited with ${S.gate.exitCode}; see ${ARTIFACTS}/gate.log`);
        const r = await fetch(`${S.base}/readyz`).catch(() => null);
        return r?.status === 200;
      },
      { ms: 30_000 },
    );

    S.browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // No network beyond loopback here: keep Chromium from calling home.
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-gpu',
      ],
    });
    S.agentKey = agentKey;
    S.adminKey = adminKey;
  });

  step('2. an agent intercepts: over the threshold waits, under is allowed, negative is blocked', ['agentKey'], async () => {
    const big = await intercept(250, 'big');
    assert.equal(big.governance_status, 'pending_approval', JSON.stringify(big));
    const small = await intercept(20, 'small');
    assert.equal(small.governance_status, 'allowed', JSON.stringify(small));
    const bad = await intercept(-5, 'negative');
    assert.equal(bad.governance_status, 'blocked', JSON.stringify(bad));
    S.blocked = bad.run_id;
    S.allowed = small.run_id;
    S.pending = big.run_id;
  });

  step('3. approver signs in by emailed link and sees the pending run in the inbox', ['pending', 'browser'], async () => {
    // Unknown addresses get the same answer, and no email.
    const anon = await newContext();
    const probe = await anon.newPage();
    await goto(probe, '/ui/login');
    await probe.fill('input[name=email]', 'nobody@example.test');
    const asked = await submit(probe, '[data-testid=send-link]');
    assert.equal(
      asked.status(),
      200,
      `the sign-in form, sent by the browser, got HTTP ${asked.status()}: ${await probe.locator('h1').first().innerText().catch(() => '')}`,
    );
    await probe.locator('[data-testid=link-sent]').waitFor();
    await anon.close();

    const ctx = await newContext();
    const page = await ctx.newPage();
    await goto(page, '/ui/login');
    await page.locator('input[name=key]').waitFor();
    await screenshot(page, 'login');
    await page.fill('input[name=email]', ALICE);
    const sent = await submit(page, '[data-testid=send-link]');
    assert.equal(sent.status(), 200, `POST /ui/login/email answered ${sent.status()}`);
    await page.locator('[data-testid=link-sent]').waitFor();
    await screenshot(page, 'login-link-sent');

    const mail = await waitFor(
      'the sign-in email to alice',
      () => readMaildir(S.smtp.maildir).find((m) => m.to.includes(ALICE) && m.subject.includes('Sign in to Countersign')),
      { ms: 20_000, every: 250 },
    );
    const link = mail.text.match(new RegExp(`${S.base.replace(/[.]/g, '\\.')}/ui/login/[A-Za-z0-9_=-]+`));
    assert.ok(link, `no ${S.base}/ui/login/{token} link in the email:\n${mail.text}`);
    S.loginLink = link[0];
    await sleep(500); // the unknown address was asked first: its email would be there by now
    const stray = readMaildir(S.smtp.maildir).filter((m) => m.to.includes('nobody@example.test'));
    assert.equal(stray.length, 0, 'an unknown address was sent an email');

    // Opening the link (twice: mail scanners do) does not sign in or use it up.
    await goto(page, S.loginLink);
    await goto(page, S.loginLink);
    await page.locator('[data-testid=confirm-sign-in]').waitFor();
    await screenshot(page, 'login-confirm');
    assert.ok(isRefused(await rawGet(ctx, '/ui/inbox')), 'GET of the sign-in link signed in without confirming');

    const landed = await submit(page, '[data-testid=confirm-sign-in]');
    assert.equal(landed.status(), 200);
    assert.equal(pathOf(page), '/ui/inbox');
    await page.locator(`[data-testid=inbox-item][data-run-id="${S.pending}"]`).waitFor();
    assert.equal(await page.locator(`[data-testid=inbox-item][data-run-id="${S.allowed}"]`).count(), 0, 'an allowed run is in the inbox');
    assert.equal(await page.locator(`[data-testid=inbox-item][data-run-id="${S.blocked}"]`).count(), 0, 'a blocked run is in the inbox');
    const item = page.locator(`[data-testid=inbox-item][data-run-id="${S.pending}"]`);
    assert.equal(await item.locator('textarea[name=comment]').count(), 1);
    assert.equal(await item.locator('[data-testid=approve]').count(), 1);
    assert.equal(await item.locator('[data-testid=reject]').count(), 1);
    await screenshot(page, 'inbox');

    // The session cookie: HttpOnly, SameSite=Strict.
    const cookies = await ctx.cookies(`${S.base}/ui/inbox`);
    assert.ok(cookies.length > 0, 'no cookie after signing in');
    for (const c of cookies) {
      assert.equal(c.httpOnly, true, `cookie ${c.name} is not HttpOnly`);
      assert.equal(c.sameSite, 'Strict', `cookie ${c.name} is SameSite=${c.sameSite}`);
    }
    assert.equal(await page.evaluate(() => document.cookie), '', 'a cookie is readable from JavaScript');

    // The used link fails on a second use (410), and signs nobody in.
    const other = await newContext();
    const again = await other.newPage();
    const first = await again.goto(S.loginLink);
    let status = first.status();
    if (status === 200 && (await again.locator('[data-testid=confirm-sign-in]').count()) > 0) {
      status = (await submit(again, '[data-testid=confirm-sign-in]')).status();
    }
    await screenshot(again, 'login-link-used');
    assert.equal(status, 410, `a used sign-in link answered ${status} at ${again.url()}`);
    assert.ok(isRefused(await rawGet(other, '/ui/inbox')), 'a used sign-in link signed in');
    await other.close();

    S.alice = ctx;
    S.inbox = page;
  });

  step('4. runs page updates live (SSE) when the approver approves and when a run is added', ['alice'], async () => {
    const runs = await S.alice.newPage();
    await goto(runs, `/ui/w/${WS}/runs`);
    const row = (id) => runs.locator(`tr[data-run-id="${id}"]`);
    const cell = (id, field) => row(id).locator(`[data-field=${field}]`);
    assert.equal(await cell(S.pending, 'governance_status').getAttribute('data-value'), 'pending_approval');
    assert.equal(await cell(S.pending, 'execution_status').getAttribute('data-value'), 'not_executed');
    assert.equal(await cell(S.allowed, 'governance_status').getAttribute('data-value'), 'allowed');
    assert.equal(await cell(S.allowed, 'execution_status').getAttribute('data-value'), 'awaiting_execution');
    assert.equal(await cell(S.blocked, 'governance_status').getAttribute('data-value'), 'blocked');
    assert.deepEqual(await rowIds(runs), [S.blocked, S.allowed, S.pending], 'runs are not newest first');
    await runs.evaluate(() => {
      window.__marker = 'not reloaded';
    });
    await screenshot(runs, 'runs');

    // Approve in the inbox (the other page of the same session).
    const inbox = S.inbox;
    const item = inbox.locator(`[data-testid=inbox-item][data-run-id="${S.pending}"]`);
    S.comment = 'Checked order ord-big: refund OK';
    await item.locator('textarea[name=comment]').fill(S.comment);
    const answered = await submit(inbox, item.locator('[data-testid=approve]'));
    assert.equal(answered.status(), 200);
    assert.equal(pathOf(inbox), '/ui/inbox');
    const flash = (await inbox.locator('[data-testid=flash]').innerText()).trim();
    assert.match(flash, /approv/i, `flash: ${flash}`);
    assert.equal(await item.count(), 0, 'the answered run is still in the inbox');
    await screenshot(inbox, 'inbox-answered');

    const run = await getRun(S.pending);
    assert.equal(run.governance_status, 'approved', JSON.stringify(run));

    // The runs page, not reloaded, shows the new statuses.
    await runs.locator(`tr[data-run-id="${S.pending}"] [data-field=governance_status][data-value=approved]`).waitFor();
    assert.match(await cell(S.pending, 'governance_status').innerText(), /approved/i);
    await runs.locator(`tr[data-run-id="${S.pending}"] [data-field=execution_status][data-value=awaiting_execution]`).waitFor();
    assert.equal(await runs.evaluate(() => window.__marker), 'not reloaded');

    // The agent reports the refund done: the execution cell follows.
    const done = await api('POST', `/v1/runs/${S.pending}/executed`, { body: { execution_result: { refund_id: 're_e2e_1' } } });
    assert.equal(done.status, 200, done.text);
    await runs.locator(`tr[data-run-id="${S.pending}"] [data-field=execution_status][data-value=executed]`).waitFor();
    assert.match(await cell(S.pending, 'execution_status').innerText(), /executed/i);

    // A new run appears at the top.
    const fresh = await intercept(42, 'live');
    assert.equal(fresh.governance_status, 'allowed');
    await row(fresh.run_id).waitFor();
    assert.equal((await rowIds(runs))[0], fresh.run_id, 'the new run is not the first row');
    assert.equal(await cell(fresh.run_id, 'governance_status').getAttribute('data-value'), 'allowed');
    assert.equal(await runs.evaluate(() => window.__marker), 'not reloaded', 'the runs page was reloaded');
    await screenshot(runs, 'runs-live');
    await runs.close();
    S.fresh = fresh.run_id;
    S.approved = S.pending;
  });

  step('5. run detail shows the timeline; the receipt page and its signed JSON', ['approved'], async () => {
    const page = await S.alice.newPage();
    await goto(page, `/ui/w/${WS}/runs/${S.approved}`);
    const entries = page.locator('[data-testid=timeline] li');
    const n = await entries.count();
    assert.ok(n >= 4, `the timeline has ${n} entries:\n${await page.locator('[data-testid=timeline]').innerText().catch(() => '(none)')}`);
    assert.ok((await page.content()).includes(S.approved), 'the run id is not on its page');
    await screenshot(page, 'run-detail');

    const toReceipt = await submit(page, '[data-testid=receipt-link]');
    assert.equal(toReceipt.status(), 200);
    assert.equal(pathOf(page), `/ui/w/${WS}/runs/${S.approved}/receipt`);
    const receiptText = await page.locator('[data-testid=receipt]').innerText();
    assert.ok(receiptText.includes(S.approved), 'the receipt page does not show the run id');
    await screenshot(page, 'receipt');

    const href = await page.locator('[data-testid=download-receipt]').getAttribute('href');
    const url = new URL(href, page.url());
    assert.equal(url.pathname, `/ui/w/${WS}/runs/${S.approved}/receipt.json`);
    const resp = await S.alice.request.get(url.href);
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()['content-disposition'] ?? '', /^attachment\b/i, 'receipt.json is not served as an attachment');
    assert.match(resp.headers()['content-type'] ?? '', /json/i);
    const doc = JSON.parse(await resp.text());
    assert.equal(doc.receipt?.run_id, S.approved);
    assert.equal(doc.receipt.decision?.governance_status, 'approved');
    assert.equal(doc.receipt.approvals?.[0]?.approver, 'alice');
    assert.equal(doc.receipt.approvals[0].comment, S.comment);
    assert.equal(doc.signature?.alg, 'Ed25519');
    assert.match(doc.signature.value, /^[A-Za-z0-9+/]{86}==$/, 'the signature is not 64 bytes of base64');

    // The browser downloads it, and it verifies offline.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid=download-receipt]').click()]);
    assert.match(download.suggestedFilename(), /\.json$/);
    const file = path.join(ARTIFACTS, `receipt-${S.approved}.json`);
    await download.saveAs(file);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), doc);
    const verify = cli(['receipt', 'verify', file, '--config', S.config]);
    assert.equal(verify.code, 0, `countersign receipt verify: ${verify.stdout}${verify.stderr}`);
    await page.close();
  });

  step('6. admin signs in with a key: overview, filters, policies, a new share link', ['approved'], async () => {
    const ctx = await newContext();
    const page = await ctx.newPage();
    await goto(page, '/ui/login');
    await page.fill('input[name=key]', S.adminKey);
    const signedIn = await submit(page, '[data-testid=key-sign-in]');
    assert.equal(signedIn.status(), 200);
    assert.equal(pathOf(page), `/ui/w/${WS}`);

    // The stats agree with the API.
    const list = await api('GET', '/v1/runs', { key: S.adminKey });
    assert.equal(list.status, 200, list.text);
    const all = list.json.runs;
    const count = (f) => all.filter(f).length;
    const expected = {
      runs: all.length,
      pending: count((r) => r.governance_status === 'pending_approval'),
      executed: count((r) => r.execution_status === 'executed'),
      blocked: count((r) => r.governance_status === 'blocked'),
      failed: count((r) => r.execution_status === 'failed'),
    };
    assert.deepEqual(expected, { runs: 4, pending: 0, executed: 1, blocked: 1, failed: 0 });
    for (const [k, v] of Object.entries(expected)) assert.equal(await stat(page, k), v, `stat-${k}`);
    assert.ok(await stat(page, 'runs') >= 2);
    assert.equal(await page.locator('svg[data-testid=chart]').count(), 1, 'no chart');
    await screenshot(page, 'overview');
    for (const days of [7, 90]) {
      await goto(page, `/ui/w/${WS}?days=${days}`);
      assert.equal(await stat(page, 'runs'), 4, `stat-runs with ?days=${days}`);
      assert.equal(await page.locator('svg[data-testid=chart]').count(), 1, `no chart with ?days=${days}`);
    }

    // Filters of the runs page.
    const filtered = async (query, want) => {
      await goto(page, `/ui/w/${WS}/runs?${query}`);
      assert.deepEqual((await rowIds(page)).sort(), [...want].sort(), `runs?${query}`);
    };
    await filtered('governance_status=blocked', [S.blocked]);
    await filtered('governance_status=approved', [S.approved]);
    await filtered('execution_status=executed', [S.approved]);
    await filtered('execution_status=awaiting_execution', [S.allowed, S.fresh]);
    await filtered('action=issue_refund', [S.blocked, S.allowed, S.approved, S.fresh]);
    await filtered('action=no_such_action', []);
    await filtered(`actor=${ACTOR}`, [S.blocked, S.allowed, S.approved, S.fresh]);
    await filtered('actor=someone-else', []);
    await screenshot(page, 'runs-filtered');

    await goto(page, `/ui/w/${WS}/policies`);
    const policies = await page.locator('body').innerText();
    for (const word of ['issue_refund', 'over-threshold', 'small-refund', 'non-positive-amount']) {
      assert.ok(policies.includes(word), `the policies page does not mention ${word}`);
    }
    await screenshot(page, 'policies');

    // The approver may not manage share links.
    assert.ok(
      isRefused(await rawGet(S.alice, `/ui/w/${WS}/share`)) || (await rawGet(S.alice, `/ui/w/${WS}/share`)).status() === 404,
      'an approver session can open the share admin page',
    );

    await goto(page, `/ui/w/${WS}/share`);
    await page.fill('input[name=label]', SHARE_LABEL);
    await page.fill('input[name=days]', '7');
    const created = await submit(page, '[data-testid=create-share]');
    assert.ok([200, 201].includes(created.status()), `create-share answered ${created.status()}`);
    const shareUrl = (await page.locator('[data-testid=share-url]').innerText()).trim();
    const m = shareUrl.match(new RegExp(`^${S.base.replace(/[.]/g, '\\.')}/ui/s/([A-Za-z0-9_=-]+)$`));
    assert.ok(m, `share-url is ${JSON.stringify(shareUrl)}`);
    await screenshot(page, 'share-admin');

    // Shown once: the list shows the link by label, not its token.
    await goto(page, `/ui/w/${WS}/share`);
    assert.equal(await page.locator('[data-testid=share-url]').count(), 0, 'the share URL is shown again');
    assert.ok(!(await page.content()).includes(m[1]), 'the share token is on the page again');
    const listed = page.locator('[data-testid=share-link]').filter({ hasText: SHARE_LABEL });
    assert.equal(await listed.count(), 1, 'the new link is not listed by its label');
    assert.ok(await listed.getAttribute('data-grant-id'));
    S.admin = ctx;
    S.adminPage = page;
    S.shareToken = m[1];
    S.shareUrl = shareUrl;
  });

  step('7. the share link shows the history read-only, with receipts, and nothing else', ['shareUrl'], async () => {
    const ctx = await newContext();
    const page = await ctx.newPage();
    await goto(page, S.shareUrl);
    const ids = await rowIds(page);
    for (const id of [S.blocked, S.allowed, S.approved, S.fresh]) assert.ok(ids.includes(id), `run ${id} is not in the shared history`);
    assert.equal(await page.locator('[data-testid=approve]').count(), 0, 'approve buttons on the share view');
    assert.equal(await page.locator('[data-testid=reject]').count(), 0, 'reject buttons on the share view');
    assert.equal(await page.locator('textarea[name=comment]').count(), 0, 'an answer form on the share view');
    await screenshot(page, 'share-view');

    const link = page.locator(`tr[data-run-id="${S.approved}"] a[href*="/receipt"]`).first();
    const href = await link.getAttribute('href');
    assert.equal(new URL(href, page.url()).pathname, `/ui/s/${S.shareToken}/runs/${S.approved}/receipt`);
    const opened = await submit(page, link);
    assert.equal(opened.status(), 200);
    assert.ok((await page.locator('[data-testid=receipt]').innerText()).includes(S.approved));
    assert.equal(await page.locator('[data-testid=approve]').count(), 0);
    await screenshot(page, 'share-receipt');

    // The share link opens no door to the dashboard.
    for (const p of [`/ui/w/${WS}/runs`, `/ui/w/${WS}`, '/ui/inbox', `/ui/w/${WS}/runs/${S.approved}`]) {
      const r = await rawGet(ctx, p);
      assert.ok(isRefused(r), `GET ${p} from a share-link visitor: HTTP ${r.status()} ${r.headers().location ?? ''}`);
    }
    await page.goto(`/ui/w/${WS}/runs`);
    assert.ok(!(await page.content()).includes(S.approved), 'the runs page shows data to a share-link visitor');
    S.shareCtx = ctx;
    S.sharePage = page;
  });

  step('8. a revoked share link answers 410; an unknown one 404', ['shareCtx', 'adminPage'], async () => {
    const admin = S.adminPage;
    await goto(admin, `/ui/w/${WS}/share`);
    const listed = admin.locator('[data-testid=share-link]').filter({ hasText: SHARE_LABEL });
    const grant = await listed.getAttribute('data-grant-id');
    const revoked = await submit(admin, listed.locator('[data-testid=revoke-share]'));
    assert.equal(revoked.status(), 200);
    assert.equal(
      await admin.locator(`[data-testid=share-link][data-grant-id="${grant}"] [data-testid=revoke-share]`).count(),
      0,
      'the revoked link can still be revoked',
    );
    await screenshot(admin, 'share-admin-revoked');

    const page = S.sharePage;
    await goto(page, S.shareUrl, 410);
    await screenshot(page, 'share-revoked');
    const receipt = await rawGet(S.shareCtx, `/ui/s/${S.shareToken}/runs/${S.approved}/receipt`);
    assert.notEqual(receipt.status(), 200, 'a revoked link still serves receipts');
    await goto(page, `/ui/s/${'A'.repeat(43)}`, 404);
  });

  step('9. CSRF: answers and forms without the csrf field are refused, and change nothing', ['alice', 'adminPage'], async () => {
    const run = await intercept(300, 'csrf');
    assert.equal(run.governance_status, 'pending_approval');
    const inbox = S.inbox;
    await goto(inbox, '/ui/inbox');
    const item = inbox.locator(`[data-testid=inbox-item][data-run-id="${run.run_id}"]`);
    await item.waitFor();
    const form = await formOf(item.locator('[data-testid=approve]'));
    assert.ok(form, 'the approve button is not in a form');
    assert.equal(form.method, 'post');
    assert.ok(form.fields.some(([k, v]) => k === 'csrf' && v.length >= 16), `no csrf field in ${JSON.stringify(form.fields)}`);
    for (const csrf of [undefined, '', 'forged-token-0123456789abcdef']) {
      const r = await S.alice.request.post(form.action, { form: formBody(form.fields, { csrf }), maxRedirects: 0 });
      assert.equal(r.status(), 403, `answer with csrf=${JSON.stringify(csrf)}: HTTP ${r.status()}`);
    }
    assert.equal((await getRun(run.run_id)).governance_status, 'pending_approval', 'a refused answer changed the run');
    await goto(inbox, '/ui/inbox');
    await item.waitFor();

    // The admin's share form likewise.
    const admin = S.adminPage;
    await goto(admin, `/ui/w/${WS}/share`);
    const shareForm = await formOf(admin.locator('[data-testid=create-share]'));
    assert.ok(shareForm, 'the create-share button is not in a form');
    const fields = shareForm.fields.map(([k, v]) => [k, k === 'label' ? 'csrf-probe' : k === 'days' ? '7' : v]);
    const r = await S.admin.request.post(shareForm.action, { form: formBody(fields, {}), maxRedirects: 0 });
    assert.equal(r.status(), 403, `create-share without csrf: HTTP ${r.status()}`);
    await goto(admin, `/ui/w/${WS}/share`);
    assert.ok(!(await admin.content()).includes('csrf-probe'), 'a share link was created without csrf');

    // With the form's own token, the same answer goes through (reject).
    await item.locator('textarea[name=comment]').fill('Not this one');
    await submit(inbox, item.locator('[data-testid=reject]'));
    assert.equal(pathOf(inbox), '/ui/inbox');
    assert.match((await inbox.locator('[data-testid=flash]').innerText()).trim(), /reject/i);
    assert.equal(await item.count(), 0);
    assert.equal((await getRun(run.run_id)).governance_status, 'rejected');
  });

  step('10. text an agent sends is shown as text, also in live-inserted rows', ['alice', 'adminPage'], async () => {
    const runs = S.adminPage;
    await goto(runs, `/ui/w/${WS}/runs`);
    const r = await api('POST', '/v1/intercept', {
      body: {
        action: 'issue_refund',
        actor: '<i id="xss-actor">agent-7</i>',
        payload: { amount: 500, currency: 'EUR', order_id: '<img src=x id="xss-order">' },
        reasoning: '<script id="xss-reason">window.__xss = 1</script>',
      },
    });
    assert.equal(r.status, 201, r.text);
    const id = r.json.run_id;
    const noMarkup = async (page, where) => {
      for (const sel of ['#xss-actor', '#xss-order', '#xss-reason']) {
        assert.equal(await page.locator(sel).count(), 0, `${where}: agent text became markup (${sel})`);
      }
      assert.equal(await page.evaluate(() => window.__xss), undefined, `${where}: agent text ran as script`);
    };
    // The row the live update inserts.
    await runs.locator(`tr[data-run-id="${id}"]`).waitFor();
    assert.ok((await runs.locator(`tr[data-run-id="${id}"]`).innerText()).includes('<i id="xss-actor">agent-7</i>'));
    await noMarkup(runs, 'live runs row');
    // Server-rendered pages.
    await goto(runs, `/ui/w/${WS}/runs`);
    await noMarkup(runs, 'runs page');
    await goto(runs, `/ui/w/${WS}/runs/${id}`);
    const detail = await runs.locator('body').innerText();
    assert.ok(detail.includes('<script id="xss-reason">'), 'the reasoning is not shown as text on the run page');
    await noMarkup(runs, 'run page');
    await goto(S.inbox, '/ui/inbox');
    await S.inbox.locator(`[data-testid=inbox-item][data-run-id="${id}"]`).waitFor();
    await noMarkup(S.inbox, 'inbox');
    await screenshot(S.inbox, 'inbox-untrusted-text');
  });

  step('10b. every page fits a phone (390 px) and a desktop (1280 px), with hostile data', ['alice', 'admin', 'adminPage'], async () => {
    // Agent text built to stretch a layout: a 60-character actor without a
    // space, long unbroken payload strings, nested fields, long reasoning.
    const longActor = 'agent-' + 'x'.repeat(54);
    const longWord = 'LONG' + 'ABCDEFGHIJ'.repeat(30);
    const hostile = await api('POST', '/v1/intercept', {
      body: {
        action: 'issue_refund',
        actor: longActor,
        payload: {
          amount: 750,
          currency: 'EUR',
          order_id: `ord-${'9'.repeat(80)}`,
          note: longWord,
          customer: { name: 'Ada Lovelace', email: `${'a'.repeat(70)}@example.test`, iban: 'DE' + '1'.repeat(60) },
          lines: [{ sku: longWord.slice(0, 90), qty: 1 }],
        },
        reasoning: `${longWord}\n${'Because '.repeat(40)}`,
      },
    });
    assert.equal(hostile.status, 201, hostile.text);
    S.hostile = hostile.json.run_id;
    // A failed execution with a long error, for the overview's attention list.
    const toFail = await api('POST', '/v1/intercept', {
      body: { action: 'issue_refund', actor: longActor, payload: { amount: 30, currency: 'EUR', order_id: 'ord-fail' } },
    });
    assert.equal(toFail.status, 201, toFail.text);
    const failed = await api('POST', `/v1/runs/${toFail.json.run_id}/failed`, { body: { execution_error: `gateway said ${longWord}` } });
    assert.equal(failed.status, 200, failed.text);
    S.failedRun = toFail.json.run_id;

    // A fresh share link for the share views.
    const admin = await S.admin.newPage();
    await goto(admin, `/ui/w/${WS}/share`);
    await admin.fill('input[name=label]', 'L'.repeat(100));
    await admin.fill('input[name=days]', '7');
    await submit(admin, '[data-testid=create-share]');
    const shareUrl = (await admin.locator('[data-testid=share-url]').innerText()).trim();
    const shareCtx = await newContext();
    const share = await shareCtx.newPage();
    const anonCtx = await newContext();
    const anon = await anonCtx.newPage();

    // The approval email's confirmation page for the hostile run.
    const mail = await waitFor(
      'the approval email of the hostile run',
      () => readMaildir(S.smtp.maildir).find((m) => m.to.includes(ALICE) && m.text.includes(S.hostile)),
      { ms: 20_000, every: 250 },
    );
    const confirmLink = mail.text.match(new RegExp(`${S.base.replace(/[.]/g, '\\.')}/a/[A-Za-z0-9_.=-]+\\?d=approve`));
    assert.ok(confirmLink, `no approve link in:\n${mail.text}`);
    S.hostileMail = mail;

    const alice = await S.alice.newPage();
    const w = `/ui/w/${WS}`;
    const pages = [
      [anon, '/ui/login', 200],
      [anon, `/ui/login?next=${encodeURIComponent(`${w}/runs/${S.hostile}`)}`, 200],
      [anon, confirmLink[0], 200],
      [anon, `/ui/s/${'A'.repeat(43)}`, 404],
      [anon, S.shareUrl, 410],
      [share, shareUrl, 200],
      [share, `${shareUrl}/runs/${S.hostile}/receipt`, 200],
      [alice, '/ui/inbox', 200],
      [alice, `${w}/runs`, 200],
      [alice, `${w}/runs/${S.hostile}`, 200],
      [admin, w, 200],
      [admin, `${w}?days=30`, 200],
      [admin, `${w}?days=90`, 200],
      [admin, `${w}/runs`, 200],
      [admin, `${w}/runs?actor=${encodeURIComponent(longActor)}`, 200],
      [admin, `${w}/runs/${S.hostile}`, 200],
      [admin, `${w}/runs/${S.hostile}/receipt`, 200],
      [admin, `${w}/runs/${S.failedRun}`, 200],
      [admin, `${w}/runs/${S.approved}/receipt`, 200],
      [admin, `${w}/policies`, 200],
      [admin, `${w}/share`, 200],
      [admin, `${w}/runs/run_does_not_exist`, 404],
      [admin, '/ui/inbox', 200],
    ];
    const tooWide = [];
    for (const [width, height, tag] of [[390, 844, 'phone'], [1280, 800, 'desktop']]) {
      for (const p of [anon, share, alice, admin]) await p.setViewportSize({ width, height });
      for (const [page, url, status] of pages) {
        await goto(page, url, status);
        const m = await page.evaluate(() => ({
          doc: document.documentElement.scrollWidth,
          body: document.body.scrollWidth,
          view: window.innerWidth,
        }));
        if (Math.max(m.doc, m.body) > m.view) tooWide.push(`${tag} ${url}: ${Math.max(m.doc, m.body)} px > ${m.view} px`);
      }
      await goto(alice, '/ui/inbox');
      await screenshot(alice, `${tag}-inbox`);
      await goto(admin, w);
      await screenshot(admin, `${tag}-overview`);
      await goto(admin, `${w}/runs`);
      await screenshot(admin, `${tag}-runs`);
      await goto(admin, `${w}/runs/${S.hostile}`);
      await screenshot(admin, `${tag}-run`);
    }
    assert.deepEqual(tooWide, [], `pages wider than the viewport:\n${tooWide.join('\n')}`);

    // On a phone the navigation stays within the header (it scrolls).
    await admin.setViewportSize({ width: 390, height: 844 });
    await goto(admin, `${w}/runs`);
    const nav = await admin.locator('header.top nav').evaluate((n) => ({ right: n.getBoundingClientRect().right, view: window.innerWidth }));
    assert.ok(nav.right <= nav.view, `the navigation ends at ${nav.right} px on a ${nav.view} px screen`);
    await admin.setViewportSize({ width: 1280, height: 800 });
    for (const c of [shareCtx, anonCtx]) await c.close();
    await alice.close();
    S.responsivePage = admin;
  });

  step('10c. approval cards, runs list, overview, run and receipt pages say what a person needs', ['hostile', 'responsivePage'], async () => {
    const admin = S.responsivePage;
    const w = `/ui/w/${WS}`;
    // The card: the policy's summary as title, risk badge, relative expiry
    // with the absolute time on hover, the rule's fields highlighted, the
    // full JSON one click away, the agent's reasoning.
    const inbox = await S.alice.newPage();
    await goto(inbox, '/ui/inbox');
    const card = inbox.locator(`[data-testid=inbox-item][data-run-id="${S.hostile}"]`);
    // (a placeholder's value is cut at 80 characters)
    assert.equal((await card.locator('[data-testid=card-title]').innerText()).trim(), `Refund 750 EUR for order ord-${'9'.repeat(75)}…`);
    assert.match(await card.locator('[data-testid=risk]').innerText(), /high risk/i);
    const expires = card.locator('[data-testid=expires]');
    assert.match((await expires.innerText()).trim(), /^in \d+ h$/);
    assert.match(await expires.getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    const read = await card.locator('[data-testid=payload] tr[data-read] th').allInnerTexts();
    assert.deepEqual(read.map((t) => t.trim()), ['amount'], 'the rule reads payload.amount only');
    assert.ok((await card.locator('[data-testid=payload] th').allInnerTexts()).map((t) => t.trim()).includes('customer.name'));
    const json = card.locator('[data-testid=payload-json]');
    assert.equal(await json.locator('pre').isVisible(), false, 'the JSON is shown before asking');
    await json.locator('summary').click();
    assert.ok((await json.locator('pre').innerText()).includes('"iban"'));
    assert.ok((await card.locator('[data-testid=reasoning]').innerText()).startsWith('LONGABCDEFGHIJ'));
    await inbox.close();

    // The same title in the approval email, with a link to the run's page.
    assert.ok(S.hostileMail.subject.includes('Refund 750 EUR for order'), `subject: ${S.hostileMail.subject}`);
    assert.ok(S.hostileMail.text.includes(`${S.base}${w}/runs/${S.hostile}`), 'the email has no link to the run page');

    // Runs list: title, pills, a short copyable id, absolute and relative time, a count, sorting, live.
    await goto(admin, `${w}/runs`);
    const row = admin.locator(`tr[data-run-id="${S.hostile}"]`);
    assert.ok((await row.locator('[data-testid=run-title]').innerText()).startsWith('Refund 750 EUR'));
    assert.equal(await row.locator('button[data-copy]').getAttribute('data-copy'), S.hostile);
    assert.ok((await row.locator('td.id code').innerText()).length < S.hostile.length, 'the run id is not shortened');
    assert.match(await row.locator('td.when').innerText(), /ago[\s\S]*UTC/);
    const total = (await rowIds(admin)).length;
    assert.match(await admin.locator('[data-testid=run-count]').innerText(), new RegExp(`^${total} runs`));
    await admin.locator('[data-testid=live-state][data-state=on]').waitFor();
    await admin.locator('th button.sort', { hasText: 'Action' }).click();
    assert.equal(await admin.locator('th[aria-sort]').innerText(), 'ACTION');
    await admin.locator('th button.sort', { hasText: 'Created' }).click();
    await admin.locator('th button.sort', { hasText: 'Created' }).click();
    const ids = await rowIds(admin);
    assert.equal(ids[0], S.failedRun, 'newest first after sorting by creation time');

    // Overview as triage: pending soonest to expire, latest failures and blocks, distinct colours.
    await goto(admin, w);
    const pending = admin.locator('[data-testid=attention-pending] li');
    assert.ok((await pending.count()) >= 1);
    assert.match(await pending.first().innerText(), /expires in/);
    const problems = await admin.locator('[data-testid=attention-problems] li').allInnerTexts();
    assert.ok(problems.some((t) => /^failed/.test(t.trim())), `no failure listed: ${problems}`);
    assert.ok(problems.some((t) => /^blocked/.test(t.trim())), `no block listed: ${problems}`);
    const colour = async (sel) => admin.locator(sel).first().evaluate((e) => getComputedStyle(e).fill);
    assert.notEqual(await colour('svg.chart rect.failed'), await colour('svg.chart rect.blocked'), 'failed and blocked share a colour');
    assert.ok((await admin.locator('[data-testid=y-tick]').count()) >= 2, 'the chart has no y axis');
    assert.ok((await admin.locator('[data-testid=bar-value]').count()) >= 1, 'the chart shows no per-day values');

    // Decided runs do not say what they need; the result is shown.
    await goto(admin, `${w}/runs/${S.approved}`);
    assert.equal(await admin.locator('[data-testid=needs]').count(), 0, '"Needs …" on a decided run');
    assert.ok((await admin.locator('[data-testid=execution-result]').innerText()).includes('re_e2e_1'));
    await goto(admin, `${w}/runs/${S.hostile}`);
    assert.equal(await admin.locator('[data-testid=needs]').count(), 1, 'a pending run does not say what it needs');
    await goto(admin, `${w}/runs/${S.approved}/receipt`);
    assert.ok((await admin.locator('[data-testid=receipt-result]').innerText()).includes('re_e2e_1'), 'the receipt does not show the result');

    // The policies page shows the template.
    await goto(admin, `${w}/policies`);
    assert.equal(
      (await admin.locator('[data-testid=summary-template]').innerText()).trim(),
      'Refund {payload.amount} {payload.currency} for order {payload.order_id}',
    );

    // The header names the admin key by its label.
    assert.match(await admin.locator('header .me').innerText(), /^e2e admin \(admin\)$/);

    // Error pages keep the navigation.
    await goto(admin, `${w}/runs/run_does_not_exist`, 404);
    assert.ok((await admin.locator('header.top nav a').count()) >= 4, 'the 404 page has no navigation');

    // A signed-out visitor who follows a link to a run signs in and lands on it.
    const ctx = await newContext();
    const visitor = await ctx.newPage();
    await goto(visitor, `${w}/runs/${S.hostile}`);
    assert.equal(pathOf(visitor), '/ui/login');
    await visitor.fill('input[name=key]', S.adminKey);
    await submit(visitor, '[data-testid=key-sign-in]');
    assert.equal(pathOf(visitor), `${w}/runs/${S.hostile}`);
    // And a `next` to another site is ignored.
    await ctx.clearCookies();
    await goto(visitor, `/ui/login?next=${encodeURIComponent('//evil.example/ui/')}`);
    await visitor.fill('input[name=key]', S.adminKey);
    await submit(visitor, '[data-testid=key-sign-in]');
    assert.equal(new URL(visitor.url()).origin, S.base);
    assert.equal(pathOf(visitor), w);
    await ctx.close();
  });

  step('11. logout ends the session', ['alice', 'admin'], async () => {
    const page = S.inbox;
    await goto(page, '/ui/inbox');
    const logoutForm = await formOf(page.locator('[data-testid=logout]'));
    assert.ok(logoutForm, 'the logout button is not in a form');
    assert.equal(logoutForm.method, 'post');
    assert.equal(new URL(logoutForm.action).pathname, '/ui/logout');
    // Without csrf, logout is refused too, and the session stays.
    const forged = await S.alice.request.post(logoutForm.action, { form: formBody(logoutForm.fields, {}), maxRedirects: 0 });
    assert.equal(forged.status(), 403, `logout without csrf: HTTP ${forged.status()}`);
    assert.equal((await rawGet(S.alice, '/ui/inbox')).status(), 200, 'the session ended without csrf');

    // A GET never signs out (a prefetch or a link must not end a session).
    await rawGet(S.alice, '/ui/logout');
    assert.equal((await rawGet(S.alice, '/ui/inbox')).status(), 200, 'GET /ui/logout ended the session');

    await submit(page, '[data-testid=logout]');
    assert.ok(isRefused(await rawGet(S.alice, '/ui/inbox')), 'still signed in after logout');
    const after = await page.goto('/ui/inbox');
    assert.ok(
      pathOf(page) === '/ui/login' || [401, 403].includes(after.status()),
      `/ui/inbox after logout: HTTP ${after.status()} at ${page.url()}`,
    );
    assert.equal(await page.locator('[data-testid=inbox-item]').count(), 0);
    assert.ok(
      pathOf(page) === '/ui/login' || (await page.locator('a[href="/ui/login"]').count()) > 0,
      'the signed-out page offers no way to sign in',
    );
    await screenshot(page, 'signed-out');

    await goto(S.adminPage, `/ui/w/${WS}`);
    await submit(S.adminPage, '[data-testid=logout]');
    assert.ok(isRefused(await rawGet(S.admin, `/ui/w/${WS}`)), 'admin still signed in after logout');
  });
});
