// Durable results (issue 5): a run killed with SIGKILL in the middle of a case
// keeps every record it wrote, its file is valid up to its last complete line, and
// `daxpin report` reads it (and a file with a torn last line, saying so). SIGKILL
// cannot be caught: the killed process cannot unmount or detach anything, so this
// test cleans up after it, and checks that its worker and FUSE peer at least go
// away by themselves. Needs root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { notRunKeys, readRun } from '../../lib/report/runfile';
import { HELD_PIN_CASES as CASES, heldPinReached, jsonlLines, runCli, startHeldPinRun, waitFor } from '../helpers/cli';
import { NOTHING_LEFT, cleanUpAfterKill, leftovers, loopsUnder, mountsUnder, processesUnder, workerOf } from '../helpers/machine';

t.test('SIGKILL mid-case: the file is valid to its last line; what was mounted must be undone by someone else', async (t) => {
  const run = startHeldPinRun('daxpin-durable-');
  const { cli, tmp, out } = run;
  t.teardown(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    await cli.result;
    await cleanUpAfterKill(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  await heldPinReached(run, workerOf);
  cli.child.kill('SIGKILL');
  const r = await cli.result;
  t.equal(r.signal, 'SIGKILL');

  const parsed = readRun(out);
  t.same(parsed.warnings, [], 'every line written is complete: records are written a line at a time');
  t.same(
    jsonlLines(out).map((l) => l.record).filter((k) => k !== 'kernel-log'),
    ['run', 'case'],
    'the run record and the case that finished (and the kernel log between them)',
  );
  t.equal(parsed.end, null, 'no end record: the process could not write one');
  t.equal(parsed.cases[0].caseId, CASES[0]);
  t.equal(parsed.cases[0].status, 'done');
  t.same(notRunKeys(parsed), parsed.run.planned.slice(1), 'the rest of the plan shows as not run');

  // The worker sees its IPC channel close and stops its FUSE peer, which aborts the
  // held request; both exit without help.
  await waitFor('the worker and peer to exit', () => processesUnder(tmp).length === 0, 20_000, 100).catch(() => undefined);
  t.same(processesUnder(tmp), [], 'no worker or peer outlives the killed run');
  const left = leftovers(tmp);
  t.comment(`left by the killed run: ${JSON.stringify(left)}`);
  t.ok(mountsUnder(tmp).some((m) => m.fsType === 'ext4'), 'the scratch ext4 is still mounted (a killed process cannot unmount)');
  t.equal(loopsUnder(tmp).length, 1, 'and its loop device still attached');
  const done = await cleanUpAfterKill(tmp);
  t.comment(`cleaned up: ${done.join('; ')}`);
  t.same(leftovers(tmp), NOTHING_LEFT, 'nothing left after the cleanup');

  const report = await runCli(['report', '--format', 'md', out]);
  t.equal(report.code, 0, 'report reads the killed run');
  t.equal(report.stderr, '');
  t.match(report.stdout, parsed.run.runId);

  const torn = path.join(tmp, 'torn.jsonl');
  const text = fs.readFileSync(out, 'utf8');
  const lastLine = text.trimEnd().split('\n').pop()!;
  fs.writeFileSync(torn, `${text}${lastLine.slice(0, Math.floor(lastLine.length / 2))}`);
  const tornReport = await runCli(['report', '--format', 'md', torn]);
  t.equal(tornReport.code, 0, 'a torn last line is accepted');
  t.equal(tornReport.stderr.trim().split('\n').length, 1, 'with one line on stderr');
  t.match(tornReport.stderr, /last line of .*torn\.jsonl is incomplete/);
});
