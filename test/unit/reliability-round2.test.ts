// Issue 13's failure classes that need no kernel run: results in doubt make the exit
// code, the one durable writer never appends to a run file, never leaves a torn line
// or an empty file, never blocks in open(2) on a FIFO; report input is streamed and
// checked to its nested fields; daxpin's leftover markers; the one glob and package list.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { globToRegExp } from '../../lib/cases/matrix';
import { runDoubts } from '../../lib/engine/run';
import { DaxpinError } from '../../lib/errors';
import { DurableLines, MarkerFile, replaceFileAtomically, writeFileSynced } from '../../lib/host/durable';
import { markedDir, markerOwner } from '../../lib/host/leftovers';
import { fuseConnectionId, signalExitCode } from '../../lib/host/lifecycle';
import { hostPackages, packageOfTool, parsePackageList } from '../../lib/host/packages';
import { parseRunText, readRun, readSmallFile } from '../../lib/report/runfile';
import { CaseRecord, ConfigRecord } from '../../lib/outcome';
import { RUN_A, caseRecord as fixtureCase, runAText } from '../fixtures/runs';

function dir(t: Test): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-r2-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function fifo(t: Test): string {
  const p = path.join(dir(t), 'fifo');
  execFileSync('mkfifo', [p]);
  return p;
}

function thrown(fn: () => unknown): DaxpinError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DaxpinError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

const caseRecord = (): CaseRecord => fixtureCase('xfs', 'none.punch-hole.pte-shared');
const done = (over: Partial<CaseRecord> = {}): CaseRecord => ({ ...caseRecord(), ...over });

t.test('runDoubts: daxpin\'s own failures are doubts, kernel answers are not', async (t) => {
  const base = { planned: ['tmpfs/a', 'tmpfs/b'], cases: [done(), done()], configs: [] as ConfigRecord[], notRun: [] as string[], interrupted: false };
  t.same(runDoubts(base), [], 'a clean run');
  t.same(runDoubts({ ...base, cases: [done(), done({ status: 'error', error: 'x' })] }), ['1 case daxpin could not measure (status error)']);
  t.match(runDoubts({ ...base, cases: [done({ status: 'abandoned' })] })[0], /1 case abandoned/);
  const configError = { record: 'config', config: 'xfs', error: 'mkfs.xfs failed' } as unknown as ConfigRecord;
  t.same(runDoubts({ ...base, configs: [configError] }), ['config xfs was not set up: mkfs.xfs failed']);
  t.same(runDoubts({ ...base, cases: [] }), ['no case ran']);
  t.same(runDoubts({ ...base, cases: [done()], notRun: ['tmpfs/b'] }), ['1 planned case not run']);
  t.same(runDoubts({ ...base, cases: [done()], notRun: ['tmpfs/b'], interrupted: true }), [], 'an interrupted run says so itself');
  t.same(runDoubts({ ...base, planned: [], cases: [] }), [], 'nothing planned (a resumed guest run with all done): nothing in doubt');
});

t.test('DurableLines create: an existing file is refused and left as it was', async (t) => {
  const file = path.join(dir(t), 'run.jsonl');
  fs.writeFileSync(file, 'earlier run\n');
  const err = thrown(() => new DurableLines(file, 'create'));
  t.equal(err.code, 'EWRITE');
  t.match(err.message, new RegExp(`^cannot open ${file}: it exists already`));
  t.equal(fs.readFileSync(file, 'utf8'), 'earlier run\n');
});

t.test('DurableLines: a file it made and never wrote to is removed on close (no 0-byte file)', async (t) => {
  const file = path.join(dir(t), 'run.jsonl');
  new DurableLines(file, 'create').close();
  t.notOk(fs.existsSync(file));
  const kept = new DurableLines(file, 'create');
  kept.writeLine('{"a":1}');
  kept.close();
  t.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n');
});

t.test('MarkerFile: rewritten in place, a shorter text after a longer one reads as itself once trimmed (as the VM runner reads it)', async (t) => {
  const file = path.join(dir(t), 'inflight');
  fs.writeFileSync(file, 'left from an earlier boot\n');
  for (const durability of ['fsync', 'written-through'] as const) {
    const m = new MarkerFile(file, durability);
    t.equal(fs.readFileSync(file, 'utf8'), '', 'opened empty');
    m.set('ext4-dax/odirect-read.truncate-shrink.pte-shared\n');
    m.set('xfs/\n');
    t.equal(fs.readFileSync(file, 'utf8').trim(), 'xfs/');
    m.set('xfs/none.unlink.pmd-shared\n');
    t.equal(fs.readFileSync(file, 'utf8').trim(), 'xfs/none.unlink.pmd-shared');
    m.close();
  }
  t.equal(thrown(() => new MarkerFile(dir(t), 'fsync')).code, 'EWRITE', 'a directory is refused');
});

