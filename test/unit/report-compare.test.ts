import * as path from 'node:path';
import t from 'tap';
import { compareCommand } from '../../lib/report/commands';
import { compareGrid, compareRuns, renderComparison } from '../../lib/report/compare';
import { buildGrid } from '../../lib/report/grid';
import { parseRunText } from '../../lib/report/runfile';
import { KERNEL_B, PLANTED, runAText, runBText } from '../fixtures/runs';
import type { ParsedRun } from '../../lib/report/runfile';

const a = parseRunText(runAText(), 'a.jsonl');
const b = parseRunText(runBText(), 'b.jsonl');

t.test('compare finds the planted regressions and nothing else', async (t) => {
  const cmp = compareRuns(a, b);
  t.same(
    cmp.regressions.map((r) => `${r.key} ${r.violations.map((v) => v.kind).join(',')}`),
    [
      `${PLANTED.crashed} kernel-log,crashed`,
      `${PLANTED.warn} kernel-log,taint`,
      `${PLANTED.foreign} foreign-data,foreign-data`,
      `${PLANTED.fsckConfig} fsck`,
    ],
  );
  t.equal(cmp.regressions[2].reproduce, `daxpin vm --kernel ${KERNEL_B} --config xfs-dax --cases 'vmsplice.truncate-shrink.pte-shared'`);
  t.notOk(
    cmp.regressions.some((r) => r.key === PLANTED.hung),
    'a hang seen on both kernels is a violation, not a regression',
  );
  t.notOk(
    cmp.regressions.some((r) => PLANTED.notRun.includes(r.key)),
    'cases that did not run cannot regress',
  );
});

