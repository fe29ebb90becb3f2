// The LAVA test definition run in a qemu guest as a LAVA dispatcher would run it on a lab
// board: lava-dispatcher's own lava-test-shell helpers (lava-test-case, lava-test-set) copied
// into a bin directory with the deployment's shell line (the dispatcher's overlay does this),
// run.sh written from lava/daxpin.yaml the way the dispatcher's test runner writes it, the
// guest's /dev/pmem0 as PMEM. The LAVA signals the guest printed are read with the dispatcher's
// own pattern and parameter parser, and each case's result must be what daxpin recorded.
// The install steps (apt, npm ci) are left out: the guest has no network, and runs the host's
// built daxpin. In the same boot, `daxpin run --ktap-console` prints KTAP on the guest's
// console, which the host reads as kernel CI would. DAXPIN_SKIP_VM=1 skips it;
// DAXPIN_TEST_KERNELS picks the kernel (first one).

import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { renderReport } from '../../lib/report/render';
import { readRun } from '../../lib/report/runfile';
import { buildInitramfs } from '../../lib/vm/initramfs';
import { resolveKernel } from '../../lib/vm/kernels';
import { ensureHostPackages } from '../../lib/vm/provision';
import { probeAccel } from '../../lib/vm/accel';
import { bootGuest } from '../../lib/vm/qemu';
import { ktapLeaves, parseKtap } from '../helpers/ktap';
import { DEBIAN_PYTHON, LAVA_TEST_SHELL_DIR, lavaMissing } from '../helpers/lava';

const ROOT = path.resolve(__dirname, '../../..');
const spec = (process.env.DAXPIN_TEST_KERNELS ?? '6.1').split(/[\s,]+/).filter(Boolean)[0];
const SKIP = process.env.DAXPIN_SKIP_VM === '1' ? 'DAXPIN_SKIP_VM=1: the qemu guest tests are skipped' : (lavaMissing() ?? false);
/** The shell lava-dispatcher puts in the helpers' first line for a Debian deployment. */
const DEBIAN_TEST_SHELL = '/bin/bash';
const HELPERS = ['lava-common-functions', 'lava-test-case', 'lava-test-set', 'lava-test-raise'];
const CONFIGS = 'xfs-dax,ext4';
const CASES = 'none.truncate-shrink.pte-shared,odirect-read.truncate-shrink.pte-shared-unmapped,uring-fixed.punch-hole.pte-shared,vmsplice.punch-hole.pte-private';

/** run.sh as lava-dispatcher's TestRunnerAction writes it: parameters, then the run steps between STARTRUN and ENDRUN. */
function runScript(testdef: { params?: Record<string, string>; run: { steps: string[] } }, jobParams: Record<string, string>, testDir: string): string {
  const quote = (v: string) => `'${v}'`;
  const lines = ['###default parameters from test definition###', ...Object.entries(testdef.params ?? {}).map(([k, v]) => `${k}=${quote(v ?? '')}`), '######'];
  lines.push('###test parameters from job submission###', ...Object.entries(jobParams).map(([k, v]) => `${k}=${quote(v)}`), '######');
  lines.push('set -e', 'set -x', 'export TESTRUN_ID=0_daxpin', `cd ${testDir}`, 'UUID=`cat uuid`', 'set +x', 'echo "<LAVA_SIGNAL_STARTRUN $TESTRUN_ID $UUID>"', 'set -x');
  lines.push(...testdef.run.steps, 'set +x', 'echo "<LAVA_SIGNAL_ENDRUN $TESTRUN_ID $UUID>"');
  return `${lines.join('\n')}\n`;
}

/** The signals in the test shell's output, parsed with lava-dispatcher's own pattern and handle_testcase. */
const READ_SIGNALS = String.raw`
import json, re, sys
from lava_dispatcher.actions.test.shell import handle_testcase
pattern = re.compile(r"<LAVA_SIGNAL_(\S+) ([^>]+)>")
out, testset = [], None
for line in open(sys.argv[1], errors="replace"):
    m = pattern.search(line)
    if not m:
        continue
    name, params = m.group(1), m.group(2).split()
    if name == "TESTSET":
        testset = params[1] if params[0] == "START" else None
    elif name == "TESTCASE":
        out.append(dict(handle_testcase(params), set=testset))
    else:
        out.append({"signal": name, "params": params})
print(json.dumps(out))
`;

