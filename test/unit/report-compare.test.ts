import * as path from 'node:path';
import t from 'tap';
import { compareCommand } from '../../lib/report/commands';
import { compareRuns, renderComparison } from '../../lib/report/compare';
import { parseRunText } from '../../lib/report/runfile';
import { KERNEL_B, PLANTED, runAText, runBText } from '../fixtures/runs';

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
  t.same(compareRuns(a, parseRunText(fewer, 'fewer.jsonl')).onlyInBase, ['xfs/none.truncate-shrink.pte-shared']);
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
