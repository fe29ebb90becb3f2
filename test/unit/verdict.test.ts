import t from 'tap';
import { harnessFaults, classHead, configChecks, configViolations, invariantViolations, isSevereKernelLine, kernelLogRecordViolations, outcomeClass, verdictOf } from '../../lib/verdict';
import { SCHEMA_VERSION } from '../../lib/outcome';
import type { KernelLogRecord } from '../../lib/outcome';
import { caseRecord } from '../fixtures/runs';

const WAITED = {
  returnedMs: 503,
  asleepAtRelease: true,
  wait: { state: 'S', wchan: 'dax_layout_busy_page_range', site: ['dax_layout_busy_page_range'], atMs: 1 },
  blockedUntilRelease: true,
  afterReleaseMs: 3,
};

t.test('outcome classes follow the documented grammar', async (t) => {
  const cases: [string, ReturnType<typeof caseRecord>][] = [
    ['ok', caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared')],
    ['waited', caseRecord('xfs-dax', 'odirect-read.truncate-shrink.pte-shared', { op: WAITED })],
    ['map-refused:EOPNOTSUPP', caseRecord('xfs', 'none.truncate-shrink.pte-sync', { map: { ok: false, errno: 'EOPNOTSUPP' } })],
    ['pin-refused:EFAULT', caseRecord('xfs-dax', 'uring-fixed.punch-hole.pte-shared', { pin: { ok: false, errno: 'EFAULT' } })],
    ['op-refused:EOPNOTSUPP', caseRecord('ext4-dax', 'none.ficlone-src.pte-shared', { op: { ok: false, errno: 'EOPNOTSUPP' } })],
    ['waited-failed:EINTR', caseRecord('xfs-dax', 'vmsplice.punch-hole.pte-shared', { op: { ...WAITED, ok: false, errno: 'EINTR' } })],
    ['hung-D', caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: { ok: false, returnedMs: null, hung: 'uninterruptible', taskState: 'D' } })],
    ['hung-S', caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: { ok: false, returnedMs: null, hung: 'interruptible', taskState: 'S' } })],
    ['hung-woken', caseRecord('ext4-dax', 'nbd-aio-write.truncate-shrink.pte-shared', { op: { ...WAITED, hung: 'woken-by-signal', taskState: 'S', signalledAtMs: 2024.5 } })],
    ['abandoned', caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { status: 'abandoned', op: { ok: false, returnedMs: null } })],
    ['not-started', caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: { started: false, ok: false, returnedMs: null } })],
    ['crashed', caseRecord('xfs-dax', 'vmsplice.punch-hole.pte-shared', { status: 'crashed', views: { pipe: 'foreign' } })],
    ['error', caseRecord('xfs-dax', 'vmsplice.punch-hole.pte-shared', { status: 'error', error: 'mount failed' })],
    ['unsupported', caseRecord('xfs', 'nbd-odirect-read.punch-hole.pte-shared', { status: 'unsupported', reason: 'no nbd module in kernel 6.18.44' })],
    ['ok buf=zero pipe=written', caseRecord('xfs', 'vmsplice.truncate-shrink.pte-shared', { views: { buffer: 'zero', pipe: 'written' } })],
    [
      'waited buf=written file=zero peer=mixed canary=foreign sigbus=buffer,file',
      caseRecord('xfs-dax', 'odirect-read.ficlone-dest.pte-shared', {
        op: WAITED,
        views: { buffer: 'written', file: 'zero', peer: 'mixed', canary: 'foreign' },
        sigbus: ['buffer', 'file'],
      }),
    ],
    ['op-refused:?', caseRecord('xfs', 'none.punch-hole.pte-shared', { op: { ok: false, errno: null } })],
  ];
  for (const [want, rec] of cases) t.equal(outcomeClass(rec), want, want);
  t.equal(classHead('waited-failed:EINTR buf=zero'), 'waited-failed');
  t.equal(classHead('pin-refused:EFAULT'), 'pin-refused');
});

