// `daxpin nightly` around a fake VM run: baselines found by series, new findings
// against the previous night (or every violation without one), reports written, exit
// status for the timer unit.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { baselineFor, nightlyCommand, nightlyExitCode } from '../../lib/nightly';
import { KernelOutcome } from '../../lib/vm/kernel-run';
import { VmOptions } from '../../lib/vm/runner';
import { KERNEL_A, KERNEL_B, PLANTED, runAText, runBText } from '../fixtures/runs';

t.test('the baseline of a release is the newest run of its series', async (t) => {
  const files = ['6.12.57+deb12-amd64.jsonl', '6.12.117+deb13-amd64.jsonl', '6.1.0-50-amd64.jsonl', 'vm-summary.json', '6.12.90+deb12-amd64.jsonl'];
  t.equal(baselineFor('6.12.120+deb13-amd64', files), '6.12.117+deb13-amd64.jsonl');
  t.equal(baselineFor('6.1.0-51-amd64', files), '6.1.0-50-amd64.jsonl');
  t.equal(baselineFor('7.3.4+deb13-amd64', files), null);
});

t.test('exit status: 1 on anything new, else 2 when a kernel did not run, else 0', async (t) => {
  const v = (newFindings: string[], error: string | null = null) => ({ release: 'r', baseline: null, comparison: null, newFindings, error });
  t.equal(nightlyExitCode([v([]), v(['x/y'])], 2), 1);
  t.equal(nightlyExitCode([v([])], 1), 0, 'old violations only: nothing new');
  t.equal(nightlyExitCode([v([], 'did not run')], 0), 2);
  t.equal(nightlyExitCode([v([])], 2), 2);
});

function outcome(release: string, file: string, violations: string[]): KernelOutcome {
  return { spec: 'all', release, file, accel: 'tcg', boots: [], planned: [], recorded: [], crashed: [], notRun: [], violations, error: null, firstResultMs: 1, wallMs: 1 };
}

t.test('tonight against last night: a regression in one series is new, an unchanged run is not', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-nightly-test-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const last = path.join(root, 'last');
  fs.mkdirSync(last);
  // Last night: run A on 6.12 and on 6.16 (renamed).
  fs.writeFileSync(path.join(last, `${KERNEL_A}.jsonl`), runAText());
  const a616 = runAText().split(KERNEL_A).join(KERNEL_B);
  fs.writeFileSync(path.join(last, `${KERNEL_B}.jsonl`), a616);
  const tonight = path.join(root, 'tonight');
  const next612 = '6.12.40+deb13-amd64';
  let asked: VmOptions | null = null;
  const vm = async (o: VmOptions) => {
    asked = o;
    fs.mkdirSync(tonight);
    // 6.12 turns into run B (its planted regressions); 6.16 stays as it was.
    const b = path.join(tonight, `${next612}.jsonl`);
    fs.writeFileSync(b, runBText().split(KERNEL_B).join(next612));
    const same = path.join(tonight, `${KERNEL_B}.jsonl`);
    fs.writeFileSync(same, a616);
    return { exitCode: 1, outDir: tonight, kernels: [outcome(next612, b, [PLANTED.foreign]), outcome(KERNEL_B, same, [PLANTED.hung])] };
  };
  const lines: string[] = [];
  const code = await nightlyCommand({ baseline: last, outDir: tonight, vm, log: (l) => lines.push(l) });
  t.same(asked!.kernels, ['all']);
  t.equal(code, 1);
  const mail = fs.readFileSync(path.join(tonight, 'mail.txt'), 'utf8');
  t.match(mail, new RegExp(`- ${next612.replace(/\+/g, '\\+')} \\(against ${KERNEL_A.replace(/\+/g, '\\+')}\\.jsonl\\): NEW: .*${PLANTED.foreign}`));
  t.match(mail, new RegExp(`- ${KERNEL_B.replace(/\+/g, '\\+')} \\(against .*\\): nothing new`));
  t.match(fs.readFileSync(path.join(tonight, 'report.html'), 'utf8'), /<html/i);
  t.ok(JSON.parse(fs.readFileSync(path.join(tonight, 'kcidb.json'), 'utf8')), 'kcidb is JSON');
});

t.test('the first night: every violation is new; a missing --baseline is refused', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-nightly-test-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const lines: string[] = [];
  t.equal(await nightlyCommand({ baseline: path.join(root, 'nope'), log: (l) => lines.push(l) }), 2);
  t.match(lines[0], /^daxpin: --baseline .*nope: no such directory/);
  fs.mkdirSync(path.join(root, 'empty'));
  const tonight = path.join(root, 'tonight');
  const vm = async () => {
    fs.mkdirSync(tonight);
    const f = path.join(tonight, `${KERNEL_A}.jsonl`);
    fs.writeFileSync(f, runAText());
    return { exitCode: 1, outDir: tonight, kernels: [outcome(KERNEL_A, f, [PLANTED.hung])] };
  };
  t.equal(await nightlyCommand({ baseline: path.join(root, 'empty'), outDir: tonight, vm, log: () => {} }), 1);
  t.match(fs.readFileSync(path.join(tonight, 'mail.txt'), 'utf8'), /no baseline for this series\): NEW: /);
});
