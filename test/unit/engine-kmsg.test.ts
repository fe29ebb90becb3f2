// /dev/kmsg records: parsing (prefix, continuation lines, <lost>), the signature
// that makes the same warning compare equal across boots and kernels, and which
// records a case keeps. No kernel needed.
import t from 'tap';
import { KmsgRecord, MAX_LINES_PER_CASE, keepRecord, kernelLogSignature, parseKmsgRecord, toKernelLogLines } from '../../lib/engine/kmsg';

t.test('a record: level from the priority, sequence, timestamp, text up to the first newline', async (t) => {
  t.same(parseKmsgRecord('4,18734,98765432,-;WARNING: CPU: 1 PID: 42 at fs/dax.c:876 dax_insert_entry+0x1b2/0x2a0'), {
    level: 4,
    seq: 18734,
    usec: 98765432,
    text: 'WARNING: CPU: 1 PID: 42 at fs/dax.c:876 dax_insert_entry+0x1b2/0x2a0',
  });
  // facility user (1 << 3) + level 6: the level is the low three bits
  t.equal(parseKmsgRecord('14,5,6,-;hello')?.level, 6);
  t.equal(parseKmsgRecord('0,1,2,c;panic')?.level, 0);
});

t.test('continuation lines (dictionary " KEY=value") are not part of the text', async (t) => {
  const raw = '3,900,1234,-;loop0: detected capacity change from 0 to 1048576\n SUBSYSTEM=block\n DEVICE=b7:0\n';
  const r = parseKmsgRecord(raw);
  t.equal(r?.text, 'loop0: detected capacity change from 0 to 1048576');
  t.equal(r?.level, 3);
  t.equal(r?.seq, 900);
});

t.test('a text with semicolons keeps them', async (t) => {
  t.equal(parseKmsgRecord('6,1,1,-;a; b; c')?.text, 'a; b; c');
});

t.test('<lost> becomes a warning-level record that says records were overwritten', async (t) => {
  const r = parseKmsgRecord('<lost>');
  t.equal(r?.level, 4);
  t.equal(r?.seq, -1);
  t.match(r?.text, /overwritten/);
  t.ok(r && keepRecord(r), 'kept: a case must say its log is incomplete');
});

t.test('something without a prefix is not a record', async (t) => {
  t.equal(parseKmsgRecord('no prefix here'), null);
  t.equal(parseKmsgRecord(''), null);
});

t.test('the same warning from two boots, pids, CPUs and addresses has one signature', async (t) => {
  const a = 'WARNING: CPU: 3 PID: 1234 at fs/dax.c:876 dax_insert_entry+0x1b2/0x2a0';
  const b = 'WARNING: CPU: 0 PID: 98 at fs/dax.c:876 dax_insert_entry+0x99/0x2a0';
  t.equal(kernelLogSignature(a), kernelLogSignature(b));
  t.equal(kernelLogSignature(a), 'WARNING: CPU:N PID:N at fs/dax.c:N dax_insert_entry');
  t.equal(
    kernelLogSignature('RIP: 0010:dax_insert_entry+0x1b2/0x2a0'),
    kernelLogSignature('RIP: 0010:dax_insert_entry+0x12/0x2a0'),
  );
  t.equal(
    kernelLogSignature('RSP: 0018:ffffc90000a3fb98 EFLAGS: 00010246'),
    kernelLogSignature('RSP: 0018:ffffc90001b7fc10 EFLAGS: 00010282'),
  );
  t.equal(
    kernelLogSignature('BUG: unable to handle page fault for address: ffff888012345678'),
    kernelLogSignature('BUG: unable to handle page fault for address: ffff88807654abcd'),
  );
  t.equal(
    kernelLogSignature('CPU: 1 UID: 0 PID: 4242 Comm: node Tainted: G        W          6.18.44 #1'),
    kernelLogSignature('CPU: 0 UID: 0 PID: 77 Comm: kworker/u8:3 Tainted: G        W          6.18.44 #1'),
  );
  t.equal(kernelLogSignature('[  123.456789] WARNING: something'), kernelLogSignature('[98765.000001] WARNING: something'));
});

