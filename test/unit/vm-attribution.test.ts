// How a boot ended and what the VM runner does next, from what the boot produced.
import t from 'tap';
import { BootFacts, attributeBoot } from '../../lib/vm/attribution';

const base: BootFacts = {
  boot: 2,
  maxBoots: 8,
  exitCode: null,
  panicked: false,
  wedged: false,
  stalled: false,
  timedOut: false,
  setupError: null,
  commandStarted: true,
  cases: 5,
  configs: true,
  inflight: null,
  inflightCase: null,
  inflightConfig: null,
  deadBeforeCommand: 0,
  idleTimeoutMs: 180_000,
  stallTimeoutMs: 300_000,
  lastGuestMessage: null,
  lastConsoleLine: '[ 1.0] last',
  console: '/out/boot-2.console.log',
};
const facts = (f: Partial<BootFacts>): BootFacts => ({ ...base, ...f });

t.test('how a boot ended, in a word: the exit status first, then what killed it', async (t) => {
  t.equal(attributeBoot(facts({ exitCode: 0 })).ended, 'exit 0');
  t.equal(attributeBoot(facts({ exitCode: 2, panicked: true })).ended, 'exit 2');
  t.equal(attributeBoot(facts({ panicked: true, wedged: true })).ended, 'panic');
  t.equal(attributeBoot(facts({ wedged: true, stalled: true })).ended, 'wedged');
  t.equal(attributeBoot(facts({ stalled: true, timedOut: true })).ended, 'stalled');
  t.equal(attributeBoot(facts({ timedOut: true })).ended, 'timed out');
  t.equal(attributeBoot(facts({ setupError: 'mount host root over 9p' })).ended, 'init failed');
  t.equal(attributeBoot(facts({})).ended, 'guest died');
});

t.test('a guest that ran its plan is finished; a panic after it is only noted', async (t) => {
  t.same(attributeBoot(facts({ exitCode: 0 })).action, { kind: 'finished', note: null });
  t.same(attributeBoot(facts({ exitCode: 1 })).action, { kind: 'finished', note: null });
  const late = attributeBoot(facts({ exitCode: 0, panicked: true })).action;
  t.match(late, { kind: 'finished', note: /kernel panicked after the guest command finished \(console: \/out\/boot-2.console.log\)/ });
});

t.test('what stops the kernel', async (t) => {
  t.same(attributeBoot(facts({ setupError: 'mount host root over 9p', panicked: true, inflightCase: 'x/y' })).action, {
    kind: 'stop',
    error: "the guest's init could not mount host root over 9p (console: /out/boot-2.console.log)",
  });
  t.same(attributeBoot(facts({ exitCode: 0, cases: 0, configs: false, lastGuestMessage: 'Cannot find module' })).action, {
    kind: 'stop',
    error: 'the guest command exited with status 0 without running a case: Cannot find module (console: /out/boot-2.console.log)',
  });
  t.same(attributeBoot(facts({ exitCode: 130, inflightCase: 'x/y' })).action, { kind: 'stop', error: 'the guest run was interrupted' });
  t.same(attributeBoot(facts({ exitCode: 2, cases: 0, lastGuestMessage: 'no such device' })).action, {
    kind: 'stop',
    error: "the guest's daxpin exited with status 2: no such device, before its first case (console: /out/boot-2.console.log)",
  });
  t.same(attributeBoot(facts({ panicked: true, cases: 0 })).action, {
    kind: 'stop',
    error: 'kernel panic (boot 2) before the first case: during set-up (console: /out/boot-2.console.log)',
  });
});

t.test('a case cut short is crashed by the kernel, an error by daxpin', async (t) => {
  t.same(attributeBoot(facts({ panicked: true, inflight: 'ext4-dax/a', inflightCase: 'ext4-dax/a' })).action, {
    kind: 'case',
    key: 'ext4-dax/a',
    status: 'crashed',
    error: 'kernel panic (boot 2) during this case',
    what: 'kernel panic (boot 2)',
  });
  t.match(attributeBoot(facts({ wedged: true, inflightCase: 'k' })).action, {
    status: 'crashed',
    error: 'guest wedged: no console output and no result for 180 s (boot 2) during this case',
  });
  t.match(attributeBoot(facts({ stalled: true, inflightCase: 'k' })).action, { error: 'guest stalled: no new result for 300 s (boot 2) during this case' });
  t.match(attributeBoot(facts({ timedOut: true, inflightCase: 'k' })).action, { error: 'guest timed out (boot 2) during this case' });
  t.match(attributeBoot(facts({ inflightCase: 'k' })).action, { error: 'guest ended without finishing (qemu exited; boot 2) during this case' });
  t.match(attributeBoot(facts({ exitCode: 134, inflightCase: 'k', lastGuestMessage: 'Aborted' })).action, {
    kind: 'case',
    status: 'error',
    error: "the guest's daxpin exited with status 134: Aborted during this case",
  });
});

t.test('a crash during a config set-up is the config', async (t) => {
  t.same(attributeBoot(facts({ panicked: true, inflight: 'xfs/', inflightConfig: 'xfs' })).action, {
    kind: 'config',
    config: 'xfs',
    error: 'kernel panic (boot 2) while the guest set the config up; last console line: [ 1.0] last',
    note: 'config xfs: kernel panic (boot 2) while setting it up; its cases are not run',
  });
});

t.test('a kernel that dies in its own boot gets one fresh boot, not two', async (t) => {
  const early = facts({ boot: 1, panicked: true, commandStarted: false, cases: 0, configs: false });
  t.match(attributeBoot(early).action, { kind: 'retry', note: /^kernel panic \(boot 1\) before the guest command started; trying one fresh boot/ });
  t.same(attributeBoot({ ...early, boot: 2, deadBeforeCommand: 1 }).action, {
    kind: 'stop',
    error: 'kernel panic (boot 2) before the first case: the guest command never started (boot 1 died the same way) (console: /out/boot-2.console.log)',
  });
  t.match(attributeBoot({ ...early, boot: 8 }).action, { kind: 'stop' }, 'no retry on the last boot allowed');
});

t.test('a crash outside a case resumes in a fresh boot', async (t) => {
  t.same(attributeBoot(facts({ panicked: true, inflight: 'ext4-dax/a' })).action, {
    kind: 'resume',
    note: 'kernel panic (boot 2) outside a case (after ext4-dax/a); continuing in a fresh boot',
  });
});
