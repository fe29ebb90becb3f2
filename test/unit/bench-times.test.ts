// The matrix benchmark's arithmetic over case records: what counts as a hold.
import t from 'tap';
import { overheadPerCaseMs, runTimes } from '../../bench/cli-run';
import { caseRecord } from '../fixtures/runs';

t.test('a case whose op never started (an unsupported pin) holds nothing: overhead never goes negative from it', async (t) => {
  const ran = caseRecord('tmpfs', 'odirect-read.truncate-shrink.pte-shared', { durationMs: 30, holdMs: 200, op: { started: true, returnedMs: 5 } });
  const waited = caseRecord('ext4', 'odirect-read.punch-hole.pte-shared', { durationMs: 260, holdMs: 200, op: { started: true, returnedMs: null } });
  const unsupported = caseRecord('tmpfs', 'nbd-odirect-read.truncate-shrink.pte-shared', { status: 'unsupported', durationMs: 1, holdMs: 200, op: { started: false, returnedMs: null } });
  const times = runTimes([ran, waited, unsupported]);
  t.equal(times.holdsMs, 5 + 200, 'min(returned, hold) for ops that started; 0 for the one that did not');
  t.equal(times.notDone, 1);
  t.equal(overheadPerCaseMs(times), (30 + 260 + 1 - 205) / 3);
  t.ok(overheadPerCaseMs(times) > 0);
});