t.test('DurableLines append after a torn line: the torn tail goes, the next line starts clean', async (t) => {
  const file = path.join(dir(t), 'run.jsonl');
  fs.writeFileSync(file, '{"a":1}\n{"b":');
  const lines = new DurableLines(file, 'append');
  lines.writeLine('{"c":3}');
  lines.close();
  t.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n{"c":3}\n');
});

t.test('a FIFO nobody reads, /dev/null, a directory: refused at once with the path, never a hang', async (t) => {
  const f = fifo(t);
  const started = Date.now();
  t.match(thrown(() => new DurableLines(f, 'append')).message, `cannot write ${f}: it is not a regular file`);
  t.match(thrown(() => writeFileSynced(f, 'x')).message, `cannot write ${f}: it is not a regular file`);
  t.match(thrown(() => replaceFileAtomically(f, 'x')).message, /it is not a regular file \(leave out --out to write to stdout\)/);
  t.match(thrown(() => new DurableLines('/dev/null', 'create')).message, /cannot open \/dev\/null: it exists already/);
  t.match(thrown(() => replaceFileAtomically('/dev/null', 'x')).message, /not a regular file/);
  t.match(thrown(() => new DurableLines(os.tmpdir(), 'append')).message, /it is a directory|not a regular file/);
  t.match(thrown(() => new DurableLines('/nonexistent-dir/x.jsonl', 'create')).message, /cannot open \/nonexistent-dir\/x.jsonl: its directory does not exist/);
  t.ok(Date.now() - started < 2000, 'no open blocked');
  t.ok(fs.statSync('/dev/null').isCharacterDevice(), '/dev/null is still a device');
});

t.test('replaceFileAtomically: the whole text or the old file, never a temp file left', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'report.md');
  fs.writeFileSync(file, 'old');
  replaceFileAtomically(file, 'new');
  t.equal(fs.readFileSync(file, 'utf8'), 'new');
  t.same(fs.readdirSync(d), ['report.md']);
});

const RUN = runAText().split('\n')[0];
t.equal(JSON.parse(RUN).runId, RUN_A);
const CASE = JSON.stringify(caseRecord());

t.test('readRun streams: a line across read chunks, 200 000 repeated records (no stack overflow), one warning', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'big.jsonl');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, `${RUN}\n`);
  const long = { ...caseRecord(), notes: ['x'.repeat(5 * 1024 * 1024)] };
  fs.writeSync(fd, `${JSON.stringify(long)}\n`);
  const batch = `${CASE}\n`.repeat(10_000);
  for (let i = 0; i < 20; i++) fs.writeSync(fd, batch);
  fs.closeSync(fd);
  const parsed = readRun(file);
  t.equal(parsed.cases.length, 1, 'one distinct case');
  t.same(parsed.cases[0].notes, undefined, 'the last record wins');
  t.equal(parsed.warnings.length, 1);
  t.match(parsed.warnings[0], /200000 case records repeat an earlier one/);
});

