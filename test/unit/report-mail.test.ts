// The mail: within 72 columns, a subject, every finding with the kernels where it is
// present and where not, rates, reproducers, baseline changes, crashed and not-run counts.

import * as path from 'node:path';
import t from 'tap';
import { reportCommand } from '../../lib/report/commands';
import { MAIL_WIDTH, renderMail, wrap, wrapCommand } from '../../lib/report/mail';
import { parseRunText } from '../../lib/report/runfile';
import { KERNEL_A, KERNEL_B, PLANTED, runAText, runBText, writeRuns } from '../fixtures/runs';
import { SEVEN_KERNELS, sevenKernelRunText } from '../fixtures/seven';

const a = parseRunText(runAText(), 'a.jsonl');
const b = parseRunText(runBText(), 'b.jsonl');
const short = (k: string) => k.replace(/-amd64$/, '');

t.test('every line fits 72 columns; the mail starts with its subject', async (t) => {
  for (const runs of [[a, b], SEVEN_KERNELS.map((_, i) => parseRunText(sevenKernelRunText(i), `k${i}`))]) {
    const mail = renderMail(runs, { baseline: [a] });
    const long = mail.split('\n').filter((l) => l.length > MAIL_WIDTH);
    t.same(long, [], 'no line over 72 columns');
    t.match(mail.split('\n')[0], /^Subject: \[daxpin\] /);
  }
});

t.test('findings × kernels with rates, ranges and reproducers', async (t) => {
  const mail = renderMail([a, b]);
  t.match(mail, 'Findings that break an invariant');
  const block = mail.slice(mail.indexOf('foreign-after-early-return/fsdax.mapped'));
  t.match(block, `absent       ${short(KERNEL_A)} (0/1)`);
  t.match(block, `present      ${short(KERNEL_B)} (1/1)`);
  t.match(block, `kernels: absent ${short(KERNEL_A)}; present ${short(KERNEL_B)}`);
  t.match(block, PLANTED.foreign);
  t.match(block, `daxpin vm --kernel ${KERNEL_B} --config xfs-dax --cases \\\n        'vmsplice.truncate-shrink.pte-shared'`);
  t.match(block, "daxpin repro 'vmsplice.truncate-shrink.pte-shared' --config \\\n        xfs-dax --c --out repro");
  t.match(mail, 'crashed/ext4-dax');
  t.match(mail, /pin-refused\/uring-fixed\.fsdax\/eopnotsupp/);
  t.match(mail, `${short(KERNEL_B)}\n    ${plannedCount(b)} cases, ${plannedCount(b)} runs, 1 crashed, 0 errors, 3 not run`);
});

function plannedCount(run: typeof b): number {
  return run.cases.length;
}

t.test('changes against a baseline', async (t) => {
  const mail = renderMail([b], { baseline: [a] });
  t.match(mail, `Changes against the baseline (${short(KERNEL_A)})`);
  t.match(mail, '- new: foreign-after-early-return/fsdax.mapped');
  t.match(mail, '- gone: longterm-pin-on-fsdax/xfs');
});

t.test('daxpin report --format mail, with --baseline', async (t) => {
  const dir = t.testdir({});
  const files = writeRuns(dir);
  const r = reportCommand({ runs: [files.b], format: 'mail', baseline: [files.a] });
  t.equal(r.exitCode, 0);
  t.match(r.output, /^Subject: /);
  t.match(r.output, 'Changes against the baseline');
  const out = path.join(dir, 'mail.txt');
  t.equal(reportCommand({ runs: [files.a, files.b], out }).exitCode, 0, '.txt means mail');
});

t.test('wrapping', async (t) => {
  t.same(wrap('aaa bbb ccc', '  ', 9), ['  aaa bbb', '  ccc']);
  const lines = wrapCommand('daxpin vm --kernel 6.1 --cases x', '  ', 20);
  t.same(lines, ['  daxpin vm \\', '    --kernel 6.1 \\', '    --cases x']);
  t.ok(lines.every((l) => l.length <= 20));
});
