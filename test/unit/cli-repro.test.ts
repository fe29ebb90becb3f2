// `daxpin repro`: a C program and its setup lines from a case's rows; bad input is one
// line and exit 2. The generated program compiles cleanly for every case it covers.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { CONFIGS, LAYOUT_OPS, MAPPINGS, PIN_METHODS } from '../../lib/cases/matrix';
import { renderReproC, reproCase, reproSupport } from '../../lib/findings/repro-c';
import { runCli } from '../helpers/cli';

t.test('repro writes repro.c and setup.sh from the case rows', async (t) => {
  const dir = t.testdir({});
  const r = await runCli(['repro', 'ext4-dax/odirect-read.truncate-shrink.pte-shared-unmapped', '--c', '--out', dir, '--hold-ms', '500']);
  t.equal(r.code, 0, r.stderr);
  const c = fs.readFileSync(path.join(dir, 'repro.c'), 'utf8');
  const sh = fs.readFileSync(path.join(dir, 'setup.sh'), 'utf8');
  t.match(c, 'ftruncate(fd, PIN_OFF)');
  t.match(c, 'munmap(map, FILE_LEN)', 'unmapped before the op');
  t.match(c, '#define HOLD_MS 500');
  t.match(sh, 'mount -o dax "$DEV" "$MNT"');
  t.match(sh, 'dmsetup create daxpin-repro-delay --noudevsync --table "0 2048 delay $LOOP 0 500"');
  const xfs = await runCli(['repro', 'vmsplice.punch-hole.pmd-shared', '--config', 'xfs-dax-inode', '--c']);
  t.equal(xfs.code, 0);
  t.match(xfs.stdout, 'fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_OFF, PIN_LEN)');
  t.match(xfs.stdout, 'mount -o dax=inode "$DEV" "$MNT"');
  t.notMatch(xfs.stdout, 'dmsetup', 'vmsplice needs no peer device');
});

t.test('bad input: one line, exit 2', async (t) => {
  for (const [args, re] of [
    [['repro', 'vmsplice.punch-hole.pte-shared', '--c'], /give the config/],
    [['repro', 'uring-fixed.punch-hole.pte-shared', '--config', 'ext4', '--c'], /does not cover pin method uring-fixed/],
    [['repro', 'vmsplice.nope.pte-shared', '--config', 'ext4', '--c'], /is not a case id/],
    [['repro', 'vmsplice.punch-hole.pte-shared', '--config', 'nope', '--c'], /unknown config "nope"/],
  ] as const) {
    const r = await runCli([...args]);
    t.equal(r.code, 2, args.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1);
    t.match(r.stderr, re);
  }
});

t.test('every covered pin x op compiles without warnings (mappings in turn)', async (t) => {
  const dir = t.testdir({});
  let n = 0;
  for (const pin of PIN_METHODS) {
    for (const op of LAYOUT_OPS) {
      if (reproSupport(pin.name, op.name) !== null) continue;
      // The mapping changes only the mmap flags and the unmap line: each is covered in turn.
      const mapping = MAPPINGS[n % MAPPINGS.length];
      const file = path.join(dir, `${n++}.c`);
      fs.writeFileSync(file, renderReproC(reproCase(CONFIGS[0].name, `${pin.name}.${op.name}.${mapping.name}`)));
    }
  }
  t.ok(n >= 40, `${n} programs`);
  // One cc run over all of them (syntax and warnings only): quick enough for a unit test.
  const out = execFileSync('sh', ['-c', `for f in ${dir}/*.c; do cc -fsyntax-only -Wall -Werror "$f" || echo "FAILED $f"; done`], { encoding: 'utf8' });
  t.equal(out.trim(), '', 'all compile');
});
