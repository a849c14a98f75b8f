// Test harness for the dashboard's end-to-end tests: the processes they run
// (an SMTP sink and the gate), waiting helpers, the maildir reader and
// screenshots. Everything is on loopback and in a temporary directory.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const BIN = process.env.COUNTERSIGN_BIN || path.join(ROOT, 'target/debug/countersign');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(ROOT, process.env.E2E_ARTIFACTS || 'target/e2e-artifacts');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** An error that ends `waitFor` at once instead of being retried. */
export class Fatal extends Error {}

/**
 * Polls `fn` until it returns a truthy value; throws after `ms`. Errors
 * thrown by `fn` are retried (the last one is reported), except `Fatal`.
 */
export async function waitFor(what, fn, { ms = 15000, every = 100 } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(every);
  }
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

const children = new Set();
// Last resort: never leave a gate or an SMTP server behind, even when the
// runner dies before the `after` hook.
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

/** Starts a child process with its output in `logFile`. */
export function startProcess(cmd, args, logFile) {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Stops a child started by `startProcess`: SIGTERM, then SIGKILL after 3 s. */
export async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await child.exited;
  clearTimeout(t);
}

/** aiosmtpd on loopback, storing every message in `dir`/maildir. */
export async function startSmtp(dir, logFile) {
  const port = await freePort();
  const maildir = path.join(dir, 'maildir');
  const child = startProcess(
    'python3',
    ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir],
    logFile,
  );
  await waitFor('the SMTP server to listen', async () => {
    if (child.exitCode !== null) {
      throw new Fatal(`aiosmtpd exited with ${child.exitCode} (python3 -m pip install aiosmtpd?); see ${logFile}`);
    }
    return portOpen(port);
  });
  return { child, port, maildir };
}

/** The messages in a maildir, bodies decoded (see maildir.py). */
export function readMaildir(maildir) {
  if (!fs.existsSync(maildir)) return [];
  const out = execFileSync('python3', [path.join(here, 'maildir.py'), maildir], { encoding: 'utf8' });
  return JSON.parse(out);
}

/** Runs the countersign CLI; returns { code, stdout, stderr }. */
export function cli(args) {
  try {
    const stdout = execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    return { code: e.status ?? -1, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? e.message) };
  }
}

/** A temporary directory for one run. */
export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'countersign-e2e-'));
}

let shotIndex = 0;
/** Full-page PNG of `page` as ARTIFACTS/NN-name.png; returns the path. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  shotIndex += 1;
  const file = path.join(ARTIFACTS, `${String(shotIndex).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.set(name, file);
  return file;
}
export const screenshots = new Map();

/** Copies the README's screenshots into docs/screenshots (E2E_UPDATE_DOCS=1). */
export function updateDocs(names) {
  const dest = path.join(ROOT, 'docs', 'screenshots');
  fs.mkdirSync(dest, { recursive: true });
  const missing = [];
  for (const [docName, shotName] of Object.entries(names)) {
    const src = screenshots.get(shotName);
    if (!src) {
      missing.push(shotName);
      continue;
    }
    fs.copyFileSync(src, path.join(dest, `${docName}.png`));
  }
  return missing;
}
