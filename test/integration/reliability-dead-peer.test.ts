// A dead FUSE peer or worker mid-case (issue 13): noticed at once, the case recorded
// as daxpin's failure (status error, with why), never as the kernel's answer
// (`pin-refused:ENOTCONN`); a fresh worker and peer serve the next case, and the run
// exits 3 because something it recorded is in doubt. Needs root.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { readRun } from '../../lib/report/runfile';
import { outcomeClass } from '../../lib/verdict';
import { CliChild, inflightKey, startCli, waitFor, sleep } from '../helpers/cli';
import { NOTHING_LEFT, childrenOf, cleanUpAfterKill, cmdlineOf, leftovers, workerOf } from '../helpers/machine';

/** The HTML report and the mail a run writes beside its JSONL. */
const NOT_A_REPORT = (n: string) => !/\.(html|mail\.txt)$/.test(n);

const peerOf = (worker: number): number | null => childrenOf(worker).find((p) => cmdlineOf(p).includes('engine/peer-main.js')) ?? null;

interface Run {
  tmp: string;
  out: string;
  inflight: string;
  cli: CliChild;
}

function start(t: Test, cases: string[], env: NodeJS.ProcessEnv): Run {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-deadpeer-'));
  const out = path.join(tmp, 'run.jsonl');
  const inflight = path.join(tmp, 'inflight');
  const cli = startCli(['run', '--scratch', '--config', 'tmpfs', '--cases', cases.join(','), '--hold-ms', '1000', '--settle-ms', '2000', '--out', out, '--inflight', inflight], { TMPDIR: tmp, ...env });
  t.teardown(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.result;
    }
    await cleanUpAfterKill(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return { tmp, out, inflight, cli };
}

const VICTIM = 'odirect-read.punch-hole.pte-shared';
// The control, the victim, a case through a fresh peer, one that needs no peer.
const CASES = ['none.punch-hole.pte-shared', VICTIM, 'uring-read.punch-hole.pte-shared', 'vmsplice.punch-hole.pte-shared'];

t.test('the FUSE peer killed while it holds a pin: the case is daxpin\'s error, a new peer serves the rest, exit 3', async (t) => {
  // The peer answers no read (test hook): the victim's pin stays held, and the kill lands then.
  const run = start(t, CASES, { DAXPIN_TEST_PEER_NO_REPLY: '1' });
  await waitFor('the victim case', () => inflightKey(run.inflight) === `tmpfs/${VICTIM}`);
  const worker = await waitFor('the worker', () => workerOf(run.cli.pid));
  const peer = await waitFor('its FUSE peer', () => peerOf(worker));
  await sleep(400);
  process.kill(peer, 'SIGKILL');
  const killedAt = Date.now();
  const r = await run.cli.result;
  t.comment(r.stderr.trim().split('\n').join(' | '));
  t.equal(r.code, 3, 'the run exits 3: a result is in doubt');
  t.match(r.stderr, /daxpin: in doubt: 1 case daxpin could not measure \(status error\)/);
  t.notMatch(r.stderr, /at .*\.js:\d+|TypeError|ERR_IPC/, 'no stack trace');
  const parsed = readRun(run.out);
  const byId = new Map(parsed.cases.map((c) => [c.caseId, c]));
  t.same([...byId.keys()].sort(), [...CASES].sort(), 'every case has a record');
  const victim = byId.get(VICTIM)!;
  t.equal(victim.status, 'error');
  t.match(victim.error, new RegExp(`the FUSE peer \\(pid ${peer}\\) was killed by SIGKILL during the case`));
  t.equal(outcomeClass(victim), 'error', 'not pin-refused:ENOTCONN');
  t.ok(victim.durationMs < 1000 + 2000, `recorded without waiting out the case (${victim.durationMs} ms)`);
  t.ok(Date.now() - killedAt < 20_000);
  for (const c of parsed.cases) t.notMatch(outcomeClass(c), /ENOTCONN|ECONNABORTED/, `${c.caseId}: no ENOTCONN`);
  const after = byId.get(CASES[2])!;
  t.equal(after.status, 'done');
  t.equal(after.pin.ok, true, 'the next O_DIRECT pin was held: a fresh peer served it');
  t.equal(byId.get(CASES[3])!.status, 'done');
  t.equal(parsed.end?.interrupted, false);
  t.same(parsed.end?.notRun, []);
  t.same(leftovers(run.tmp), NOTHING_LEFT, 'no dead FUSE mount, loop, worker or peer left');
  t.same(fs.readdirSync(run.tmp).filter(NOT_A_REPORT).sort(), ['inflight', 'run.jsonl'], 'the work dir is gone');
});

t.test('the FUSE peer killed during a case that does not use it: that case stands, the next gets a fresh peer, exit 0', async (t) => {
  const cases = ['vmsplice.punch-hole.pte-shared', ...['truncate-zero', 'zero-range', 'insert-range'].map((op) => `none.${op}.pte-shared`), 'odirect-read.truncate-zero.pte-shared'];
  const run = start(t, cases, {});
  const worker = await waitFor('the worker', () => workerOf(run.cli.pid));
  const peer = await waitFor('its FUSE peer', () => peerOf(worker));
  await waitFor('the first case', () => inflightKey(run.inflight) === `tmpfs/${cases[0]}`, 30_000, 2);
  // Stopped, the worker cannot finish the case while its peer dies under it.
  process.kill(worker, 'SIGSTOP');
  process.kill(peer, 'SIGKILL');
  await sleep(300);
  process.kill(worker, 'SIGCONT');
  const r = await run.cli.result;
  t.comment(r.stderr.trim().split('\n').join(' | '));
  const parsed = readRun(run.out);
  t.equal(r.code, 0, 'nothing is in doubt');
  t.same(parsed.cases.map((c) => c.status), cases.map(() => 'done'));
  t.equal(parsed.cases[0].pin.ok, true, 'the vmsplice case measured as usual');
  const last = parsed.cases[cases.length - 1];
  t.equal(last.pin.ok, true, 'the O_DIRECT case ran through a fresh peer');
  t.same(leftovers(run.tmp), NOTHING_LEFT);
});

t.test('the FUSE peer killed after the last case: nothing is left mounted', async (t) => {
  const cases = ['none.truncate-zero.pte-shared'];
  const run = start(t, cases, {});
  const worker = await waitFor('the worker', () => workerOf(run.cli.pid));
  const peer = await waitFor('its FUSE peer', () => peerOf(worker));
  await waitFor('the case record', () => fs.existsSync(run.out) && fs.readFileSync(run.out, 'utf8').includes('"record":"case"'), 30_000, 2);
  process.kill(peer, 'SIGKILL');
  const r = await run.cli.result;
  t.equal(r.code, 0);
  t.same(leftovers(run.tmp), NOTHING_LEFT);
  t.same(fs.readdirSync(run.tmp).filter(NOT_A_REPORT).sort(), ['inflight', 'run.jsonl']);
});

t.test('the worker killed mid-case: error with why, the run goes on and exits 3', async (t) => {
  const run = start(t, CASES, { DAXPIN_TEST_PEER_NO_REPLY: '1' });
  await waitFor('the victim case', () => inflightKey(run.inflight) === `tmpfs/${VICTIM}`);
  const worker = await waitFor('the worker', () => workerOf(run.cli.pid));
  await sleep(400);
  process.kill(worker, 'SIGKILL');
  const r = await run.cli.result;
  t.equal(r.code, 3);
  t.match(r.stderr, /in doubt: 1 case daxpin could not measure/);
  const parsed = readRun(run.out);
  const victim = parsed.cases.find((c) => c.caseId === VICTIM)!;
  t.equal(victim.status, 'error');
  t.match(victim.error, /worker killed by SIGKILL during the case; nothing it measured is kept/);
  t.equal(parsed.cases.find((c) => c.caseId === CASES[2])!.pin.ok, true, 'a fresh worker and peer took the next case');
  t.same(leftovers(run.tmp), NOTHING_LEFT);
});
