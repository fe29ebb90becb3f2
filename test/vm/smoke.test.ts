// The VM smoke suite: `daxpin vm` on two real Debian kernels under qemu, one older
// than 6.15 and one newer, with the smoke matrix on every config. Checks that each
// DAX config was verified by statx inside the guest, that every planned case came
// back, and that the per-kernel JSONL reads with lib/report/runfile. A second test
// makes the guest kernel panic mid-run (sysrq c, via DAXPIN_TEST_PANIC_AT) and checks
// that a fresh boot resumed after the crashed case and nothing else was lost.
//
// DAXPIN_SKIP_VM=1 skips it. DAXPIN_VM_TEST_KERNELS (default "6.1,latest") names the
// two kernels. The runs are kept in test-artifacts/vm/ (JSONL, consoles).
// About 6 minutes under TCG on 2 cores once the kernels are cached.

import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { planKey } from '../../lib/outcome';
import { readRun } from '../../lib/report/runfile';
import { compareVersions } from '../../lib/versions';
import { KernelOutcome } from '../../lib/vm/kernel-run';
import { vmCommand } from '../../lib/vm/runner';

const SKIP = process.env.DAXPIN_SKIP_VM === '1' ? 'DAXPIN_SKIP_VM=1: the qemu guest tests are skipped' : false;
const KERNELS = (process.env.DAXPIN_VM_TEST_KERNELS ?? '6.1,latest').split(/[\s,]+/).filter(Boolean);
const ARTIFACTS = path.resolve(__dirname, '..', '..', '..', 'test-artifacts', 'vm');

