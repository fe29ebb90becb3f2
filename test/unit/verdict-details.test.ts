// The judge's words: violation details and keys, config checks, and the verdicts of
// the rarer heads (lib/verdict.ts). Reports and exit codes print these as they are.
import t from 'tap';
import { configChecks, configViolations, invariantViolations, isSevereKernelLine, outcomeClass, verdictOf, violationKey } from '../../lib/verdict';
import { caseRecord } from '../fixtures/runs';

t.test('a hang is described by its state and stack top', async (t) => {
  const hung = (op: Parameters<typeof caseRecord>[2] extends infer P ? (P extends { op?: infer O } ? O : never) : never) =>
    invariantViolations(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: { ok: false, returnedMs: null, ...op } }));
  t.same(hung({ hung: 'uninterruptible', taskState: null, stack: null }), [
    { kind: 'hung-after-release', subject: '', detail: 'punch-hole still stuck (uninterruptible, state D) after the pin was released' },
  ]);
  t.equal(hung({ hung: 'interruptible', taskState: null, stack: null })[0].detail, 'punch-hole still stuck (interruptible, state S) after the pin was released');
  t.equal(
    hung({ hung: 'uninterruptible', taskState: 'D', stack: ['dax_layout_busy_page+0x1/0x2', 'xfs_break_layouts'] })[0].detail,
    'punch-hole still stuck (uninterruptible, state D) after the pin was released; stack top dax_layout_busy_page+0x1/0x2',
  );
  t.equal(hung({ hung: 'interruptible', taskState: 'R', stack: [] })[0].detail, 'punch-hole still stuck (interruptible, state R) after the pin was released');
  // 6.1's NBD pins on ext4-dax: the truncate slept in ext4_break_layouts past the release
  // until the signal woke it; then it returned 0 (its wait's condition held already).
  t.equal(
    hung({ ok: true, result: 0, returnedMs: 2075, hung: 'woken-by-signal', taskState: 'S', signalledAtMs: 2024.5, stack: ['ext4_break_layouts+0x8f/0x120 [ext4]'] })[0].detail,
    'punch-hole still stuck (woken-by-signal, state S) after the pin was released; stack top ext4_break_layouts+0x8f/0x120 [ext4]; the signal woke it 2024.5 ms after the release and it then returned 0',
  );
  t.equal(
    hung({ ok: false, errno: 'EIO', returnedMs: 2075, hung: 'woken-by-signal', taskState: 'S', signalledAtMs: null, stack: null })[0].detail,
    'punch-hole still stuck (woken-by-signal, state S) after the pin was released; the signal woke it ? ms after the release and it then failed EIO',
  );
});

t.test('foreign data and long-term pins are described per view and method', async (t) => {
  t.same(invariantViolations(caseRecord('xfs', 'none.ficlone-src.pte-shared', { views: { buffer: 'foreign', file: 'foreign', peer: 'foreign' } })), [
    { kind: 'foreign-data', subject: 'buffer', detail: "the buffer view holds another file's bytes" },
    { kind: 'foreign-data', subject: 'file', detail: "the file view holds another file's bytes" },
    { kind: 'foreign-data', subject: 'peer', detail: "the peer view holds another file's bytes" },
  ]);
  t.same(invariantViolations(caseRecord('xfs-dax', 'uring-fixed.punch-hole.pte-shared')), [
    { kind: 'longterm-pin-on-fsdax', subject: '', detail: 'uring-fixed pin granted on a DAX file' },
  ]);
  t.same(invariantViolations(caseRecord('xfs-dax', 'vmsplice.punch-hole.pte-shared')), [], 'vmsplice takes no long-term pin');
  t.same(invariantViolations(caseRecord('xfs', 'none.punch-hole.pte-shared', { views: { buffer: 'mixed', file: 'garbage' } })), [], 'only foreign bytes are a violation');
});

t.test('a crash without a console says so; the last non-empty line otherwise', async (t) => {
  t.equal(invariantViolations(caseRecord('xfs-dax', 'none.punch-hole.pte-shared', { status: 'crashed' }))[0].detail, 'kernel crashed or wedged: no console captured');
  t.equal(
    invariantViolations(caseRecord('xfs-dax', 'none.punch-hole.pte-shared', { status: 'crashed', console: 'a\n  last words  \n\n  \n' }))[0].detail,
    'kernel crashed or wedged: last words',
  );
});

