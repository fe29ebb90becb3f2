import t from 'tap';
import { checkExpectations, kernelInRange, kernelVersion, parseExpectations } from '../../lib/report/expectations';
import { renderReport } from '../../lib/report/render';
import { parseRunText } from '../../lib/report/runfile';
import { DaxpinError } from '../../lib/errors';
import { KERNEL_A, KERNEL_B, runAText, runBText } from '../fixtures/runs';

const runs = [parseRunText(runAText(), 'a.jsonl'), parseRunText(runBText(), 'b.jsonl')];

t.test('kernel releases and ranges', async (t) => {
  t.same(kernelVersion('6.12.38+deb13-amd64'), [6, 12, 38]);
  t.same(kernelVersion('7.0-rc3'), [7, 0, 0]);
  t.same(kernelVersion('6.1.0-37-amd64'), [6, 1, 0]);
  t.equal(kernelVersion('linux'), null);
  t.ok(kernelInRange('6.16.3+deb14-amd64', '>=6.15 <7.0'));
  t.notOk(kernelInRange('6.12.38+deb13-amd64', '>=6.15 <7.0'));
  t.notOk(kernelInRange('7.0.0', '>=6.15 <7.0'));
  t.ok(kernelInRange('6.12.38', '6.12.38'));
  t.ok(kernelInRange('6.1.140', '<6.2 || >=6.16'));
  t.ok(kernelInRange('6.16.0', '<6.2 || >=6.16'));
  t.notOk(kernelInRange('6.12.0', '<6.2 || >=6.16'));
  t.ok(kernelInRange('6.12.38', '>6.12.37 <=6.12.38'));
});

t.test('deviations: the last matching entry wins; regexes and globs', async (t) => {
  const expectations = parseExpectations(
    JSON.stringify([
      { kernel: '>=6.0', config: 'xfs-dax', case: 'uring-fixed.*', outcomeClass: 'pin-refused:EOPNOTSUPP', note: 'long-term pins refused on fsdax' },
      { kernel: '>=6.0', case: 'xfs-dax/uring-fixed.ficlone-src.pmd-shared', outcomeClass: '/^pin-refused:/' },
      { kernel: '>=6.0', case: '*/vmsplice.truncate-shrink.pte-shared', outcomeClass: 'ok' },
    ]),
  );
  const deviations = checkExpectations(runs, expectations);
  const got = deviations.map((d) => `${d.kernel} ${d.key} ${d.actual} (entry ${d.entry})`).sort();
  t.same(got, [
    `${KERNEL_A} xfs-dax/uring-fixed.ficlone-src.pmd-shared waited (entry 1)`,
    ...['ficlone-src.pte-shared', 'ficlone-src.pte-sync', 'punch-hole.pmd-shared', 'punch-hole.pte-shared', 'punch-hole.pte-sync', 'truncate-shrink.pmd-shared', 'truncate-shrink.pte-shared', 'truncate-shrink.pte-sync'].map(
      (c) => `${KERNEL_B} xfs-dax/uring-fixed.${c} pin-refused:EFAULT (entry 0)`,
    ),
    `${KERNEL_B} xfs-dax/vmsplice.truncate-shrink.pte-shared ok pipe=foreign canary=foreign (entry 2)`,
  ]);
  const md = renderReport(runs, 'md', { expectations });
  t.match(md, '## Deviations from expectations (10)');
  t.match(md, '| `6.16.3+deb14-amd64` | `xfs-dax/uring-fixed.punch-hole.pte-shared` | `pin-refused:EOPNOTSUPP` | `pin-refused:EFAULT` | long-term pins refused on fsdax |');
  const html = renderReport(runs, 'html', { expectations });
  t.match(html, '≠ expected pin-refused:EOPNOTSUPP');
  t.same(checkExpectations(runs, []), [], 'no expectations, no deviations');
});

t.test('expectations are checked on reading', async (t) => {
  const bad: [unknown, RegExp][] = [
    [{ kernel: '>=6.0' }, /e\.json: expected a JSON array/],
    [[{ outcomeClass: 'ok' }], /e\.json entry 0 needs a "kernel" string/],
    [[{ kernel: '>=6.0' }], /entry 0 needs a "outcomeClass" string/],
    [[{ kernel: '>=six', outcomeClass: 'ok' }], /entry 0: bad version comparator ">=six"/],
    [[{ kernel: '>=6.0 ||', outcomeClass: 'ok' }], /entry 0: empty kernel range/],
    [[{ kernel: '>=6.0', outcomeClass: '/(unclosed/' }], /entry 0: Invalid regular expression/],
    [[{ kernel: '>=6.0', outcomeClass: 'ok', case: 3 }], /entry 0: "case" must be a string/],
    [['ok'], /entry 0 is not an object/],
  ];
  for (const [value, message] of bad) {
    t.throws(() => parseExpectations(JSON.stringify(value), 'e.json'), message);
  }
  t.throws(() => parseExpectations('{', 'e.json'), new DaxpinError('EINPUT', 'e.json is not JSON; expected an array of expectation entries'));
});
