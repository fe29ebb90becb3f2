// Issue 13's failure classes through the real CLI: output files daxpin must not
// clobber or hang on, a full disk mid-run, a config that cannot be set up, SIGHUP,
// leftovers of a SIGKILLed run (`run` warns, `daxpin cleanup` removes them), and the
// messages. Needs root (scratch runs mount loop filesystems and FUSE).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { readRun } from '../../lib/report/runfile';
import { CLI, HELD_PIN_CASES, heldPinReached, jsonlLines, runCli, startHeldPinRun, testDir } from '../helpers/cli';
import { NOTHING_LEFT, cleanUpAfterKill, leftovers, workerOf } from '../helpers/machine';

const CONTROL = 'none.punch-hole.pte-shared';

/** A finished tiny run file to feed report and compare. */
async function tinyRun(t: Test, dir: string, name = 'run.jsonl'): Promise<string> {
  const out = path.join(dir, name);
  const r = await runCli(['run', '--scratch', '--config', 'tmpfs', '--cases', CONTROL, '--hold-ms', '20', '--out', out], { TMPDIR: dir });
  t.equal(r.code, 0, `the tiny run ran: ${r.stderr.trim().split('\n').pop()}`);
  return out;
}

/** A held-pin run, stopped and undone at the test's end whatever happened. */
function heldPinRun(t: Test, prefix: string): ReturnType<typeof startHeldPinRun> {
  const run = startHeldPinRun(prefix);
  t.teardown(async () => {
    if (run.cli.child.exitCode === null) run.cli.child.kill('SIGKILL');
    await run.cli.result;
    await cleanUpAfterKill(run.tmp);
    fs.rmSync(run.tmp, { recursive: true, force: true });
  });
  return run;
}

function oneLine(t: Test, stderr: string, re: RegExp): void {
  t.equal(stderr.split('\n').filter(Boolean).length, 1, 'one line on stderr');
  t.match(stderr, re);
  t.notMatch(stderr, /daxpin: daxpin:/, 'the prefix once');
}

t.test('run --out an existing file: refused, the earlier run untouched', async (t) => {
  const dir = testDir(t, 'daxpin-r2-');
  const out = await tinyRun(t, dir);
  const before = fs.readFileSync(out, 'utf8');
  const r = await runCli(['run', '--scratch', '--config', 'tmpfs', '--cases', CONTROL, '--out', out], { TMPDIR: dir });
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /^daxpin: cannot open .*run\.jsonl: it exists already/);
  t.equal(fs.readFileSync(out, 'utf8'), before);
  t.equal((await runCli(['report', out])).code, 0, 'and report still reads it');
});

t.test('report and compare --out an input run: refused, the input untouched', async (t) => {
  const dir = testDir(t, 'daxpin-r2-');
  const a = await tinyRun(t, dir, 'a.jsonl');
  const b = await tinyRun(t, dir, 'b.jsonl');
  const before = fs.readFileSync(a, 'utf8');
  const link = path.join(dir, 'alias.md');
  fs.symlinkSync(a, link);
  for (const args of [['report', a, '--out', a], ['report', a, b, '--out', link], ['compare', a, b, '--out', a]]) {
    const r = await runCli(args);
    t.equal(r.code, 2, args.join(' '));
    oneLine(t, r.stderr, /is the input .*a\.jsonl; it would be overwritten/);
  }
  t.equal(fs.readFileSync(a, 'utf8'), before);
});

