// Cleanup (issue 5): Ctrl-C or SIGTERM to `daxpin run --scratch` while a config is
// being set up, in the middle of a case holding a pin, and between two configs. Each
// time: exit 130/143, no mount, loop device, worker or FUSE peer left, the work dir
// gone, and the JSONL valid to its last line, which is an end record saying the run
// was interrupted. Needs root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { readRun } from '../../lib/report/runfile';
import { HeldPinRun, heldPinReached, jsonlLines, startHeldPinRun, waitFor } from '../helpers/cli';
import { NOTHING_LEFT, cleanUpAfterKill, leftovers, workerOf } from '../helpers/machine';

const EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

interface Point {
  name: string;
  /** Resolves when the run has reached the point; the signal follows at once. */
  reached(run: HeldPinRun): Promise<unknown>;
  /** Records expected before the end record. */
  before: string[];
  /**
   * Whole cases that may follow `before` (the signal races the next case: the worker
   * serves every config, so the next config's first case can start within milliseconds).
   */
  casesMayFollow?: boolean;
}

/** The run's own work dir: TMPDIR/daxpin-XXXXXX. */
const workDirOf = (tmp: string) => fs.readdirSync(tmp).filter((n) => n.startsWith('daxpin-')).map((n) => path.join(tmp, n))[0];

const POINTS: Point[] = [
  {
    name: 'while the first config is set up (mkfs, mount, ballast)',
    reached: ({ tmp }) =>
      waitFor('the ext4 loop file', () => {
        const wd = workDirOf(tmp);
        return wd && fs.readdirSync(wd).some((n) => /^ext4-.*\.img$/.test(n));
      }, 30_000, 5),
    before: ['run'],
  },
  {
    name: 'in the middle of a case holding an O_DIRECT pin',
    reached: (run) => heldPinReached(run, workerOf),
    before: ['run', 'case'],
  },
  {
    name: 'between two configs',
    reached: ({ out }) => waitFor('the first config record', () => jsonlLines(out).some((l) => l.record === 'config'), 60_000, 5),
    before: ['run', 'case', 'case', 'config'],
    casesMayFollow: true,
  },
];

async function interrupt(t: Test, point: Point, signal: 'SIGINT' | 'SIGTERM'): Promise<void> {
  const held = startHeldPinRun('daxpin-cleanup-');
  const { cli, tmp, out } = held;
  t.teardown(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.result;
    }
    await cleanUpAfterKill(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  await point.reached(held);
  cli.child.kill(signal);
  const r = await cli.result;
  t.comment(`stderr: ${r.stderr.trim().split('\n').join(' | ')}`);
  t.equal(r.code, EXIT[signal], `exit ${EXIT[signal]}`);
  t.match(r.stderr, new RegExp(`${signal}: cleaning up`));
  t.same(leftovers(tmp), NOTHING_LEFT, 'no mount, loop device, worker or peer left');
  t.same(fs.readdirSync(tmp).filter((n) => n !== 'inflight' && !/\.(html|mail\.txt)$/.test(n)), ['run.jsonl'], 'the work dir with its loop file and mount points is gone');

  const run = readRun(out);
  t.same(run.warnings, [], 'every line is complete');
  // Kernel log lines outside cases (a loop device attached, an fs mounted) come as they come.
  const kinds = jsonlLines(out).map((l) => l.record as string).filter((k) => k !== 'kernel-log');
  const following = kinds.slice(point.before.length, -1);
  t.same(kinds.slice(0, point.before.length), point.before, `records: ${kinds.join(' ')}`);
  t.equal(kinds[kinds.length - 1], 'end', 'the end record is last');
  t.same(following, point.casesMayFollow ? following.map(() => 'case') : [], 'between them: nothing, or only whole cases where the signal races the next case');
  t.equal(run.end?.interrupted, true, 'the end record says the run was interrupted');
  const recorded = new Set(run.cases.map((c) => `${c.config}/${c.caseId}`));
  t.same(run.end?.notRun, run.run.planned.filter((k) => !recorded.has(k)), 'and lists the cases that did not run');
  for (const c of run.cases) t.equal(c.status, 'done', `${c.caseId} was recorded whole before the signal`);
}

for (const point of POINTS) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    t.test(`${signal} ${point.name}`, (t) => interrupt(t, point, signal));
  }
}
