// `daxpin run --repeat N` records every run of every case (fresh files each time),
// reports read them as rates, and the run ends with its findings on the terminal and
// the HTML report and mail beside the JSONL. Needs root (tmpfs scratch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { computeFindings } from '../../lib/findings/findings';
import { findingsRun, notRunKeys, readRun } from '../../lib/report/runfile';
import { runCli, testDir } from '../helpers/cli';

const CASES = ['vmsplice.truncate-shrink.pte-shared', 'uring-fixed.punch-hole.pte-shared'];

t.test('--repeat 3 on tmpfs', async (t) => {
  const tmp = testDir(t, 'daxpin-repeat-');
  const out = path.join(tmp, 'run.jsonl');
  const r = await runCli(['run', '--scratch', '--config', 'tmpfs', '--cases', CASES.join(','), '--repeat', '3', '--hold-ms', '50', '--out', out], { TMPDIR: tmp });
  t.equal(r.code, 0, r.stderr.split('\n').slice(-4).join(' | '));
  const run = readRun(out);
  t.same(run.warnings, [], 'repetitions are not "recorded twice"');
  t.equal(run.attempts.length, 6, 'every run recorded');
  t.same(run.attempts.map((c) => `${c.caseId}#${c.repeat}`).sort(), CASES.flatMap((id) => [0, 1, 2].map((i) => `${id}#${i}`)).sort());
  t.equal(run.cases.length, 2, 'one row per case');
  t.same(notRunKeys(run), []);
  const report = computeFindings([findingsRun(run)]);
  t.equal(report.kernels[0].maxRepeat, 3);
  const f = report.findings.find((x) => x.cases.includes(`tmpfs/${CASES[0]}`) && x.predicate.id === 'returned-while-pinned');
  t.ok(f, 'the vmsplice truncate returned while pinned');
  t.equal(f?.kernels[0].runs, 3, 'its rate is over three runs');

  t.match(r.stderr, /daxpin: \d+ finding\(s\) on /, 'the run ends with its findings');
  t.match(r.stderr, /returned-while-pinned\/page-cache\.mapped\.truncate: \S+ 3\/3/);
  const html = path.join(tmp, 'run.html');
  const mail = path.join(tmp, 'run.mail.txt');
  t.ok(fs.existsSync(html) && fs.readFileSync(html, 'utf8').includes('id="findings"'), 'HTML report beside the JSONL');
  t.match(fs.readFileSync(mail, 'utf8'), /^Subject: \[daxpin\] /, 'the mail beside the JSONL');
});

t.test('--repeat must be a count', async (t) => {
  const r = await runCli(['run', '--scratch', '--repeat', '0']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--repeat must be between 1 and 1000 runs, got 0/);
});