function freshDir(name: string): string {
  const dir = path.join(ARTIFACTS, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Progress for the test log: everything but the per-case lines of cases without a violation. */
function logTo(t: { comment: (...args: unknown[]) => void }) {
  return (line: string) => {
    if (/ \[\d+\/\d+\] /.test(line) && !line.includes('!!')) return;
    t.comment(line);
  };
}

function lastConsole(k: KernelOutcome): string {
  const boot = k.boots[k.boots.length - 1];
  if (!boot) return '';
  return (fs.readFileSync(boot.console, 'utf8').split('\n').slice(-40)).join('\n');
}

/** Upstream version of a Debian release: 6.1.0-50-amd64 → 6.1, 7.3.4+deb13-amd64 → 7.3.4. */
function version(release: string): string {
  return release.replace(/-.*$/, '').replace(/\+.*$/, '');
}

t.test('smoke matrix on two kernels: DAX verified in the guest, every case back', { skip: SKIP }, async (t) => {
  t.equal(KERNELS.length, 2, 'two kernel specs');
  const outDir = freshDir('smoke');
  // One guest at a time: the suite shares the machine's qemu slot (and its cores) with others.
  const r = await vmCommand({ kernels: KERNELS, matrix: 'smoke', outDir, log: logTo(t), jobs: 1 });
  t.not(r.exitCode, 2, 'no usage or environment error');
  t.equal(r.kernels.length, 2, 'both kernels ran');
  const releases = r.kernels.map((k) => k.release);
  t.ok(compareVersions(version(releases[0]), '6.15') < 0, `${releases[0]} is older than 6.15`);
  t.ok(compareVersions(version(releases[1]), '6.15') >= 0, `${releases[1]} is 6.15 or newer`);

  for (const k of r.kernels) {
    t.test(k.release, async (t) => {
      t.comment(`${k.release}: ${k.boots.length} boot(s) (${k.accel}), ${Math.round(k.wallMs / 1000)} s, first result ${Math.round((k.firstResultMs ?? 0) / 1000)} s after start`);
      t.equal(k.error, null, 'ran to the end', k.error ? { console: lastConsole(k) } : {});
      const run = readRun(k.file);
      t.same(run.warnings, [], 'the JSONL reads without warnings');
      t.equal(run.run.runner, 'vm');
      t.equal(run.run.kernel, k.release);
      t.ok(run.cases.every((c) => c.kernel === k.release), 'the guest ran the kernel asked for (uname -r)');
      const recorded = new Set(run.cases.map((c) => planKey(c.config, c.caseId)));
      t.equal(run.run.planned.length, 6 * 24, 'smoke: 24 cases on each of 6 configs');
      t.same(run.run.planned.filter((key) => !recorded.has(key)), [], 'every planned case came back');
      t.same(run.end?.notRun, [], 'the end record says nothing was left out');
      t.equal(run.end?.interrupted, false);

      const configs = new Map(run.configs.map((c) => [c.config, c]));
      for (const name of ['ext4-dax', 'xfs-dax', 'xfs-dax-inode']) {
        const c = configs.get(name);
        t.equal(c?.error, undefined, `${name} set up`);
        t.equal(c?.daxVerified, true, `${name}: DAX verified by statx on a probe file`);
        const cases = run.cases.filter((x) => x.config === name && x.status === 'done');
        t.equal(cases.length, 24, `${name}: 24 cases done`);
        t.ok(cases.every((x) => x.daxVerified), `${name}: every case file was DAX by statx`);
        // The PMD observation (a private fs_dax trace instance in the guest) answered.
        const pmdCases = cases.filter((x) => x.mapping === 'pmd-shared' && x.map.ok);
        t.ok(pmdCases.length > 0 && pmdCases.every((x) => x.pmd !== null), `${name}: the fs_dax tracepoint answered for every mapped pmd-shared case`, { pmd: pmdCases.map((x) => x.pmd) });
      }
      for (const name of ['ext4', 'xfs', 'tmpfs']) {
        t.equal(configs.get(name)?.daxVerified, false, `${name}: page cache, not DAX`);
        t.ok(run.cases.filter((x) => x.config === name).every((x) => !x.daxVerified), `${name}: no case file was DAX`);
      }
      for (const c of run.configs) if (c.fsck) t.ok(c.fsck.ok, `${c.config}: ${c.fsck.tool} clean`, { output: c.fsck.output });
      const statuses = run.cases.reduce<Record<string, number>>((m, c) => ({ ...m, [c.status]: (m[c.status] ?? 0) + 1 }), {});
      t.comment(`${k.release}: case statuses ${JSON.stringify(statuses)}`);
    });
  }
});

t.test('a kernel panic mid-run: the case is crashed, a fresh boot resumes, nothing else lost', { skip: SKIP }, async (t) => {
  const victim = 'xfs-dax/odirect-read.punch-hole.pte-shared';
  const outDir = freshDir('panic');
  const r = await vmCommand({
    kernels: [KERNELS[0]],
    matrix: 'smoke',
    config: ['ext4-dax', 'xfs-dax'],
    cases: ['none.*', 'odirect-read.*'],
    outDir,
    env: { DAXPIN_TEST_PANIC_AT: victim },
    log: logTo(t),
  });
  t.equal(r.exitCode, 1, 'a crash is an invariant violation: exit 1');
  const k = r.kernels[0];
  t.equal(k.error, null, 'the run finished', k.error ? { console: lastConsole(k) } : {});
  t.same(
    k.boots.map((b) => b.ended.replace(/^exit [01]$/, 'exit')),
    ['panic', 'exit'],
    'the first boot panicked, the second ran to the end',
  );
  t.equal(k.boots[0].inflight, victim, 'the inflight file named the case');
  t.same(k.crashed, [victim]);

  const run = readRun(k.file);
  t.same(run.warnings, [], 'no case recorded twice');
  t.equal(run.run.planned.length, 24);
  t.same(run.end?.notRun, [], 'nothing lost');
  const byKey = new Map(run.cases.map((c) => [planKey(c.config, c.caseId), c]));
  t.same([...byKey.keys()].sort(), [...run.run.planned].sort(), 'every planned case has exactly one record');
  const crashed = byKey.get(victim);
  t.equal(crashed?.status, 'crashed');
  t.match(crashed?.console, /sysrq triggered crash/, 'console excerpt attached');
  t.ok(crashed?.kernelLog.some((l) => /Kernel panic - not syncing/.test(l.text)), 'the panic line is in the kernel log');
  const others = run.cases.filter((c) => planKey(c.config, c.caseId) !== victim);
  t.ok(others.every((c) => c.status === 'done'), 'every other case ran to the end');
  const index = run.run.planned.indexOf(victim);
  const skipped = fs.readFileSync(path.join(outDir, k.release, 'guest', 'skip'), 'utf8').split('\n').filter(Boolean);
  t.same(skipped.sort(), run.run.planned.slice(0, index + 1).sort(), 'the second boot skipped what ran before and the crashed case');
  t.ok(k.boots[1].cases === run.run.planned.length - index - 1, 'the second boot ran the rest');
  t.equal(run.configs.find((c) => c.config === 'xfs-dax')?.daxVerified, true, 'xfs-dax verified again in the fresh boot');
});
