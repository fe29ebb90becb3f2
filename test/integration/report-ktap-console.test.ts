// `daxpin run --ktap-console FILE` on this host's kernel: the KTAP lines written as the cases
// finish are strict KTAP v1 and say what `daxpin report --format ktap` says of the same JSONL.
// Needs root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { renderReport } from '../../lib/report/render';
import { readRun } from '../../lib/report/runfile';
import { runCli, testDir } from '../helpers/cli';
import { ktapLeaves, parseKtap } from '../helpers/ktap';

t.test('KTAP on a console file as the run goes', async (t) => {
  const tmp = testDir(t, 'daxpin-ktap-');
  const out = path.join(tmp, 'run.jsonl');
  const ktap = path.join(tmp, 'console.ktap');
  const cases = 'none.truncate-shrink.pte-shared,odirect-read.punch-hole.pte-shared,uring-fixed.truncate-zero.pte-sync';
  const r = await runCli(['run', '--scratch', '--config', 'tmpfs,ext4', '--cases', cases, '--matrix', 'full', '--hold-ms', '50', '--settle-ms', '500', '--out', out, '--ktap-console', ktap], { TMPDIR: tmp });
  t.equal(r.code, 0, r.stderr);
  const doc = parseKtap(fs.readFileSync(ktap, 'utf8'));
  t.same(
    doc.tests.map((s) => s.subtestName),
    ['tmpfs', 'ext4'].map((c) => `${readRun(out).run.kernel} ${c}`),
    'one suite per config, in the order given',
  );
  const leaves = ktapLeaves(doc);
  t.equal(leaves.size, 2 * 4, 'three cases and the config test per config');
  t.same(new Map([...leaves].sort()), new Map([...ktapLeaves(parseKtap(renderReport([readRun(out)], 'ktap')))].sort()), 'the report agrees');
  t.equal(leaves.get(`${readRun(out).run.kernel} ext4/uring-fixed.truncate-zero.pte-sync`), 'skip', 'MAP_SYNC on page cache is refused: SKIP');
});

t.test('a console that cannot be opened: one line, exit 2, nothing run', async (t) => {
  const tmp = testDir(t, 'daxpin-ktap-');
  const out = path.join(tmp, 'run.jsonl');
  const r = await runCli(['run', '--scratch', '--config', 'tmpfs', '--cases', 'none.truncate-shrink.pte-shared', '--out', out, '--ktap-console', path.join(tmp, 'no/such/dir')], { TMPDIR: tmp });
  t.equal(r.code, 2);
  t.match(r.stderr, /^daxpin: cannot write --ktap-console .*no\/such\/dir: ENOENT\n$/);
  t.notOk(fs.existsSync(out), 'no run file');
});
