// Bad input (issue 5): options, configs, case globs, hold and settle times,
// directories, devices, run files and kernel specs that daxpin must refuse. Each
// gives exit code 2, nothing on stdout and exactly one line on stderr saying what is
// wrong, and leaves nothing behind (no work dir in TMPDIR). Needs root (the device
// and directory checks run as they would for a real run).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { CliResult, runCli } from '../helpers/cli';
import { devString } from '../../lib/host/mountinfo';
import { runAText } from '../fixtures/runs';
import { SCHEMA_VERSION } from '../../lib/outcome';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-badinput-'));
const files = path.join(tmp, 'files');
const cliTmp = path.join(tmp, 'tmpdir');
const ro = path.join(tmp, 'ro');
const rw = path.join(tmp, 'rw');
for (const d of [files, cliTmp, ro, rw]) fs.mkdirSync(d);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'daxpin-test-ro', ro]);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'daxpin-test-rw', rw]);
t.teardown(() => {
  for (const m of [ro, rw]) execFileSync('umount', [m]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const file = (name: string, text: string): string => {
  const p = path.join(files, name);
  fs.writeFileSync(p, text);
  return p;
};
const good = file('a.jsonl', runAText());
const regular = file('regular.txt', 'not a directory, not a device\n');
const corrupt = file('corrupt.jsonl', (() => {
  const lines = runAText().split('\n');
  lines.splice(2, 0, '{"record":"case", this is not json');
  return lines.join('\n');
})());
const foreign = file('other.json', '{"name":"some-package","version":"1.0.0"}\n');
const empty = file('empty.jsonl', '');
const futureSchema = file('future.jsonl', runAText().replace(new RegExp(`"schema":${SCHEMA_VERSION}`, 'g'), '"schema":99'));
const missing = path.join(files, 'missing.jsonl');

/** The whole disk holding the root filesystem, as /dev/NAME. */
function rootDisk(): string | null {
  try {
    const real = fs.realpathSync(`/sys/dev/block/${devString(fs.statSync('/').dev)}`);
    const disk = fs.existsSync(path.join(real, 'partition')) ? path.basename(path.dirname(real)) : path.basename(real);
    return fs.statSync(`/dev/${disk}`).isBlockDevice() ? `/dev/${disk}` : null;
  } catch {
    return null;
  }
}
const rootDev = rootDisk();
const vmRunner = fs.existsSync(path.join(__dirname, '..', '..', 'lib', 'vm', 'runner.js'));

interface Bad {
  why: string;
  args: string[];
  says: RegExp;
  skip?: string | false;
}

const BAD: Bad[] = [
  { why: 'unknown option', args: ['run', '--scratch', '--bogus'], says: /unknown option '--bogus'/ },
  { why: 'unknown command', args: ['frobnicate'], says: /unknown command 'frobnicate'/ },
  { why: 'unknown config', args: ['run', '--scratch', '--config', 'ext5'], says: /unknown config "ext5"; known: ext4-dax, .*tmpfs/ },
  { why: 'unknown config among known ones', args: ['list', '--config', 'ext4,nope'], says: /unknown config "nope"/ },
  { why: '--cases matching nothing (run)', args: ['run', '--scratch', '--cases', 'nomatch*'], says: /no case matches "nomatch\*"/ },
  { why: '--cases matching nothing (list)', args: ['list', '--cases', 'vmsplice.nothing.*'], says: /no case matches "vmsplice\.nothing\.\*"/ },
  { why: '--hold-ms 0', args: ['run', '--scratch', '--hold-ms', '0'], says: /--hold-ms must be between 1 and 60000, got 0/ },
  { why: '--hold-ms -5', args: ['run', '--scratch', '--hold-ms', '-5'], says: /--hold-ms must be a whole number of milliseconds, got "-5"/ },
  { why: '--hold-ms abc', args: ['run', '--scratch', '--hold-ms', 'abc'], says: /--hold-ms must be a whole number of milliseconds, got "abc"/ },
  { why: '--hold-ms 1.5', args: ['run', '--scratch', '--hold-ms', '1.5'], says: /--hold-ms must be a whole number/ },
  { why: '--hold-ms 999999999', args: ['run', '--scratch', '--hold-ms', '999999999'], says: /--hold-ms must be between 1 and 60000, got 999999999/ },
  { why: '--hold-ms without a value', args: ['run', '--scratch', '--hold-ms'], says: /option '--hold-ms <n>' argument missing/ },
  { why: '--settle-ms 0', args: ['run', '--scratch', '--settle-ms', '0'], says: /--settle-ms must be between 1 and 600000, got 0/ },
  { why: '--settle-ms too long', args: ['run', '--scratch', '--settle-ms', '600001'], says: /--settle-ms must be between 1 and 600000, got 600001/ },
  { why: '--canary-kb negative', args: ['run', '--scratch', '--canary-kb', '-1'], says: /--canary-kb must be a whole number/ },
  { why: '--matrix bogus', args: ['run', '--scratch', '--matrix', 'bogus'], says: /argument 'bogus' is invalid\. Allowed choices are default, full, smoke/ },
  { why: '--dir that does not exist', args: ['run', '--dir', path.join(tmp, 'nope')], says: /--dir .*nope does not exist/ },
  { why: '--dir that is a regular file', args: ['run', '--dir', regular], says: /--dir .*regular\.txt is not a directory/ },
  { why: '--dir on a read-only filesystem', args: ['run', '--dir', ro], says: /--dir .*ro is on a read-only filesystem/ },
  { why: '--dir on the root filesystem', args: ['run', '--dir', '/'], says: /--dir \/ is on the root filesystem/ },
  { why: '--dir on a filesystem daxpin does not run on', args: ['run', '--dir', '/proc'], says: /--dir \/proc is on proc; daxpin runs on ext4, xfs and tmpfs/ },
  { why: '--dir with a config of another filesystem', args: ['run', '--dir', rw, '--config', 'xfs'], says: /config xfs needs xfs, but --dir .*rw is on tmpfs/ },
  { why: '--dir together with --scratch', args: ['run', '--dir', rw, '--scratch'], says: /give only one of --dir, --scratch and --device/ },
  { why: '--device /dev/null', args: ['run', '--device', '/dev/null'], says: /refusing to format \/dev\/null: it is a character device, not a pmem or loop block device/ },
  { why: '--device that does not exist', args: ['run', '--device', '/dev/daxpin-nonexistent'], says: /refusing \/dev\/daxpin-nonexistent: no such file or device/ },
  { why: '--device that is a regular file', args: ['run', '--device', regular], says: /it is a regular file, not a pmem or loop block device/ },
  {
    why: '--device the root disk',
    args: ['run', '--device', rootDev ?? '/dev/root'],
    says: /it holds the root filesystem .*daxpin never formats it/,
    skip: rootDev === null && 'no block device node for the root disk',
  },
  { why: '--out in a directory that does not exist', args: ['run', '--scratch', '--out', path.join(tmp, 'no', 'x.jsonl')], says: /cannot write --out .*x\.jsonl: its directory does not exist/ },
  { why: 'report of a missing file', args: ['report', missing], says: /missing\.jsonl: no such file/ },
  { why: 'report of a directory', args: ['report', files], says: /files is a directory; give the run's \.jsonl file/ },
  { why: 'report of a corrupt JSONL', args: ['report', corrupt], says: /corrupt\.jsonl line 3 is not JSON/ },
  { why: 'report of JSON that is not daxpin\'s', args: ['report', foreign], says: /other\.json line 1 has no daxpin "record" field; not a daxpin run file/ },
  { why: 'report of an empty file', args: ['report', empty], says: /empty\.jsonl is empty; not a daxpin run file/ },
  { why: 'report of another schema version', args: ['report', futureSchema], says: new RegExp(`schema version 99, this daxpin reads version ${SCHEMA_VERSION}`) },
  { why: 'report --format bogus', args: ['report', '--format', 'bogus', good], says: /unknown --format "bogus"; use one of html, md, junit, tap, kcidb/ },
  { why: 'report of the same run twice', args: ['report', good, good], says: /are the same run/ },
  { why: 'compare with one run missing', args: ['compare', good], says: /missing required argument 'new'/ },
  { why: 'compare with a corrupt run', args: ['compare', corrupt, good], says: /corrupt\.jsonl line 3 is not JSON/ },
  { why: 'vm without --kernel', args: ['vm'], says: /required option '--kernel <spec>' not specified/ },
  { why: 'vm with an unknown config', args: ['vm', '--kernel', '6.1', '--config', 'nope'], says: /unknown config "nope"/ },
  { why: 'vm --kernel 5.99 (no such Debian kernel)', args: ['vm', '--kernel', '5.99'], says: /no Debian kernel package matches "5\.99"/, skip: !vmRunner && 'lib/vm/runner.js not built' },
];

t.test(`${BAD.length} bad inputs`, async (t) => {
  t.ok(BAD.filter((b) => !b.skip).length >= 20, 'at least 20 bad inputs are checked');
  // Two at a time: this machine has two cores.
  const results = new Map<Bad, CliResult>();
  const queue = BAD.filter((b) => !b.skip);
  await Promise.all(
    [0, 1].map(async () => {
      for (let b = queue.shift(); b; b = queue.shift()) results.set(b, await runCli(b.args, { TMPDIR: cliTmp }));
    }),
  );
  for (const b of BAD) {
    t.test(b.why, { skip: b.skip || false }, async (t) => {
      const r = results.get(b)!;
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      t.equal(r.code, 2, `exit code 2 for daxpin ${b.args.join(' ')}`);
      t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
      t.match(lines[0], /^daxpin: /, 'it says who is speaking');
      t.match(lines[0], b.says, 'and what is wrong');
      t.equal(r.stdout, '', 'nothing on stdout');
    });
  }
  t.test('nothing is left behind', async (t) => {
    t.same(fs.readdirSync(cliTmp), [], 'no work dir left in TMPDIR');
    t.notMatch(fs.readFileSync('/proc/mounts', 'utf8'), cliTmp);
  });
});
