// `daxpin submit --kcidb` against a KCIDB receiver on 127.0.0.1 that checks what arrives:
// the bearer token, a body that validates against KernelCI's schema, the same body again
// after a 503. The retry policy and the configuration checks as pure functions.

import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import t from 'tap';
import { DaxpinError } from '../../lib/errors';
import { DEFAULT_RETRY, nextStep, submitKcidb, submitTarget } from '../../lib/submit';
import { writeRuns } from '../fixtures/runs';
import { runCli, testDir } from '../helpers/cli';
import { kcidbErrors, kcidbValidator } from '../helpers/kcidb';

const TOKEN = 'test-token-6f1c';

interface Arrival {
  method: string;
  url: string;
  auth: string | undefined;
  type: string | undefined;
  body: string;
}

/** A receiver that answers each request with the next of `answers` (then 200), recording what came. */
async function receiver(t: { teardown(fn: () => Promise<void>): void }, answers: Array<{ status: number; headers?: Record<string, string> }>) {
  const arrivals: Array<Arrival & { at: number }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (s: string) => (body += s));
    req.on('end', () => {
      arrivals.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, type: req.headers['content-type'], body, at: Date.now() });
      const answer = answers.shift() ?? { status: 200 };
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.status === 200 ? JSON.stringify({ id: `submission-${arrivals.length}` }) : JSON.stringify({ error: 'try later' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as AddressInfo;
  return { arrivals, url: `http://127.0.0.1:${port}/submit` };
}

t.test('a submission reaches the receiver intact, again after two 503s', async (t) => {
  const dir = testDir(t, 'daxpin-submit-');
  const { a, b } = writeRuns(dir);
  const rx = await receiver(t, [{ status: 503 }, { status: 503, headers: { 'retry-after': '0' } }]);
  const started = Date.now();
  const r = await runCli(['submit', '--kcidb', a, b], { DAXPIN_KCIDB_URL: rx.url, DAXPIN_KCIDB_TOKEN: TOKEN });
  t.equal(r.code, 0, r.stderr);
  t.equal(rx.arrivals.length, 3, 'two 503s, then accepted');
  t.ok(rx.arrivals[1].at - started >= 1000, 'the first retry waited for the backoff (1 s)');
  t.match(r.stderr, /KCIDB http:\/\/127\.0\.0\.1:\d+\/submit: HTTP 503: \{"error":"try later"\}; retrying in 1\.0 s \(attempt 2 of 5\)/);
  t.match(r.stderr, /retrying in 0\.0 s \(attempt 3 of 5\)/, 'Retry-After: 0 is honoured');
  t.match(r.stderr, /submitted \d+ tests to KCIDB: \{"id":"submission-3"\}/);
  t.match(r.stderr, /daxpin: last line of .*run-b\.jsonl is incomplete \(killed run\?\); ignored\n/, "a run file's warnings are said");
  t.notMatch(r.stderr, TOKEN, 'the token is never printed');
  const validate = kcidbValidator();
  for (const x of rx.arrivals) {
    t.equal(x.method, 'POST');
    t.equal(x.url, '/submit');
    t.equal(x.auth, `Bearer ${TOKEN}`);
    t.equal(x.type, 'application/json');
    t.equal(x.body, rx.arrivals[0].body, 'every attempt sends the same report');
  }
  const report = JSON.parse(rx.arrivals[2].body);
  t.ok(validate(report), kcidbErrors(validate));
  t.equal(report.checkouts.length, 2);
  const rendered = await runCli(['report', a, b, '--format', 'kcidb']);
  t.same(report, JSON.parse(rendered.stdout), 'what arrives is what daxpin report --format kcidb writes');
});

t.test('a KCIDB JSON file is sent as it is', async (t) => {
  const dir = testDir(t, 'daxpin-submit-');
  const { a } = writeRuns(dir);
  const file = path.join(dir, 'report.json');
  t.equal((await runCli(['report', a, '--format', 'kcidb', '--out', file])).code, 0);
  const rx = await receiver(t, []);
  const r = await runCli(['submit', '--kcidb', file], { DAXPIN_KCIDB_URL: rx.url, DAXPIN_KCIDB_TOKEN: TOKEN });
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(rx.arrivals[0].body), JSON.parse(fs.readFileSync(file, 'utf8')));
});

t.test('a refusal is not retried; configuration errors are one line, exit 2, nothing sent', async (t) => {
  const dir = testDir(t, 'daxpin-submit-');
  const { a } = writeRuns(dir);
  const rx = await receiver(t, [{ status: 401 }]);
  const refused = await runCli(['submit', '--kcidb', a], { DAXPIN_KCIDB_URL: rx.url, DAXPIN_KCIDB_TOKEN: TOKEN });
  t.equal(refused.code, 2);
  t.match(refused.stderr, /^daxpin: KCIDB submission to http:\/\/127\.0\.0\.1:\d+\/submit failed: HTTP 401: \{"error":"try later"\}\n$/);
  t.equal(rx.arrivals.length, 1, 'a 4xx is an answer, not a hiccup');

  const notJson = path.join(dir, 'x.json');
  fs.writeFileSync(notJson, '{"tests": []}');
  const cases: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['no URL', ['submit', '--kcidb', a], { DAXPIN_KCIDB_URL: '', DAXPIN_KCIDB_TOKEN: TOKEN }, /^daxpin: DAXPIN_KCIDB_URL is not set/],
    ['no token', ['submit', '--kcidb', a], { DAXPIN_KCIDB_URL: rx.url, DAXPIN_KCIDB_TOKEN: '' }, /^daxpin: DAXPIN_KCIDB_TOKEN is not set/],
    ['no --kcidb', ['submit', a], { DAXPIN_KCIDB_URL: rx.url, DAXPIN_KCIDB_TOKEN: TOKEN }, /^daxpin: say where to submit: --kcidb\n$/],
    ['not KCIDB', ['submit', '--kcidb', notJson], { DAXPIN_KCIDB_URL: rx.url, DAXPIN_KCIDB_TOKEN: TOKEN }, /not a KCIDB v5 report/],
    ['no such run', ['submit', '--kcidb', path.join(dir, 'nope.jsonl')], { DAXPIN_KCIDB_URL: rx.url, DAXPIN_KCIDB_TOKEN: TOKEN }, /nope\.jsonl: no such file/],
  ];
  for (const [why, args, env, says] of cases) {
    const r = await runCli(args, env);
    t.equal(r.code, 2, why);
    t.match(r.stderr, says, why);
    t.equal(r.stderr.trim().split('\n').length, 1, `${why}: one line`);
  }
  t.equal(rx.arrivals.length, 1, 'nothing more was sent');
});