t.test('the same warning on two kernels (its line number moved) has one signature', async (t) => {
  t.equal(
    kernelLogSignature('WARNING: CPU: 3 PID: 1234 at fs/dax.c:876 dax_insert_entry+0x1b2/0x2a0'),
    kernelLogSignature('WARNING: CPU: 1 PID: 5 at fs/dax.c:912 dax_insert_entry+0x1a0/0x2b0'),
  );
  t.equal(kernelLogSignature('kernel BUG at mm/filemap.c:1504!'), 'kernel BUG at mm/filemap.c:N!');
});

t.test('hung-task lines: task name and pid go, even when the comm holds a colon', async (t) => {
  const a = kernelLogSignature('INFO: task kworker/u8:3:1234 blocked for more than 122 seconds.');
  const b = kernelLogSignature('INFO: task node:999 blocked for more than 245 seconds.');
  t.equal(a, b);
  t.equal(a, 'INFO: task T blocked for more than N seconds.');
});

t.test('different warnings keep different signatures', async (t) => {
  const sigs = [
    'WARNING: CPU: 3 PID: 1234 at fs/dax.c:876 dax_insert_entry+0x1b2/0x2a0',
    'WARNING: CPU: 3 PID: 1234 at fs/dax.c:876 dax_disassociate_entry+0x1b2/0x2a0',
    'WARNING: CPU: 3 PID: 1234 at mm/gup.c:876 try_grab_folio+0x1b2/0x2a0',
    'BUG: Bad page state in process node  pfn:12345',
    'INFO: task node:999 blocked for more than 245 seconds.',
    'general protection fault, probably for non-canonical address 0xdead000000000100',
  ].map(kernelLogSignature);
  t.equal(new Set(sigs).size, sigs.length, sigs.join(' | '));
});

const rec = (level: number, text: string): KmsgRecord => ({ level, seq: 1, usec: 1, text });

t.test('keepRecord: warning level and above, and splats at any level; not routine noise', async (t) => {
  t.ok(keepRecord(rec(4, 'some driver: odd but harmless')));
  t.ok(keepRecord(rec(3, 'Buffer I/O error on dev loop0')));
  t.ok(keepRecord(rec(0, 'Kernel panic - not syncing')));
  t.ok(keepRecord(rec(6, 'Call Trace:')), 'call traces are logged at KERN_DEFAULT');
  t.ok(keepRecord(rec(6, 'INFO: task node:1 blocked for more than 10 seconds.')));
  t.ok(keepRecord(rec(7, 'possible circular locking dependency detected')));
  t.notOk(keepRecord(rec(6, 'loop0: detected capacity change from 0 to 1048576')));
  t.notOk(keepRecord(rec(5, 'EXT4-fs (loop0): mounted filesystem r/w with ordered data mode')));
  t.notOk(keepRecord(rec(6, 'XFS (loop1): Ending clean mount')));
});

t.test('toKernelLogLines keeps what keepRecord keeps, signed, and caps the count', async (t) => {
  const lines = toKernelLogLines([
    rec(6, 'loop0: detected capacity change'),
    rec(4, 'WARNING: CPU: 2 PID: 7 at fs/dax.c:1 f+0x1/0x2'),
  ]);
  t.same(lines, [{ level: 4, signature: 'WARNING: CPU:N PID:N at fs/dax.c:N f', text: 'WARNING: CPU: 2 PID: 7 at fs/dax.c:1 f+0x1/0x2' }]);
  const many = Array.from({ length: MAX_LINES_PER_CASE + 50 }, (_, i) => rec(4, `warning ${i}`));
  t.equal(toKernelLogLines(many).length, MAX_LINES_PER_CASE);
});