t.test(`lava/daxpin.yaml in a ${spec} guest with lava-dispatcher's helpers`, { skip: SKIP }, async (t) => {
  await ensureHostPackages({ log: (line) => t.comment(line) });
  const kernel = await resolveKernel(spec, { log: (line) => t.comment(line) });
  const initramfs = await buildInitramfs(kernel);
  const shared = await fs.mkdtemp(path.join(os.tmpdir(), 'daxpin-lava-vm-'));
  t.teardown(() => fs.rm(shared, { recursive: true, force: true }));

  const bin = path.join(shared, 'bin');
  await fs.mkdir(bin);
  for (const h of HELPERS) {
    await fs.writeFile(path.join(bin, h), `#!${DEBIAN_TEST_SHELL}\n\n${await fs.readFile(path.join(LAVA_TEST_SHELL_DIR, h), 'utf8')}`, { mode: 0o755 });
  }
  const testdef = JSON.parse(spawnSync(DEBIAN_PYTHON, ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', path.join(ROOT, 'lava/daxpin.yaml')], { encoding: 'utf8' }).stdout);
  const runner = path.join(shared, 'tests', '0_daxpin');
  await fs.mkdir(runner, { recursive: true });
  await fs.writeFile(path.join(runner, 'uuid'), '1234_1.4.2.1');
  // The dispatcher runs the steps in the definition's repository (here: this checkout).
  await fs.writeFile(path.join(runner, 'run.sh'), runScript(testdef, { PMEM: '/dev/pmem0', CONFIGS, CASES }, ROOT).replace('UUID=`cat uuid`', `UUID=\`cat ${runner}/uuid\``));
  const results = path.join(shared, 'results');
  const consoleRun = path.join(shared, 'console-run.jsonl');
  const guestScript = [
    `PATH=${bin}:$PATH LAVA_RESULT_DIR=${results} ${DEBIAN_TEST_SHELL} ${runner}/run.sh > ${shared}/lava.out 2>&1; echo $? > ${shared}/rc`,
    `node ${ROOT}/dist/lib/cli.js run --device /dev/pmem0 --config ext4,xfs-dax --cases none.truncate-shrink.pte-shared --hold-ms 50 --ktap-console --out ${consoleRun} > /dev/null 2>&1`,
  ].join('; ');

  const consoleLines: string[] = [];
  const boot = await bootGuest({
    kernel,
    initramfs,
    accel: await probeAccel(kernel, initramfs),
    pmemMb: 1024,
    guestCommand: ['sh', '-c', guestScript],
    resultsDir: shared,
    cwd: ROOT,
    timeoutMs: 15 * 60_000,
    idleTimeoutMs: 180_000,
    onConsoleLine: (line) => consoleLines.push(line.replace(/\r/g, '')),
  });
  const output = await fs.readFile(path.join(shared, 'lava.out'), 'utf8').catch(() => '');
  t.comment(`${kernel.release} (${boot.accel}): ${boot.durationMs} ms`);
  t.equal(boot.exitCode, 0, 'the guest command finished', boot.exitCode === 0 ? {} : { console: boot.consoleTail.slice(-30).join('\n'), output: output.slice(-3000) });
  t.equal((await fs.readFile(path.join(shared, 'rc'), 'utf8').catch(() => '')).trim(), '0', 'run.sh (set -e) ran to its end', { output: output.slice(-3000) });

  const signals = JSON.parse(spawnSync(DEBIAN_PYTHON, ['-c', READ_SIGNALS, path.join(shared, 'lava.out')], { encoding: 'utf8' }).stdout) as Array<Record<string, any>>;
  t.same(signals[0], { signal: 'STARTRUN', params: ['0_daxpin', '1234_1.4.2.1'] });
  t.same(signals[signals.length - 1], { signal: 'ENDRUN', params: ['0_daxpin', '1234_1.4.2.1'] });
  const cases = signals.filter((s) => 'test_case_id' in s);
  t.same(cases[0], { test_case_id: 'daxpin-run', result: 'pass', set: null }, 'daxpin run itself worked');

  // What daxpin recorded (run-daxpin leaves the JSONL in LAVA_RESULT_DIR), as KTAP leaves.
  const run = readRun(path.join(results, 'daxpin.jsonl'));
  t.equal(run.run.kernel, kernel.release, 'the run is the guest kernel');
  const recorded = ktapLeaves(parseKtap(renderReport([run], 'ktap')));
  const emitted = new Map(cases.slice(1).map((c) => [`${run.run.kernel} ${c.set}/${c.test_case_id}`, c.result]));
  t.same(new Map([...emitted].sort()), new Map([...recorded].sort()), 'one lava-test-case per case and config check, in its config set, with the recorded result');
  t.equal(emitted.size, 2 * 5, 'four cases and the config check in each of two configs');
  t.ok([...emitted.values()].includes('pass'), 'some pass');
  t.equal(emitted.get(`${run.run.kernel} xfs-dax/config`), 'pass', 'xfs_repair clean');
  for (const c of cases) {
    const stored = await fs.readFile(path.join(results, 'results', c.test_case_id, 'result'), 'utf8').catch(() => null);
    if (stored === null) t.fail(`lava-test-case stored no result for ${c.test_case_id}`);
  }
  t.comment(`results: ${[...emitted].map(([k, v]) => `${k.split(' ')[1]}=${v}`).join(', ')}`);

  // KTAP on the console: the lines that have KTAP's shapes (kernel messages interleave), strictly parsed.
  const ktapLines = consoleLines.filter((l) => /^( *)(KTAP version 1|1\.\.\d+|(not )?ok \d+ |# )/.test(l));
  const fromConsole = ktapLeaves(parseKtap(`${ktapLines.join('\n')}\n`));
  const consoleRecorded = ktapLeaves(parseKtap(renderReport([readRun(consoleRun)], 'ktap')));
  t.same(new Map([...fromConsole].sort()), new Map([...consoleRecorded].sort()), 'the console KTAP says what the run recorded');
  t.equal(fromConsole.size, 4, 'one case and the config test in each of two configs');
});
