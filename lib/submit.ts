// `daxpin submit --kcidb`: post a KCIDB report to a KCIDB REST endpoint, the way kcidb's own
// REST client does (a JSON body, `Authorization: Bearer <token>`, 200 with a submission id).
// Where and with what token come from the environment only — a repository never holds them:
//   DAXPIN_KCIDB_URL    the submit endpoint (https://HOST/submit; plain http only to this machine)
//   DAXPIN_KCIDB_TOKEN  the submitter's token
// Server errors (5xx, 429) and network failures are retried with exponential backoff
// (a Retry-After header wins); anything else is a one-line error. Every failure exits 2.

import * as fs from 'node:fs';
import { DaxpinError, reason } from './errors';
import { KCIDB_VERSION, kcidbReport } from './report/kcidb';
import { readRuns } from './report/runfile';

export interface SubmitTarget {
  url: URL;
  token: string;
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** The endpoint and token from the environment; a DaxpinError saying what to set when they are wrong. */
export function submitTarget(env: NodeJS.ProcessEnv): SubmitTarget {
  const raw = env.DAXPIN_KCIDB_URL;
  const token = env.DAXPIN_KCIDB_TOKEN;
  if (!raw) throw new DaxpinError('kcidb-config', 'DAXPIN_KCIDB_URL is not set: export the KCIDB submit endpoint (https://HOST/submit)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DaxpinError('kcidb-config', `DAXPIN_KCIDB_URL is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DaxpinError('kcidb-config', `DAXPIN_KCIDB_URL must be https (or http to this machine), got ${url.protocol}`);
  if (url.username || url.password) throw new DaxpinError('kcidb-config', 'DAXPIN_KCIDB_URL carries credentials; put the token in DAXPIN_KCIDB_TOKEN instead');
  // The token travels in a header: never in clear text beyond this machine.
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) throw new DaxpinError('kcidb-config', `DAXPIN_KCIDB_URL must be https for ${url.hostname}: the token would travel in clear text`);
  if (!token) throw new DaxpinError('kcidb-config', 'DAXPIN_KCIDB_TOKEN is not set: export the KCIDB submitter token');
  if (/[\r\n]/.test(token)) throw new DaxpinError('kcidb-config', 'DAXPIN_KCIDB_TOKEN contains a line break');
  return { url, token };
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000 };

export type AttemptResult = { kind: 'response'; status: number; retryAfter: string | null; body: string } | { kind: 'network'; error: string };

export type NextStep = { kind: 'done' } | { kind: 'retry'; delayMs: number; why: string } | { kind: 'fail'; why: string };

/** What to do after attempt number `attempt` (1-based) ended with `result`. */
export function nextStep(result: AttemptResult, attempt: number, policy: RetryPolicy): NextStep {
  let why: string;
  if (result.kind === 'network') why = result.error;
  else {
    if (result.status >= 200 && result.status < 300) return { kind: 'done' };
    why = `HTTP ${result.status}${firstLine(result.body) ? `: ${firstLine(result.body)}` : ''}`;
    if (result.status < 500 && result.status !== 429) return { kind: 'fail', why };
  }
  if (attempt >= policy.attempts) return { kind: 'fail', why: `${why} (gave up after ${attempt} attempts)` };
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const asked = result.kind === 'response' ? retryAfterMs(result.retryAfter) : null;
  return { kind: 'retry', delayMs: asked === null ? backoff : Math.min(policy.maxDelayMs, asked), why };
}

/** Retry-After in delta-seconds (the form servers use for 503/429); an HTTP date is ignored. */
function retryAfterMs(header: string | null): number | null {
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) * 1000 : null;
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim().slice(0, 200);
}

/** The report to send: the KCIDB JSON file given, or one made from run JSONL files. */
export function submissionBody(files: string[]): { body: string; tests: number; warnings: string[] } {
  if (files.length === 1 && files[0].endsWith('.json')) {
    let doc: unknown;
    try {
      doc = JSON.parse(fs.readFileSync(files[0], 'utf8'));
    } catch (err) {
      throw new DaxpinError('kcidb-input', `${files[0]}: not a KCIDB JSON file (${reason(err)})`);
    }
    const version = (doc as { version?: { major?: unknown } } | null)?.version;
    if (typeof doc !== 'object' || doc === null || version?.major !== KCIDB_VERSION.major) {
      throw new DaxpinError('kcidb-input', `${files[0]}: not a KCIDB v${KCIDB_VERSION.major} report (no version.major ${KCIDB_VERSION.major}); make one with daxpin report --format kcidb`);
    }
    const tests = (doc as { tests?: unknown[] }).tests;
    return { body: JSON.stringify(doc), tests: Array.isArray(tests) ? tests.length : 0, warnings: [] };
  }
  const runs = readRuns(files);
  const report = kcidbReport(runs);
  return { body: JSON.stringify(report), tests: report.tests.length, warnings: runs.flatMap((r) => r.warnings) };
}

export interface SubmitDeps {
  env: NodeJS.ProcessEnv;
  policy?: RetryPolicy;
  /** Progress lines for stderr (retries). */
  log: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  timeoutMs?: number;
}

async function attempt(target: SubmitTarget, body: string, timeoutMs: number): Promise<AttemptResult> {
  try {
    const res = await fetch(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { kind: 'response', status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { kind: 'network', error: cause?.code ?? cause?.message ?? reason(err) };
  }
}

/** Post the report; resolves with the server's answer, throws a DaxpinError when it cannot. */
export async function submitKcidb(files: string[], deps: SubmitDeps): Promise<{ tests: number; answer: string; attempts: number }> {
  const target = submitTarget(deps.env);
  const { body, tests, warnings } = submissionBody(files);
  warnings.forEach(deps.log);
  const policy = deps.policy ?? DEFAULT_RETRY;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const where = `${target.url.origin}${target.url.pathname}`;
  for (let n = 1; ; n++) {
    const result = await attempt(target, body, deps.timeoutMs ?? 60_000);
    const step = nextStep(result, n, policy);
    if (step.kind === 'done') return { tests, answer: result.kind === 'response' ? firstLine(result.body) : '', attempts: n };
    if (step.kind === 'fail') throw new DaxpinError('kcidb-submit', `KCIDB submission to ${where} failed: ${step.why}`);
    deps.log(`KCIDB ${where}: ${step.why}; retrying in ${(step.delayMs / 1000).toFixed(1)} s (attempt ${n + 1} of ${policy.attempts})`);
    await sleep(step.delayMs);
  }
}
