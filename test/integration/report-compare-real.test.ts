// compare and report on two real runs of this host's kernel (page cache on tmpfs):
// the runs are made here, so every class compared comes from the kernel.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readRun } from '../../lib/report/runfile';
import { compareRuns } from '../../lib/report/compare';
import { compareCommand, reportCommand } from '../../lib/report/commands';
import { outcomeClass } from '../../lib/verdict';

const cli = path.join(__dirname, '..', '..', 'lib', 'cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-compare-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

function realRun(name: string, holdMs: number): string {
  const out = path.join(dir, `${name}.jsonl`);
  const r = spawnSync(process.execPath, [cli, 'run', '--scratch', '--config', 'tmpfs', '--matrix', 'smoke', '--hold-ms', String(holdMs), '--out', out], { encoding: 'utf8' });
  t.ok(r.status === 0 || r.status === 1, `run ${name} exits 0 or 1 (got ${r.status}: ${r.stderr.split('\n').slice(-3).join(' | ')})`);
  return out;
}

t.test('two real runs compare case by case', async (t) => {
  const base = realRun('base', 50);
  const next = realRun('next', 100);
  const b = readRun(base);
  const n = readRun(next);
  t.ok(b.cases.length > 0, 'base has cases');
  t.equal(b.cases.length, n.cases.length, 'both runs ran the same plan');
  const cmp = compareRuns(b, n);
  // Every reported change must be a real difference of measured classes.
  for (const c of cmp.changes) {
    const before = b.cases.find((x) => x.config === c.config && x.caseId === c.caseId);
    const after = n.cases.find((x) => x.config === c.config && x.caseId === c.caseId);
    t.ok(before && after, `${c.caseId} is in both runs`);
    if (before && after) t.not(outcomeClass(before), outcomeClass(after), `${c.caseId} changed class`);
  }
  const unchanged = b.cases.filter((x) => {
    const y = n.cases.find((z) => z.config === x.config && z.caseId === x.caseId);
    return y && outcomeClass(x) === outcomeClass(y);
  }).length;
  t.equal(unchanged + cmp.changes.length, b.cases.length, 'every case is either unchanged or reported as changed');
  const res = compareCommand({ base, next });
  t.equal(res.exitCode, cmp.regressions.length > 0 ? 1 : 0, 'exit code follows the regressions found');
  t.match(res.output, /regression/i, 'the comparison says whether there are regressions');

  for (const format of ['html', 'md', 'junit', 'tap', 'kcidb']) {
    const r = reportCommand({ runs: [base, next], format });
    t.equal(r.exitCode, 0, `${format} report of two real runs`);
    t.ok(r.output.length > 0, `${format} report is not empty`);
  }
});
