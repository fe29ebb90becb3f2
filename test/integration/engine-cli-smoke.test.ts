// `daxpin run --scratch --matrix smoke` end to end: the JSONL it writes is a whole
// run (run, config, case and end records) that the report reader accepts, every
// planned case has its record, and the exit code agrees with the records. Needs root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { CONFIGS, casesFor } from '../../lib/cases/matrix';
import { planKey } from '../../lib/outcome';
import { notRunKeys, readRun } from '../../lib/report/runfile';
import { configViolations, invariantViolations } from '../../lib/verdict';
import { runCli, testDir } from '../helpers/cli';
import { NOTHING_LEFT, leftovers } from '../helpers/machine';

t.test('a smoke run on scratch ext4, XFS and tmpfs', async (t) => {
  const tmp = testDir(t, 'daxpin-smoke-');
  const out = path.join(tmp, 'smoke.jsonl');
  const started = Date.now();
  const r = await runCli(['run', '--scratch', '--matrix', 'smoke', '--hold-ms', '50', '--settle-ms', '500', '--out', out], { TMPDIR: tmp });
  t.comment(`exit ${r.code} after ${Date.now() - started} ms; ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);

  const run = readRun(out);
  t.same(run.warnings, [], 'no torn or repeated line');
  const raw = fs.readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { record: string });
  t.equal(raw[0].record, 'run', 'the file starts with the run record');
  t.equal(raw[raw.length - 1].record, 'end', 'and ends with the end record');
  t.same(
    [...new Set(raw.map((x) => x.record))].filter((k) => k !== 'kernel-log').sort(),
    ['case', 'config', 'end', 'run'],
    'kernel-log records come only when the kernel logged outside a case',
  );

  const configs = ['ext4', 'xfs', 'tmpfs'];
  t.ok(run.configs.length >= 3, `${run.configs.length} config records`);
  t.same(run.configs.map((c) => c.config).sort(), [...configs].sort());
  for (const c of run.configs) {
    t.equal(c.error, undefined, `${c.config} was set up`);
    if (c.fsType !== 'tmpfs') {
      t.match(c.device, /^\/dev\/loop\d+$/, `${c.config} on a loop device`);
      t.match(c.fsck, { ok: true, exitCode: 0 }, `${c.config}: fsck clean after its cases`);
    }
  }
  const expected = configs.flatMap((name) => casesFor(CONFIGS.find((c) => c.name === name)!, 'smoke').map((c) => planKey(name, c.id)));
  t.same([...run.run.planned].sort(), [...expected].sort(), 'the plan is the smoke matrix of the three configs');
  t.same(notRunKeys(run), [], 'every planned case has a record');
  t.equal(run.cases.length, expected.length);
  t.same(run.end?.notRun, []);
  t.equal(run.end?.interrupted, false);
  for (const c of run.cases) {
    if (c.status !== 'done') t.fail(`${c.config}/${c.caseId}: ${c.status} ${c.error ?? ''}`);
    if (c.runId !== run.run.runId) t.fail(`${c.caseId} of another run`);
  }
  t.same([...new Set(run.cases.map((c) => c.kernel))], [run.run.kernel]);

  const violations = run.cases.filter((c) => invariantViolations(c).length > 0).length + run.configs.filter((c) => configViolations(c).length > 0).length;
  t.equal(r.code, violations > 0 ? 1 : 0, `exit code follows the records (${violations} with violations)`);
  t.same(leftovers(tmp), NOTHING_LEFT, 'nothing left mounted, attached or running');
  t.same(fs.readdirSync(tmp).sort(), ['smoke.html', 'smoke.jsonl', 'smoke.mail.txt'], 'the run removed its work dir; its JSONL and the reports made from it stay');
});