t.test('violation keys', async (t) => {
  t.equal(violationKey({ kind: 'foreign-data', subject: 'pipe', detail: 'x' }), 'foreign-data:pipe');
  t.equal(violationKey({ kind: 'crashed', subject: '', detail: 'x' }), 'crashed');
});

t.test('config checks', async (t) => {
  const base = { record: 'config' as const, schema: 1, runId: 'r', kernel: 'k', config: 'xfs', fsType: 'xfs', daxVerified: false, device: null, mountOptions: '' };
  t.same(configChecks({ ...base, fsck: null }), [], 'nothing checked, nothing reported');
  t.same(configChecks({ ...base, fsck: { tool: 'e2fsck -fn', ok: true, exitCode: 0, output: 'clean' } }), [{ name: 'fsck', verdict: 'ok', detail: 'e2fsck -fn: clean' }]);
  t.same(configChecks({ ...base, fsck: null, error: 'no loop device' }), [{ name: 'setup', verdict: 'error', detail: 'no loop device' }]);
  t.same(configViolations({ ...base, fsck: { tool: 'e2fsck -fn', ok: false, exitCode: 4, output: '\n \n' } }), [
    { kind: 'fsck', subject: '', detail: 'e2fsck -fn exited 4: no output' },
  ]);
});

t.test('classes: errnos of refused maps and pins, view order, n/a left out', async (t) => {
  t.equal(outcomeClass(caseRecord('xfs', 'none.punch-hole.pte-sync', { map: { ok: false, errno: null } })), 'map-refused:?');
  t.equal(outcomeClass(caseRecord('xfs', 'uring-fixed.punch-hole.pte-shared', { pin: { ok: false, errno: null } })), 'pin-refused:?');
  t.equal(
    outcomeClass(caseRecord('xfs', 'vmsplice.punch-hole.pte-shared', { views: { canary: 'zero', peer: 'garbage', file: 'n/a', pipe: 'mixed', buffer: 'original' } })),
    'ok pipe=mixed peer=garbage canary=zero',
  );
  t.equal(outcomeClass(caseRecord('xfs', 'none.punch-hole.pte-shared', { sigbus: ['fault-in'] })), 'ok sigbus=fault-in');
  t.equal(
    outcomeClass(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { status: 'abandoned', map: { ok: false, errno: 'EIO' }, pin: { ok: false, errno: 'EIO' }, op: { ok: false, returnedMs: null } })),
    'abandoned',
    "an abandoned worker's map and pin results are not measurements",
  );
});

t.test('verdicts of the rarer heads', async (t) => {
  t.equal(verdictOf(caseRecord('xfs', 'none.punch-hole.pte-shared', { op: { started: false, ok: false, returnedMs: null } })), 'error', 'not started');
  t.equal(verdictOf(caseRecord('xfs', 'vmsplice.punch-hole.pte-shared', { op: { ok: false, errno: 'EINTR', blockedUntilRelease: true } })), 'waited', 'waited, then failed');
  t.equal(verdictOf(caseRecord('xfs', 'odirect-read.punch-hole.pte-shared', { op: { ok: false, returnedMs: null, hung: 'interruptible' } })), 'violation', 'a hang after release');
  t.equal(verdictOf(caseRecord('xfs', 'none.punch-hole.pte-shared'), []), 'ok', 'the violations given are used');
  t.equal(verdictOf(caseRecord('xfs', 'none.punch-hole.pte-shared', { views: { file: 'foreign' } }), []), 'ok', 'even when the record has some');
  t.equal(verdictOf(caseRecord('xfs', 'none.punch-hole.pte-shared'), [{ kind: 'fsck', subject: '', detail: '' }]), 'violation');
});

t.test('severe lines: every pattern of the table', async (t) => {
  const line = (signature: string) => ({ level: 4, signature, text: signature });
  for (const s of ['UBSAN: array-index-out-of-bounds in fs/dax.c:N', 'NMI watchdog: Watchdog detected hard LOCKUP on cpu N', 'possible recursive locking detected', 'rcu: INFO: rcu_sched self-detected stall on CPU']) {
    t.ok(isSevereKernelLine(line(s)), s);
  }
  for (const s of ['WARNINGS are fine in words like WARNINGSx', 'BUGGY driver', 'lockless path']) {
    t.notOk(isSevereKernelLine(line(s)), s);
  }
});