t.test('special files: run/report --out /dev/null or a FIFO are refused at once; a closed stdout pipe is no crash', async (t) => {
  const dir = testDir(t, 'daxpin-r2-');
  const run = await tinyRun(t, dir);
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const started = Date.now();
  for (const args of [
    ['run', '--scratch', '--config', 'tmpfs', '--cases', CONTROL, '--out', fifo],
    ['run', '--scratch', '--config', 'tmpfs', '--cases', CONTROL, '--out', '/dev/null'],
    ['report', run, '--out', fifo],
    ['report', run, '--out', '/dev/null'],
    ['report', fifo],
  ]) {
    const r = await runCli(args, { TMPDIR: dir });
    t.equal(r.code, 2, args.join(' '));
    oneLine(t, r.stderr, /not a regular file|exists already/);
  }
  t.ok(Date.now() - started < 30_000, 'no open(2) hung');
  t.ok(fs.statSync('/dev/null').isCharacterDevice() && fs.statSync(fifo).isFIFO(), 'both are still what they were');
  // `daxpin report … | head -1`: the reader goes away after one line.
  const child = spawn('sh', ['-c', `"${process.execPath}" "${CLI}" report "${run}" --format html | head -c 10 >/dev/null; echo "exit \${PIPESTATUS:-?}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  await new Promise((resolve) => child.on('close', resolve));
  t.notMatch(stderr, /EPIPE|Error|at /, 'no stack trace on a closed pipe');
});

t.test('a full disk mid-run: exit 2 naming the file, the file valid to its last complete line', async (t) => {
  const dir = testDir(t, 'daxpin-r2-');
  const small = testDir(t, 'daxpin-r2-small-');
  // One 4 KiB page: the run record fits, a few case records do not.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', small]);
  t.teardown(() => execFileSync('umount', [small]));
  const out = path.join(small, 'run.jsonl');
  const r = await runCli(['run', '--scratch', '--config', 'tmpfs', '--cases', 'none.*.pte-shared', '--hold-ms', '1', '--out', out], { TMPDIR: dir });
  t.equal(r.code, 2);
  t.match(r.stderr, new RegExp(`daxpin: cannot write ${out}: no space left on the device`));
  t.notMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  const text = fs.readFileSync(out, 'utf8');
  t.ok(text.endsWith('\n'), 'no torn last line');
  const parsed = readRun(out);
  t.same(parsed.warnings, [], 'report reads it without a warning');
  t.ok(parsed.cases.length < 13, `${parsed.cases.length} cases fit`);
  t.same(leftovers(dir), NOTHING_LEFT, 'and everything was torn down');
});

t.test('a config that cannot be set up, and a run where nothing ran: exit 3, with why', async (t) => {
  const dir = testDir(t, 'daxpin-r2-');
  const tiny = testDir(t, 'daxpin-r2-tiny-');
  // The work dir on a 2 MiB tmpfs: mkfs.xfs on a loop file there runs out of space.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', tiny]);
  t.teardown(async () => {
    // Also unmounts `tiny` itself.
    await cleanUpAfterKill(tiny);
  });
  const out = path.join(dir, 'run.jsonl');
  const r = await runCli(['run', '--scratch', '--config', 'xfs,tmpfs', '--cases', CONTROL, '--hold-ms', '1', '--out', out], { TMPDIR: tiny });
  t.comment(r.stderr.trim().split('\n').join(' | '));
  t.equal(r.code, 3, 'exit 3: the xfs results are missing');
  t.match(r.stderr, /daxpin: in doubt: config xfs was not set up: /);
  const parsed = readRun(out);
  t.equal(parsed.cases.length, 1, 'tmpfs ran');
  t.ok(parsed.configs.some((c) => c.config === 'xfs' && c.error));
  const out2 = path.join(dir, 'run2.jsonl');
  const r2 = await runCli(['run', '--scratch', '--config', 'xfs', '--cases', CONTROL, '--hold-ms', '1', '--out', out2], { TMPDIR: tiny });
  t.equal(r2.code, 3);
  t.match(r2.stderr, /in doubt: no case ran/);
});

t.test('SIGHUP mid-case: the loop stops, the end record is last, exit 129, nothing left, no spurious cleanup failure', async (t) => {
  const run = heldPinRun(t, 'daxpin-r2-hup-');
  await heldPinReached(run, workerOf);
  run.cli.child.kill('SIGHUP');
  const r = await run.cli.result;
  t.comment(r.stderr.trim().split('\n').join(' | '));
  t.equal(r.code, 129);
  t.notMatch(r.stderr, /cleanup of .* failed/, 'no spurious cleanup failure');
  const lines = jsonlLines(run.out);
  t.equal(lines[lines.length - 1].record, 'end', 'nothing after the end record');
  t.equal(lines[lines.length - 1].interrupted, true);
  t.notOk(lines.some((l) => l.record === 'case' && l.caseId === HELD_PIN_CASES[1] && l.config === 'tmpfs'), 'tmpfs never ran');
  t.same(leftovers(run.tmp), NOTHING_LEFT);
});

t.test('after a SIGKILL: run warns about the leftovers, daxpin cleanup removes exactly them', async (t) => {
  const run = startHeldPinRun('daxpin-r2-kill-');
  t.teardown(async () => {
    await cleanUpAfterKill(run.tmp);
    fs.rmSync(run.tmp, { recursive: true, force: true });
  });
  await heldPinReached(run, workerOf);
  run.cli.child.kill('SIGKILL');
  await run.cli.result;
  const left = leftovers(run.tmp);
  t.ok(left.mounts.length > 0 && left.loops.length > 0, `the kill left mounts (${left.mounts.length}) and a loop device`);
  const list = await runCli(['cleanup', '--dry-run'], { TMPDIR: run.tmp });
  t.equal(list.code, 0);
  t.match(list.stderr, new RegExp(`would remove .*${run.tmp}.*left by pid ${run.cli.pid}`));
  const warned = await runCli(['run', '--scratch', '--config', 'tmpfs', '--cases', CONTROL, '--hold-ms', '1', '--out', path.join(run.tmp, 'second.jsonl')], { TMPDIR: run.tmp });
  t.match(warned.stderr, /daxpin: an earlier daxpin left \d+ thing\(s\) behind .*; daxpin cleanup removes them/);
  const cleaned = await runCli(['cleanup'], { TMPDIR: run.tmp });
  t.comment(cleaned.stderr.trim().split('\n').join(' | '));
  t.equal(cleaned.code, 0);
  t.same(leftovers(run.tmp), NOTHING_LEFT, 'no mount, loop device or process of the killed run is left');
  t.same(fs.readdirSync(run.tmp).filter((n) => n.startsWith('daxpin-')), [], 'its work dir is gone');
  const again = await runCli(['cleanup'], { TMPDIR: run.tmp });
  t.match(again.stderr, /nothing left over/);
});

t.test('cleanup never touches a live daxpin\'s things', async (t) => {
  const run = heldPinRun(t, 'daxpin-r2-live-');
  await heldPinReached(run, workerOf);
  const worker = workerOf(run.cli.pid);
  const r = await runCli(['cleanup'], { TMPDIR: run.tmp });
  t.notMatch(r.stderr, new RegExp(run.tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'nothing of the live run is touched');
  t.equal(workerOf(run.cli.pid), worker, 'its worker is still there');
  run.cli.child.kill('SIGINT');
  t.equal((await run.cli.result).code, 130);
});

t.test('messages: units in option errors, ignored combinations refused, the prefix once', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--scratch', '--canary-kb', 'lots'], /^daxpin: --canary-kb must be a whole number of KiB, got "lots"$/],
    [['run', '--scratch', '--hold-ms', '0'], /^daxpin: --hold-ms must be between 1 and 60000 milliseconds, got 0$/],
    [['vm', '--kernel', '6.1', '--pmem-mb', '1'], /^daxpin: --pmem-mb must be between 256 and 16384 MiB, got 1$/],
    [['vm', '--kernel', '6.1', '--max-boots', 'x'], /^daxpin: --max-boots must be a whole number of boots/],
    [['run', '--out', 'x.jsonl'], /^daxpin: --out applies to a run with --dir, --scratch or --device/],
    [['run', '--run-id', 'x', '--inflight', 'y'], /^daxpin: --run-id, --inflight apply to a run with --dir/],
    [['run', '--scratch', '--config', 'xfs-dax'], /^daxpin: --scratch makes page-cache loop filesystems; xfs-dax needs --device/],
    [['run', '--device', '/dev/null'], /^daxpin: refusing to format \/dev\/null: it is a character device/],
    [['report', 'no-such.jsonl'], /^daxpin: no-such.jsonl: no such file$/],
    [['report', __filename, '--expectations', '/dev/zero'], /^daxpin: \/dev\/zero is not a regular file/],
  ];
  const dir = testDir(t, 'daxpin-r2-');
  for (const [args, re] of cases) {
    const r = await runCli(args, { TMPDIR: dir });
    t.equal(r.code, 2, args.join(' '));
    oneLine(t, r.stderr.trim(), re);
  }
  t.same(fs.readdirSync(dir), [], 'nothing made in the temp dir');
});
