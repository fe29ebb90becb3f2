// What the host and the guest must agree on: the init script's markers and paths, the
// guest's host name, and the `daxpin run` argv the guest is started with.
import t from 'tap';
import * as fs from 'node:fs';
import { buildProgram } from '../../lib/cli';
import { CASE_ALLOWANCE_MS, RUN_DEFAULTS, deviceRunArgv } from '../../lib/run-options';
import { GUEST_HOSTNAME } from '../../lib/vm/guest';
import { GUEST_BOOT_DIR, GUEST_INIT_SCRIPT, GUEST_MARKERS, initScript } from '../../lib/vm/initramfs';
import { idleTimeoutFor } from '../../lib/vm/runner';

t.test('the init script is a file in the tree that prints the markers the host watches for', async (t) => {
  const script = await initScript();
  t.equal(script, fs.readFileSync(GUEST_INIT_SCRIPT, 'utf8'));
  t.match(script, /^#!\/bin\/busybox sh\n/);
  for (const marker of Object.values(GUEST_MARKERS)) t.ok(script.includes(marker), `prints "${marker}"`);
  t.ok(script.includes(`/results/${GUEST_BOOT_DIR}`), 'reads its boot files from the boot dir');
  t.ok(script.includes(`hostname ${GUEST_HOSTNAME}`), 'names the guest as its records say');
  t.ok(script.includes('read -r release < /etc/daxpin/release'), 'reads the release the image carries');
});

t.test("the guest's argv is what `daxpin run` parses back into the same options", async (t) => {
  const argv = deviceRunArgv({
    device: '/dev/pmem0',
    out: '/s/boot-1.jsonl',
    runId: 'r-1',
    skipFile: '/s/skip',
    inflight: '/s/inflight',
    matrix: 'smoke',
    holdMs: 150,
    settleMs: 900,
    canaryKb: 64,
    configs: ['ext4-dax', 'xfs'],
    cases: ['none.*'],
  });
  const program = buildProgram(() => {});
  const run = program.commands.find((c) => c.name() === 'run')!;
  run.action(() => {});
  await program.parseAsync(argv, { from: 'user' });
  t.match(run.opts(), {
    device: '/dev/pmem0',
    out: '/s/boot-1.jsonl',
    runId: 'r-1',
    skipFile: '/s/skip',
    inflight: '/s/inflight',
    runRecord: false,
    matrix: 'smoke',
    holdMs: 150,
    settleMs: 900,
    canaryKb: 64,
    config: ['ext4-dax', 'xfs'],
    cases: ['none.*'],
    caseBudgetMs: RUN_DEFAULTS.caseBudgetMs,
  });
});

t.test("the host's idle timeout covers the guest's case budget", async (t) => {
  t.equal(CASE_ALLOWANCE_MS, RUN_DEFAULTS.caseBudgetMs + RUN_DEFAULTS.signalWaitMs);
  t.ok(idleTimeoutFor(60_000, 600_000) > CASE_ALLOWANCE_MS + 60_000 + 600_000, 'long holds and settles are covered');
  t.equal(idleTimeoutFor(200, 2000), 180_000, 'never below the floor');
});
