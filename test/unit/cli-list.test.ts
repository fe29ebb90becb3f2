// `daxpin list` prints the plan the run would execute (no root, no kernel needed),
// and the test hooks' options stay out of the help.
import t from 'tap';
import { PIN_METHODS, casesFor, filterCases, findConfig } from '../../lib/cases/matrix';
import { planKey } from '../../lib/outcome';
import { runCli } from '../helpers/cli';

t.test('list --json is the plan: config x matrix, filtered by --cases', async (t) => {
  const r = await runCli(['list', '--json', '--matrix', 'smoke', '--config', 'tmpfs,ext4']);
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  const rows = JSON.parse(r.stdout) as { config: string; caseId: string; key: string }[];
  const want = ['tmpfs', 'ext4'].flatMap((n) => casesFor(findConfig(n)!, 'smoke').map((c) => planKey(n, c.id)));
  t.same(rows.map((x) => x.key), want);
  for (const row of rows) t.equal(row.key, planKey(row.config, row.caseId));

  const one = await runCli(['list', '--json', '--config', 'xfs', '--cases', '*.truncate-shrink.pte-shared']);
  t.equal(one.code, 0);
  const ids = (JSON.parse(one.stdout) as { caseId: string }[]).map((x) => x.caseId);
  t.same(ids, filterCases(casesFor(findConfig('xfs')!), ['*.truncate-shrink.pte-shared']).map((c) => c.id));
  t.equal(ids.length, PIN_METHODS.length);
});

t.test('list in words names the tables and counts the cases', async (t) => {
  const r = await runCli(['list', '--config', 'tmpfs', '--matrix', 'smoke']);
  t.equal(r.code, 0);
  t.match(r.stdout, new RegExp(`^${casesFor(findConfig('tmpfs')!, 'smoke').length} cases \\(smoke matrix\\):$`, 'm'));
  t.match(r.stdout, /^tmpfs\/none\.truncate-shrink\.pte-shared$/m);
});

t.test('run --help shows the user options, not the test and VM-runner hooks', async (t) => {
  const r = await runCli(['run', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /--hold-ms <n>/);
  t.match(r.stdout, /--scratch/);
  t.notMatch(r.stdout, /--case-budget-ms|--inflight|--skip-file|--run-id/);
});