t.test('severe kernel lines are told from routine ones', async (t) => {
  const line = (signature: string) => ({ level: 4, signature, text: signature });
  for (const s of [
    'WARNING: at fs/dax.c:N dax_insert_entry',
    'BUG: unable to handle page fault for address: ADDR',
    'Oops: 0000 [#N] PREEMPT SMP',
    'WARNING: possible circular locking dependency detected',
    'INFO: task COMM:PID blocked for more than N seconds.',
    'BUG: KASAN: use-after-free in dax_iomap_rw',
    'general protection fault, probably for non-canonical address ADDR',
    'rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:',
    'watchdog: BUG: soft lockup - CPU#N stuck for Ns!',
    'lockdep: inconsistent lock state',
  ]) {
    t.ok(isSevereKernelLine(line(s)), s);
  }
  for (const s of [
    'EXT4-fs error (device pmem0): ext4_find_extent:938: inode #12: comm node: pblk 0 bad header/extent',
    'XFS (pmem0): Metadata corruption detected at xfs_dinode_verify+0x0/0x0',
    'XFS (pmem0): Corruption of in-memory data (0x8) detected at xfs_trans_cancel+0x0/0x0. Shutting down filesystem.',
    'XFS (pmem0): Filesystem has been shut down due to log error (0x2).',
    'EXT4-fs (pmem0): Remounting filesystem read-only',
  ]) {
    t.ok(isSevereKernelLine(line(s)), `a filesystem's own alarm: ${s}`);
  }
  for (const s of [
    'XFS (pmem0): Mounting V5 Filesystem',
    'EXT4-fs (pmem0): DAX enabled. Warning: DAX support is experimental',
    'XFS (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk',
    'Call Trace: <TASK>',
    'debug: bugfix applied',
    '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
  ]) {
    t.notOk(isSevereKernelLine(line(s)), s);
  }
});