t.test('an unreachable endpoint is retried, then one clear error', async (t) => {
  const rx = await receiver(t, []);
  const closed = rx.url.replace(/:(\d+)\//, (_m, p) => `:${Number(p) === 65535 ? 1 : 65535}/`);
  const dir = testDir(t, 'daxpin-submit-');
  const { a } = writeRuns(dir);
  const log: string[] = [];
  const err = await submitKcidb([a], { env: { DAXPIN_KCIDB_URL: closed, DAXPIN_KCIDB_TOKEN: TOKEN }, policy: { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 }, log: (l) => log.push(l) }).catch((e) => e);
  t.type(err, DaxpinError);
  t.match(err.message, /KCIDB submission to http:\/\/127\.0\.0\.1:\d+\/submit failed: ECONNREFUSED \(gave up after 3 attempts\)/);
  t.equal(log.length, 2, 'two retries were announced');
});

t.test('retry policy: 5xx, 429 and network errors back off exponentially; 2xx done; 4xx fail', async (t) => {
  const p = DEFAULT_RETRY;
  const resp = (status: number, retryAfter: string | null = null) => ({ kind: 'response' as const, status, retryAfter, body: 'busy\nmore' });
  t.same(nextStep(resp(200), 1, p), { kind: 'done' });
  t.same(nextStep(resp(202), 1, p), { kind: 'done' });
  t.same(nextStep(resp(503), 1, p), { kind: 'retry', delayMs: 1000, why: 'HTTP 503: busy' });
  t.same(nextStep(resp(502), 3, p), { kind: 'retry', delayMs: 4000, why: 'HTTP 502: busy' });
  t.same(nextStep(resp(429, '7'), 1, p), { kind: 'retry', delayMs: 7000, why: 'HTTP 429: busy' });
  t.same(nextStep(resp(503, '3600'), 1, p), { kind: 'retry', delayMs: 30_000, why: 'HTTP 503: busy' }, 'Retry-After is capped');
  t.same(nextStep(resp(503, 'Wed, 21 Oct 2015 07:28:00 GMT'), 2, p), { kind: 'retry', delayMs: 2000, why: 'HTTP 503: busy' });
  t.same(nextStep({ kind: 'network', error: 'ECONNRESET' }, 2, p), { kind: 'retry', delayMs: 2000, why: 'ECONNRESET' });
  t.same(nextStep(resp(500), 5, p), { kind: 'fail', why: 'HTTP 500: busy (gave up after 5 attempts)' });
  t.same(nextStep(resp(400), 1, p), { kind: 'fail', why: 'HTTP 400: busy' });
  t.same(nextStep({ kind: 'response', status: 413, retryAfter: null, body: '' }, 1, p), { kind: 'fail', why: 'HTTP 413' });
});

t.test('configuration: https, or http only to this machine; no credentials in the URL', async (t) => {
  const ok = (url: string) => submitTarget({ DAXPIN_KCIDB_URL: url, DAXPIN_KCIDB_TOKEN: TOKEN }).url.href;
  t.equal(ok('https://kcidb.example/submit'), 'https://kcidb.example/submit');
  t.equal(ok('http://127.0.0.1:8080/submit'), 'http://127.0.0.1:8080/submit');
  t.equal(ok('http://[::1]:8080/submit'), 'http://[::1]:8080/submit');
  const bad: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
    ['clear text off this machine', { DAXPIN_KCIDB_URL: 'http://kcidb.example/submit', DAXPIN_KCIDB_TOKEN: TOKEN }, /must be https for kcidb\.example/],
    ['token in the URL', { DAXPIN_KCIDB_URL: 'https://tok@kcidb.example/submit', DAXPIN_KCIDB_TOKEN: TOKEN }, /carries credentials/],
    ['not a URL', { DAXPIN_KCIDB_URL: 'kcidb.example', DAXPIN_KCIDB_TOKEN: TOKEN }, /is not a URL/],
    ['ftp', { DAXPIN_KCIDB_URL: 'ftp://kcidb.example/', DAXPIN_KCIDB_TOKEN: TOKEN }, /must be https/],
    ['header injection', { DAXPIN_KCIDB_URL: 'https://kcidb.example/submit', DAXPIN_KCIDB_TOKEN: 'a\r\nX-Evil: 1' }, /line break/],
  ];
  for (const [why, env, says] of bad) t.throws(() => submitTarget(env), says, why);
});