t.test('a type-confused record: the file and line, never a JavaScript error', async (t) => {
  const bad: Array<[string, (c: Record<string, unknown>) => void, RegExp]> = [
    ['op.errno a number', (c) => ((c.op as Record<string, unknown>).errno = 5), /line 2: case record without a valid "op.errno" \(a string or null expected, got 5\)/],
    ['views.pipe an object', (c) => ((c.views as Record<string, unknown>).pipe = {}), /"views.pipe"/],
    ['kernelLog entries strings', (c) => (c.kernelLog = ['WARNING']), /"kernelLog" \(an array of objects expected/],
    ['kernelLog entry without signature', (c) => (c.kernelLog = [{ level: 4, text: 'x' }]), /"kernelLog\[0\].signature"/],
    ['op.stack a string', (c) => ((c.op as Record<string, unknown>).stack = 'x'), /"op.stack"/],
    ['sigbus numbers', (c) => (c.sigbus = [1]), /"sigbus"/],
  ];
  for (const [name, mutate, why] of bad) {
    const c = JSON.parse(CASE) as Record<string, unknown>;
    mutate(c);
    const err = thrown(() => parseRunText(`${RUN}\n${JSON.stringify(c)}\n`, 'x.jsonl'));
    t.equal(err.code, 'EINPUT', name);
    t.match(err.message, /^x\.jsonl line 2: /, `${name}: names the file and line`);
    t.match(err.message, why, name);
  }
  const planned = JSON.parse(RUN) as Record<string, unknown>;
  planned.planned = [1, 2];
  t.match(thrown(() => parseRunText(`${JSON.stringify(planned)}\n`, 'x.jsonl')).message, /line 1: run record without a valid "planned"/);
});

t.test('report input that is no file: a FIFO, a device, an oversized expectations file', async (t) => {
  const f = fifo(t);
  const started = Date.now();
  t.match(thrown(() => readRun(f)).message, `${f} is not a regular file`);
  t.match(thrown(() => readRun('/dev/zero')).message, '/dev/zero is not a regular file');
  t.match(thrown(() => readSmallFile('/dev/zero', 'the expectations .json file', 1024)).message, /\/dev\/zero is not a regular file/);
  const big = path.join(dir(t), 'e.json');
  fs.writeFileSync(big, ' '.repeat(2048));
  t.match(thrown(() => readSmallFile(big, 'the expectations .json file', 1024)).message, /has 2048 bytes; the expectations .json file is at most 1024 bytes/);
  t.ok(Date.now() - started < 2000, 'nothing blocked');
});

t.test('one glob: `?` is one character, `.` and other regex characters are literal', async (t) => {
  const re = globToRegExp('tmpfs/odirect-rea?.*.pte-shared');
  t.ok(re.test('tmpfs/odirect-read.punch-hole.pte-shared'));
  t.notOk(re.test('tmpfs/odirect-rea.punch-hole.pte-shared'), '`?` is not a regex quantifier');
  t.notOk(globToRegExp('a.b').test('axb'));
  t.ok(globToRegExp('(x)+').test('(x)+'));
});

t.test('daxpin markers: the owner pid of a work dir, fusectl dir or anything under them', async (t) => {
  t.equal(markerOwner('/tmp/daxpin-1234-abCDef'), 1234);
  t.equal(markerOwner('/tmp/x/daxpin-1234-abCDef/mnt-ext4-q/daxpin-ballast'), 1234);
  t.equal(markerOwner('/tmp/daxpin-fusectl-77-Zz'), 77);
  t.equal(markerOwner('/tmp/daxpin-abcdef'), null, 'an old-style dir names no owner: never touched');
  t.equal(markerOwner('/tmp/daxpin-faults-abc/run.jsonl'), null);
  t.equal(markerOwner('/mnt/pmem/daxpin-1a2b3c4d'), null, 'a --dir test dir is not a work dir');
  t.equal(markedDir('/tmp/daxpin-1234-abCDef/mnt-x'), '/tmp/daxpin-1234-abCDef');
});

t.test('fusectl connection ids and signal exit codes', async (t) => {
  t.equal(fuseConnectionId('0:45'), 45);
  t.equal(fuseConnectionId('1:2'), 2 ** 20 + 2);
  t.equal(signalExitCode('SIGINT'), 130);
  t.equal(signalExitCode('SIGTERM'), 143);
  t.equal(signalExitCode('SIGHUP'), 129);
});

t.test('one package list: provision installs it, every tool daxpin runs has its package', async (t) => {
  t.same(parsePackageList('# c\n\nfoo  vm,configs  a,b  why not\nbar test - x\n'), [
    { name: 'foo', uses: ['vm', 'configs'], tools: ['a', 'b'], why: 'why not' },
    { name: 'bar', uses: ['test'], tools: [], why: 'x' },
  ]);
  for (const tool of ['mkfs.ext4', 'e2fsck', 'mkfs.xfs', 'xfs_repair', 'losetup', 'ip', 'rdma']) t.ok(packageOfTool(tool), `${tool} → ${packageOfTool(tool)}`);
  t.same(
    hostPackages('vm').map((p) => p.name),
    ['qemu-system-x86', 'busybox-static', 'kmod', 'xz-utils', 'zstd', 'xfsprogs', 'e2fsprogs', 'libibverbs-dev', 'ibverbs-providers', 'rdma-core', 'iproute2'],
  );
  const provision = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'scripts', 'provision'), 'utf8');
  t.match(provision, /scripts\/packages|\/packages"/, 'provision reads the list');
  t.notMatch(provision, /qemu-system-x86|xfsprogs/, 'and names no package itself');
});

t.test('a field declared as any array takes arrays of objects and of strings', async (t) => {
  const end = { record: 'end', schema: JSON.parse(RUN).schema, runId: RUN_A, finishedAt: 'x', notRun: [], interrupted: false };
  t.equal(parseRunText(`${RUN}\n${JSON.stringify(end)}\n`, 'x.jsonl').end?.runId, RUN_A);
});