t.test('changes carry before/after values and new kernel-log signatures', async (t) => {
  const cmp = compareRuns(a, b);
  const change = (key: string) => cmp.changes.find((c) => c.key === key);
  t.match(change(PLANTED.foreign), { before: { outcomeClass: 'ok' }, after: { outcomeClass: 'ok pipe=foreign canary=foreign' } });
  t.match(change(PLANTED.warn), {
    before: { outcomeClass: 'waited buf=written' },
    after: { outcomeClass: 'waited buf=written' },
    newSignatures: ['WARNING: at fs/dax.c:N dax_insert_entry', 'Call Trace: <TASK>'],
  });
  t.match(change('xfs-dax/uring-fixed.punch-hole.pte-shared'), { before: { outcomeClass: 'pin-refused:EOPNOTSUPP' }, after: { outcomeClass: 'pin-refused:EFAULT' }, newViolations: [] });
  t.match(change(PLANTED.notRun[0]), { after: { outcomeClass: 'not-run', record: null } });
  t.notOk(change('xfs-dax/none.truncate-shrink.pte-shared'), 'unchanged cases are left out');
  t.match(cmp.configChanges, [{ config: 'xfs', differences: ['fsck: clean → failed (exit 1)'] }]);
  t.same(cmp.onlyInBase, []);
  t.same(cmp.onlyInNext, []);

  const text = renderComparison(cmp);
  t.match(text, /^# daxpin compare: 6\.12\.38\+deb13-amd64 → 6\.16\.3\+deb14-amd64/);
  t.match(text, '## 4 regression(s): an invariant fails in next that held in base');
  t.match(text, '| `ext4-dax/uring-fixed.*.* (9)` `xfs-dax/uring-fixed.*.* (8 of 9)` | `pin-refused:EOPNOTSUPP` | `pin-refused:EFAULT` |');
  t.match(text, '| `xfs-dax/vmsplice.truncate-shrink.pte-shared` | `ok` (op ok, returned at 3 ms) | `ok pipe=foreign canary=foreign` (op ok, returned at 3 ms) **foreign-data** |');
  t.match(text, '  - `WARNING: at fs/dax.c:N dax_insert_entry`');
});

t.test('the other way round, the fixed long-term pin is no regression but B→A brings it back', async (t) => {
  const cmp = compareRuns(b, a);
  t.same(
    cmp.regressions.map((r) => r.key),
    [PLANTED.longterm],
  );
});

t.test('a run compared with itself has no changes', async (t) => {
  const cmp = compareRuns(a, a);
  t.same(cmp.changes, []);
  t.same(cmp.regressions, []);
  t.match(renderComparison(cmp), 'No regressions');
  t.match(renderComparison(cmp), 'No outcome changes.');
});

t.test('cases planned in one run only are listed', async (t) => {
  const lines = runAText().split('\n');
  const fewer = lines
    .map((l) => (l.startsWith('{"record":"run"') ? l.replace('"xfs/none.truncate-shrink.pte-shared",', '') : l))
    .filter((l) => !(l.includes('"caseId":"none.truncate-shrink.pte-shared"') && l.includes('"config":"xfs"')))
    .join('\n');
  const cmp = compareRuns(parseRunText(fewer, 'fewer.jsonl'), a);
  t.same(cmp.onlyInNext, ['xfs/none.truncate-shrink.pte-shared']);
  t.match(renderComparison(cmp), '\n## Only in next (1)\n\n- `xfs/none.truncate-shrink.pte-shared`\n');
  const back = compareRuns(a, parseRunText(fewer, 'fewer.jsonl'));
  t.same(back.onlyInBase, ['xfs/none.truncate-shrink.pte-shared']);
  t.match(renderComparison(back), '\n## Only in base (1)\n\n- `xfs/none.truncate-shrink.pte-shared`\n');
});

t.test('compare command: exit 1 on a regression, 0 without', async (t) => {
  const dir = t.testdir({ 'a.jsonl': runAText(), 'b.jsonl': runBText() });
  const regressed = compareCommand({ base: path.join(dir, 'a.jsonl'), next: path.join(dir, 'b.jsonl') });
  t.equal(regressed.exitCode, 1);
  t.match(regressed.output, '4 regression(s)');
  t.same(regressed.messages, [`last line of ${path.join(dir, 'b.jsonl')} is incomplete (killed run?); ignored`]);
  const same = compareCommand({ base: path.join(dir, 'a.jsonl'), next: path.join(dir, 'a.jsonl') });
  t.equal(same.exitCode, 0);
});

t.test('the whole comparison of the two fixture runs, as a reader gets it', async (t) => {
  // Every section at once, in order: the run lines, each regression with its
  // reproducer, outcome changes grouped by transition, new signatures, config changes.
  t.equal(
    renderComparison(compareRuns(a, b)),
    `# daxpin compare: 6.12.38+deb13-amd64 → 6.16.3+deb14-amd64

- base: a.jsonl: kernel 6.12.38+deb13-amd64, native, run runA-20250101, 108 cases
- next: b.jsonl: kernel 6.16.3+deb14-amd64, vm/tcg, run runB-20250102, 105 cases

## 4 regression(s): an invariant fails in next that held in base

- \`ext4-dax/vmsplice.punch-hole.pte-shared\`: kernel-log (BUG: unable to handle page fault for address: ADDR); crashed (kernel crashed or wedged: Kernel panic - not syncing: Fatal exception)
  - reproduce: \`daxpin vm --kernel 6.16.3+deb14-amd64 --config ext4-dax --cases 'vmsplice.punch-hole.pte-shared'\`
- \`xfs-dax/odirect-read.punch-hole.pmd-shared\`: kernel-log (WARNING: at fs/dax.c:N dax_insert_entry); taint (kernel taint changed 0 -> 512)
  - reproduce: \`daxpin vm --kernel 6.16.3+deb14-amd64 --config xfs-dax --cases 'odirect-read.punch-hole.pmd-shared'\`
- \`xfs-dax/vmsplice.truncate-shrink.pte-shared\`: foreign-data (the pipe view holds another file's bytes); foreign-data (the canary view holds another file's bytes)
  - reproduce: \`daxpin vm --kernel 6.16.3+deb14-amd64 --config xfs-dax --cases 'vmsplice.truncate-shrink.pte-shared'\`
- \`xfs\`: fsck (xfs_repair -n exited 1: agi unlinked bucket 5 is 12345 in ag 0 (inode=12345))

## Outcome changes (33 cases)

| cases | 6.12.38+deb13-amd64 | 6.16.3+deb14-amd64 |
|---|---|---|
| \`ext4-dax/uring-fixed.*.* (9)\` \`xfs-dax/uring-fixed.*.* (8 of 9)\` | \`pin-refused:EOPNOTSUPP\` | \`pin-refused:EFAULT\` |
| \`ext4-dax/vmsplice.punch-hole.pte-shared\` | \`ok\` (op ok, returned at 3 ms) | \`crashed\` (status crashed, op failed) **kernel-log, crashed** |
| \`ext4-dax/vmsplice.punch-hole.{pte-sync,pmd-shared} (2)\` | \`ok\` | \`not-run\` |
| \`ext4-dax/vmsplice.ficlone-src.pte-shared\` | \`op-refused:EOPNOTSUPP\` (op EOPNOTSUPP, returned at 3 ms) | \`not-run\` (planned, no record) |
| \`xfs-dax/{none,odirect-read,vmsplice}.ficlone-src.* (9)\` | \`op-refused:EINVAL\` | \`waited\` |
| \`xfs-dax/uring-fixed.ficlone-src.pmd-shared\` | \`waited\` (op ok, returned at 503 ms, 3 ms after release, PMD fault seen) **longterm-pin-on-fsdax** | \`pin-refused:EFAULT\` (pin EFAULT, PMD fault seen) |
| \`xfs-dax/vmsplice.truncate-shrink.pte-shared\` | \`ok\` (op ok, returned at 3 ms) | \`ok pipe=foreign canary=foreign\` (op ok, returned at 3 ms) **foreign-data** |
| \`xfs/uring-fixed.truncate-shrink.pte-shared\` | \`error\` (status error) | \`ok\` (op ok, returned at 3 ms) |

## New kernel-log signatures (2 cases)

- \`ext4-dax/vmsplice.punch-hole.pte-shared\`:
  - \`BUG: unable to handle page fault for address: ADDR\`
- \`xfs-dax/odirect-read.punch-hole.pmd-shared\`:
  - \`WARNING: at fs/dax.c:N dax_insert_entry\`
  - \`Call Trace: <TASK>\`

## Config changes

- xfs: fsck: clean → failed (exit 1)
`,
  );
});

const parse = (text: string, name: string): ParsedRun => parseRunText(text, name);
const caseOf = (run: ParsedRun, key: string) => run.cases.find((c) => `${c.config}/${c.caseId}` === key)!;

t.test('the run with kernel-log lines, violations and a failed fsck, compared with itself, has no changes', async (t) => {
  const cmp = compareRuns(b, b);
  t.same(cmp.changes, [], 'a signature or violation seen in both runs is not new');
  t.same(cmp.regressions, []);
  t.same(cmp.configChanges, []);
});

t.test('a case that did not run in base regresses nothing in next', async (t) => {
  const base = parse(runBText(), 'base.jsonl');
  base.cases = base.cases.filter((c) => `${c.config}/${c.caseId}` !== PLANTED.crashed);
  const cmp = compareRuns(base, b);
  t.notOk(cmp.regressions.some((r) => r.key === PLANTED.crashed));
  t.match(cmp.changes.find((c) => c.key === PLANTED.crashed), { before: { outcomeClass: 'not-run' }, after: { outcomeClass: 'crashed' }, newViolations: [] });
});

t.test('same class in both runs: a new kernel-log line is a change, a new taint a regression too', async (t) => {
  const next = parse(runAText(), 'next.jsonl');
  const quiet = 'xfs/none.punch-hole.pte-shared';
  const tainted = 'xfs/none.truncate-shrink.pte-shared';
  caseOf(next, quiet).kernelLog = [{ level: 6, signature: 'XFS (loopN): Ending clean mount', text: 'XFS (loop0): Ending clean mount' }];
  Object.assign(caseOf(next, tainted), { taintedBefore: 0, taintedAfter: 512 });
  const base = parse(runAText(), 'base.jsonl');
  Object.assign(caseOf(base, tainted), { taintedBefore: 0, taintedAfter: 0 });
  const cmp = compareRuns(base, next);
  t.same(
    cmp.changes.map((c) => [c.key, c.before.outcomeClass === c.after.outcomeClass, c.newSignatures, c.newViolations.map((v) => v.kind)]),
    [
      [tainted, true, [], ['taint']],
      [quiet, true, ['XFS (loopN): Ending clean mount'], []],
    ],
  );
  t.same(cmp.regressions.map((r) => r.key), [tainted]);
  const text = renderComparison(cmp);
  t.match(text, '## New kernel-log signatures (1 cases)\n\n- `xfs/none.punch-hole.pte-shared`:\n  - `XFS (loopN): Ending clean mount`\n');
  t.notMatch(text, '## Outcome changes', 'no class changed');
});

t.test('of a grid of three runs, a case only the third planned is in neither of the first two', async (t) => {
  const third = parse(runAText(), 'third.jsonl');
  third.run.planned = [...third.run.planned, 'xfs/none.punch-hole.pte-private'];
  const cmp = compareGrid(buildGrid([a, b, third]));
  t.same(cmp.onlyInBase, []);
  t.same(cmp.onlyInNext, []);
  t.same(cmp.regressions, compareRuns(a, b).regressions);
});

t.test('config changes: fsck run in next only; a difference beside an fsck failure both runs had', async (t) => {
  const base = parse(runBText(), 'base.jsonl');
  const next = parse(runBText(), 'next.jsonl');
  base.configs.find((c) => c.config === 'xfs-dax')!.fsck = null;
  next.configs.find((c) => c.config === PLANTED.fsckConfig)!.daxVerified = true;
  const cmp = compareRuns(base, next);
  t.same(
    cmp.configChanges.map((c) => [c.config, c.differences, c.newViolations]),
    [
      ['xfs-dax', ['fsck: n/a → clean'], []],
      [PLANTED.fsckConfig, ['DAX verified: no → yes'], []],
    ],
  );
  t.same(cmp.regressions, [], 'the fsck failure was there in base');
});
