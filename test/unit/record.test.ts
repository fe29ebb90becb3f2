// The run, config and end lines both runners write.
import t from 'tap';
import { findConfig } from '../../lib/cases/matrix';
import { SCHEMA_VERSION } from '../../lib/outcome';
import { configRecord, endRecord, runRecord } from '../../lib/record';

t.test('run record: accel only for guests', async (t) => {
  const at = new Date('2026-12-01T00:00:00Z');
  const base = { runId: 'r', kernel: 'k', host: 'h', startedAt: at, argv: ['run'], holdMs: 1, settleMs: 2, planned: ['a/b'], runner: 'native' as const };
  t.same(runRecord(base), { record: 'run', schema: SCHEMA_VERSION, runId: 'r', kernel: 'k', host: 'h', startedAt: at.toISOString(), argv: ['run'], holdMs: 1, settleMs: 2, planned: ['a/b'], runner: 'native' });
  t.equal(runRecord({ ...base, runner: 'vm', accel: 'tcg' }).accel, 'tcg');
});

t.test('config record: what the set-up established, else the config defaults', async (t) => {
  const xfs = findConfig('xfs-dax') ?? findConfig('xfs')!;
  const failed = configRecord({ runId: 'r', kernel: 'k' }, xfs, { device: '/dev/pmem0' }, { error: 'boom' });
  t.match(failed, { record: 'config', config: xfs.name, fsType: xfs.fsType, daxVerified: false, device: '/dev/pmem0', mountOptions: '', fsck: null, error: 'boom' });
  const ok = configRecord({ runId: 'r', kernel: 'k' }, xfs, { fsType: 'xfs', daxVerified: true, device: '/dev/pmem0', mountOptions: 'dax=always' }, {});
  t.notOk('error' in ok);
  t.equal(ok.daxVerified, true);
});

t.test('end record: error only when there is one', async (t) => {
  t.notOk('error' in endRecord('r', [], false, null));
  t.match(endRecord('r', ['a/b'], true, 'gave up'), { record: 'end', notRun: ['a/b'], interrupted: true, error: 'gave up' });
});