t.test('a taint bit that appears during a case is a violation; one already set is not', async (t) => {
  const kinds = (rec: ReturnType<typeof caseRecord>) => invariantViolations(rec).map((v) => `${v.kind}:${v.subject}`);
  t.same(kinds(caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared', { taintedBefore: 0, taintedAfter: 512 })), ['taint:512']);
  t.same(kinds(caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared', { taintedBefore: 512, taintedAfter: 512 })), []);
  t.same(kinds(caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared', { taintedBefore: null, taintedAfter: 512 })), [], 'no reading, no verdict');
});

t.test('harness faults: a control that waited, a pin never seen held', async (t) => {
  t.same(harnessFaults(caseRecord('xfs-dax', 'odirect-read.truncate-shrink.pte-shared', { op: WAITED })), [], 'a real wait');
  t.match(harnessFaults(caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared', { op: WAITED })), [/control/]);
  t.match(harnessFaults(caseRecord('xfs-dax', 'odirect-read.truncate-shrink.pte-shared', { pin: { ok: false, errno: null, held: false } })), [/never seen held/]);
  t.same(harnessFaults(caseRecord('xfs-dax', 'uring-fixed.truncate-shrink.pte-shared', { pin: { ok: false, errno: 'EOPNOTSUPP' } })), [], 'a refusal is the kernel\'s answer');
  t.match(harnessFaults(caseRecord('xfs-dax', 'odirect-read.truncate-shrink.pte-shared', { op: { ...WAITED, wait: null } })), [/no wait observed/]);
  t.same(harnessFaults(caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared', { status: 'crashed', op: WAITED })), [], 'only finished cases');
});

t.test('invariant violations', async (t) => {
  const kinds = (rec: ReturnType<typeof caseRecord>) => invariantViolations(rec).map((v) => `${v.kind}:${v.subject}`);
  t.same(kinds(caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared')), [], 'a quiet case has none');
  t.same(kinds(caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { views: { pipe: 'foreign', canary: 'foreign' } })), [
    'foreign-data:pipe',
    'foreign-data:canary',
  ]);
  const warn = { level: 4, signature: 'WARNING: at fs/dax.c:N dax_insert_entry', text: 'WARNING: CPU: 1 PID: 2 at fs/dax.c:391 dax_insert_entry+0x2a1/0x340' };
  t.same(
    kinds(caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared', { kernelLog: [warn, warn, { level: 6, signature: 'XFS (pmem0): Ending clean mount', text: '' }] })),
    ['kernel-log:WARNING: at fs/dax.c:N dax_insert_entry'],
    'one violation per distinct severe signature, routine lines ignored',
  );
  t.same(kinds(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: { hung: 'interruptible', ok: false, returnedMs: null } })), [
    'hung-after-release:',
  ]);
  t.same(kinds(caseRecord('xfs-dax', 'uring-fixed.punch-hole.pte-shared')), ['longterm-pin-on-fsdax:'], 'a long-term pin granted on verified fsdax');
  t.same(kinds(caseRecord('xfs', 'uring-fixed.punch-hole.pte-shared')), [], 'a long-term pin on page cache is behaviour, not a violation');
  t.same(kinds(caseRecord('xfs-dax', 'uring-fixed.punch-hole.pte-shared', { pin: { ok: false, errno: 'EOPNOTSUPP' } })), [], 'refused: fine');
  t.same(kinds(caseRecord('xfs-dax', 'uring-fixed.punch-hole.pte-shared', { daxVerified: false })), [], 'DAX not verified: not fsdax');
  const crashed = invariantViolations(caseRecord('xfs-dax', 'none.punch-hole.pte-shared', { status: 'crashed', console: 'boot\nKernel panic - not syncing: Fatal exception\n' }));
  t.equal(crashed[0].kind, 'crashed');
  t.match(crashed[0].detail, /Kernel panic - not syncing/);
});

t.test('verdicts: a crash first, then violations, then behaviour', async (t) => {
  t.equal(verdictOf(caseRecord('xfs-dax', 'none.punch-hole.pte-shared', { status: 'crashed' })), 'crashed');
  t.equal(verdictOf(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: WAITED, views: { file: 'foreign' } })), 'violation');
  t.equal(verdictOf(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { status: 'error' })), 'error');
  t.equal(verdictOf(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { status: 'abandoned' })), 'error');
  t.equal(verdictOf(caseRecord('xfs', 'none.punch-hole.pte-sync', { map: { ok: false, errno: 'EOPNOTSUPP' } })), 'map-refused');
  t.equal(verdictOf(caseRecord('xfs', 'rdma-mr.punch-hole.pte-shared', { status: 'unsupported', reason: 'no RDMA device' })), 'unsupported', 'not applicable here: no kernel outcome');
  t.equal(verdictOf(caseRecord('xfs-dax', 'uring-fixed.punch-hole.pte-shared', { pin: { ok: false, errno: 'EFAULT' } })), 'refused');
  t.equal(verdictOf(caseRecord('ext4', 'none.ficlone-src.pte-shared', { op: { ok: false, errno: 'EOPNOTSUPP' } })), 'refused');
  t.equal(verdictOf(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: WAITED })), 'waited');
  t.equal(verdictOf(caseRecord('xfs-dax', 'none.punch-hole.pte-shared')), 'ok');
});

t.test('config checks: fsck and setup', async (t) => {
  const base = { record: 'config' as const, schema: 1, runId: 'r', kernel: 'k', config: 'xfs', fsType: 'xfs', daxVerified: false, device: null, mountOptions: '' };
  t.same(configViolations({ ...base, fsck: null }), [], 'tmpfs-like: no fsck, no violation');
  t.same(configViolations({ ...base, fsck: { tool: 'xfs_repair -n', ok: true, exitCode: 0, output: '' } }), []);
  const bad = { ...base, fsck: { tool: 'xfs_repair -n', ok: false, exitCode: 1, output: 'Phase 1\nagi unlinked bucket 5\n' } };
  t.match(configViolations(bad), [{ kind: 'fsck', detail: 'xfs_repair -n exited 1: agi unlinked bucket 5' }]);
  t.match(configChecks({ ...bad, error: 'mkfs failed' }), [
    { name: 'setup', verdict: 'error', detail: 'mkfs failed' },
    { name: 'fsck', verdict: 'violation' },
  ]);
});

t.test('kernel-log lines logged outside any case are judged like a case\'s', async (t) => {
  const warn = { level: 4, signature: 'WARNING: at fs/dax.c:N dax_insert_entry', text: 'WARNING: CPU: 1 PID: 2 at fs/dax.c:391 dax_insert_entry+0x2a1/0x340' };
  const routine = { level: 6, signature: 'XFS (pmem0): Ending clean mount', text: 'XFS (pmem0): Ending clean mount' };
  const gap = (patch: Partial<KernelLogRecord>): KernelLogRecord => ({
    record: 'kernel-log', schema: SCHEMA_VERSION, runId: 'r', kernel: 'k', phase: 'between-cases', config: 'xfs-dax', after: null, before: null,
    lines: [], taintedBefore: 0, taintedAfter: 0, ...patch,
  });
  t.same(kernelLogRecordViolations(gap({ lines: [routine] })), [], 'routine lines and no taint: nothing');
  t.same(
    kernelLogRecordViolations(gap({ lines: [warn, routine, warn], taintedAfter: 512 })).map((v) => `${v.kind}: ${v.detail}`),
    ['kernel-log: WARNING: at fs/dax.c:N dax_insert_entry', 'taint: kernel taint changed 0 -> 512'],
  );
});
