// Fault containment (issue 5): a worker killed with SIGKILL mid-case, a worker that
// aborts in native code, a worker whose main thread stops answering, and a worker
// thread stuck in D state in the kernel (a frozen filesystem). Each time the case is
// recorded with what daxpin could see, and the run goes on to the next case and ends
// normally. Needs root.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { CaseRecord } from '../../lib/outcome';
import { readRun } from '../../lib/report/runfile';
import { invariantViolations, outcomeClass } from '../../lib/verdict';
import { isDying } from '../../lib/engine/tasks';
import { CliChild, inflightKey, jsonlLines, startCli, waitFor, sleep } from '../helpers/cli';
import { NOTHING_LEFT, cleanUpAfterKill, leftovers, mountsUnder, workerOf } from '../helpers/machine';

/** The HTML report and the mail a run writes beside its JSONL. */
const NOT_A_REPORT = (n: string) => !/\.(html|mail\.txt)$/.test(n);

interface FaultRun {
  tmp: string;
  out: string;
  inflight: string;
  cli: CliChild;
}

function startRun(t: Test, config: string, cases: string[], extra: string[], env: NodeJS.ProcessEnv = {}, beforeCleanup: () => void = () => undefined): FaultRun {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-faults-'));
  const out = path.join(tmp, 'run.jsonl');
  const inflight = path.join(tmp, 'inflight');
  const cli = startCli(['run', '--scratch', '--config', config, '--cases', cases.join(','), '--out', out, '--inflight', inflight, ...extra], { TMPDIR: tmp, ...env });
  // Also when an assertion failed half way: stop the run, undo what it left, remove the dir.
  t.teardown(async () => {
    beforeCleanup();
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.result;
    }
    await cleanUpAfterKill(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return { tmp, out, inflight, cli };
}

/** Waits for the run to end; checks it ended normally with every case recorded and nothing left behind. */
async function finished(t: Test, run: FaultRun, cases: string[], config: string, exitCode = 0): Promise<Map<string, CaseRecord>> {
  const r = await run.cli.result;
  t.comment(`exit ${r.code}; stderr: ${r.stderr.trim().split('\n').join(' | ')}`);
  t.equal(r.code, exitCode, `the run ended with exit code ${exitCode}`);
  const parsed = readRun(run.out);
  t.same(parsed.warnings, []);
  t.equal(parsed.end?.interrupted, false, 'the run was not interrupted');
  t.same(parsed.end?.notRun, [], 'every case got a record');
  t.same(leftovers(run.tmp), NOTHING_LEFT, 'no mount, loop device, worker or peer left');
  t.same(fs.readdirSync(run.tmp).filter(NOT_A_REPORT).sort(), ['inflight', 'run.jsonl'], 'the work dir is gone');
  const byId = new Map(parsed.cases.map((c) => [c.caseId, c]));
  t.same([...byId.keys()].sort(), [...cases].sort());
  for (const c of parsed.cases) t.equal(c.config, config);
  return byId;
}

const VICTIM = 'odirect-read.unlink.pte-shared';
// In plan order: the control, then the victim, then a case that needs a fresh worker.
const CASES = ['none.punch-hole.pte-shared', VICTIM, 'vmsplice.unlink.pte-shared'];

function assertOthersDone(t: Test, recs: Map<string, CaseRecord>): void {
  const before = recs.get(CASES[0])!;
  const after = recs.get(CASES[2])!;
  t.equal(before.status, 'done', 'the case before ran normally');
  t.equal(after.status, 'done', 'the case after ran normally, in a new worker');
  t.equal(after.pin.ok, true);
  t.equal(after.views.pipe, 'written', 'and measured as usual');
}

t.test('a worker killed with SIGKILL while it holds a pin: the case is an error, the run goes on', async (t) => {
  // The FUSE peer answers no read (test hook), so the victim's pin stays held for the
  // 3 s the release waits; the kill lands in that window. The killed worker's read is
  // then a request the kernel already handed to the peer: it waits for the reply in D
  // state, and only aborting the FUSE connection lets the worker die.
  const run = startRun(t, 'tmpfs', CASES, ['--hold-ms', '1000', '--settle-ms', '3000'], { DAXPIN_TEST_PEER_NO_REPLY: '1' });
  await waitFor('the victim case to start', () => inflightKey(run.inflight) === `tmpfs/${VICTIM}`);
  const worker = await waitFor('the worker', () => workerOf(run.cli.pid));
  await sleep(600);
  t.ok(fs.readFileSync(`/proc/${worker}/task/${worker}/stat`, 'utf8').length > 0, 'the worker is alive mid-case');
  process.kill(worker, 'SIGKILL');
  const recs = await finished(t, run, CASES, 'tmpfs', 3); // a case daxpin could not measure: in doubt
  const victim = recs.get(VICTIM)!;
  t.equal(victim.status, 'error');
  t.match(victim.error, /worker killed by SIGKILL during the case/);
  t.equal(outcomeClass(victim), 'error');
  t.ok(victim.durationMs < 3000, `recorded as soon as the worker was gone (${victim.durationMs} ms), not at its deadline`);
  assertOthersDone(t, recs);
});

t.test('a worker that aborts in native code (test hook): the case is an error, the run goes on', async (t) => {
  const run = startRun(t, 'tmpfs', CASES, ['--hold-ms', '50', '--settle-ms', '500'], { DAXPIN_TEST_WORKER_ABORT: `tmpfs/${VICTIM}` });
  const recs = await finished(t, run, CASES, 'tmpfs', 3); // a case daxpin could not measure: in doubt
  const victim = recs.get(VICTIM)!;
  t.equal(victim.status, 'error');
  t.match(victim.error, /worker killed by SIGABRT during the case/);
  assertOthersDone(t, recs);
});

t.test('a worker whose main thread stops answering (test hook): abandoned at its deadline, the run goes on', async (t) => {
  const budget = 1000;
  const run = startRun(t, 'tmpfs', CASES, ['--hold-ms', '50', '--settle-ms', '300', '--case-budget-ms', String(budget)], { DAXPIN_TEST_WORKER_STALL: VICTIM });
  const recs = await finished(t, run, CASES, 'tmpfs', 3); // a case daxpin could not measure: in doubt
  const victim = recs.get(VICTIM)!;
  t.equal(victim.status, 'abandoned');
  t.match(victim.error, /did not answer within its deadline; threads in D state: 0; main thread S/, 'the main thread was seen sleeping interruptibly');
  t.match(victim.error, /pipe_read|pipe/, 'in the read of the pipe');
  t.equal(victim.op.hung, null, 'no thread in D state: not a kernel hang');
  t.equal(outcomeClass(victim), 'abandoned');
  // deadline = budget + hold + settle + signal wait (1 s), plus retiring the worker
  t.ok(victim.durationMs >= budget + 50 + 300 + 1000, `abandoned after its deadline (${victim.durationMs} ms)`);
  t.ok(victim.durationMs < 15_000, 'and not much later');
  assertOthersDone(t, recs);
});

t.test('a worker thread stuck in D state (frozen ext4): recorded as an uninterruptible hang, the run goes on', async (t) => {
  // fsfreeze makes every write to the filesystem wait in sb_start_write, in D state.
  // The freeze lands while the first case's fresh worker starts, so the case's first
  // write (creating its file) waits; that thread cannot be signalled or killed until
  // the test thaws the filesystem, which it does only once the orchestrator has given
  // up on the worker (SIGKILL pending on it).
  const cases = ['none.truncate-shrink.pte-shared', 'none.punch-hole.pte-shared'];
  let frozen: string | null = null;
  const thaw = (): void => {
    if (frozen === null) return;
    try {
      execFileSync('fsfreeze', ['-u', frozen]);
    } catch {
      // not frozen any more
    }
    frozen = null;
  };
  const run = startRun(t, 'ext4', cases, ['--hold-ms', '1000', '--settle-ms', '300', '--case-budget-ms', '1500'], {}, thaw);
  const mount = await waitFor('the ext4 mount', () => mountsUnder(run.tmp).find((m) => m.fsType === 'ext4')?.mountPoint, 60_000, 5);
  await waitFor('the first case to start', () => inflightKey(run.inflight) === `ext4/${cases[0]}`, 60_000, 2);
  execFileSync('fsfreeze', ['-f', mount]);
  frozen = mount;
  const worker = await waitFor('the worker', () => workerOf(run.cli.pid));
  const retired = await waitFor('the orchestrator to give up on the worker', () => isDying(worker) || jsonlLines(run.out).some((l) => l.record === 'case'), 60_000, 10);
  t.ok(retired);
  thaw();

  const recs = await finished(t, run, cases, 'ext4', 3);
  const stuck = recs.get(cases[0])!;
  t.comment(`${stuck.status}: ${stuck.error ?? ''}`);
  t.equal(stuck.status, 'abandoned', 'the worker was given up on');
  // The freeze caught the case creating its file, before its op: the op's own thread
  // never ran, so nothing is said of the op. The stuck thread is told in the error.
  t.equal(stuck.op.started, false, 'the op never started');
  t.equal(stuck.op.hung, null, 'no hang is invented for an op that never ran');
  t.equal(stuck.op.taskState, null);
  t.match(stuck.error, /threads in D state: [1-9]/, 'the D-state thread is reported');
  t.equal(outcomeClass(stuck).split(' ')[0], 'abandoned');
  t.same(invariantViolations(stuck), [], 'no verdict on the kernel from a case daxpin could not measure');
  const next = recs.get(cases[1])!;
  t.equal(next.status, 'done', 'the next case ran after the thaw');
  t.equal(next.op.ok, true);
  t.equal(next.op.hung, null);
});
