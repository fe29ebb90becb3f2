// /dev/kmsg records: parsing (prefix, continuation lines, <lost>), the signature
// that makes the same warning compare equal across boots and kernels, and which
// records a case keeps. No kernel needed.
import t from 'tap';
import { KmsgRecord, LOST_RECORDS, MAX_LINES_PER_SLICE, isKernelRecord, kernelLogSignature, parseKmsgRecord, toKernelLogLines } from '../../lib/engine/kmsg';

t.test('a record: level from the priority, sequence, timestamp, text up to the first newline', async (t) => {
  t.same(parseKmsgRecord('4,18734,98765432,-;WARNING: CPU: 1 PID: 42 at fs/dax.c:876 dax_insert_entry+0x1b2/0x2a0'), {
    level: 4,
    facility: 0,
    seq: 18734,
    usec: 98765432,
    text: 'WARNING: CPU: 1 PID: 42 at fs/dax.c:876 dax_insert_entry+0x1b2/0x2a0',
  });
  // facility user (1 << 3) + level 6: the level is the low three bits
  t.equal(parseKmsgRecord('14,5,6,-;hello')?.level, 6);
  t.equal(parseKmsgRecord('14,5,6,-;hello')?.facility, 1, 'the facility is the rest');
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
  t.ok(r && isKernelRecord(r), 'kept: a case must say its log is incomplete');
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

const rec = (level: number, text: string, facility = 0): KmsgRecord => ({ level, facility, seq: 1, usec: 1, text });

t.test('every kernel-facility line is kept, whatever its level; user space writing to /dev/kmsg is not the kernel', async (t) => {
  t.ok(isKernelRecord(rec(6, 'loop0: detected capacity change from 0 to 1048576')));
  t.ok(isKernelRecord(rec(7, 'XFS (loop1): Ending clean mount')));
  t.ok(isKernelRecord(rec(0, 'Kernel panic - not syncing')));
  t.notOk(isKernelRecord(rec(4, 'WARNING: CPU: 0 PID: 1 at fake.c:1 user space pretending', 1)), 'a user-space WARNING');
  t.notOk(isKernelRecord(rec(6, 'daxpin: begin ext4-dax/none.truncate-shrink.pte-shared', 1)), "daxpin's own case marker");
  t.ok(isKernelRecord(rec(4, LOST_RECORDS, -1)), 'the note of lost records');
});

t.test('toKernelLogLines keeps the kernel lines, signed, and says how many it dropped beyond the cap', async (t) => {
  const { lines, dropped } = toKernelLogLines([
    rec(6, 'loop0: detected capacity change'),
    rec(4, 'WARNING: CPU: 2 PID: 7 at fs/dax.c:1 f+0x1/0x2'),
    rec(4, 'WARNING: from user space', 1),
  ]);
  t.same(lines, [
    { level: 6, signature: 'loop0: detected capacity change', text: 'loop0: detected capacity change' },
    { level: 4, signature: 'WARNING: CPU:N PID:N at fs/dax.c:N f', text: 'WARNING: CPU: 2 PID: 7 at fs/dax.c:1 f+0x1/0x2' },
  ]);
  t.equal(dropped, 0);
  const many = Array.from({ length: MAX_LINES_PER_SLICE + 50 }, (_, i) => rec(4, `warning ${i}`));
  const capped = toKernelLogLines(many);
  t.equal(capped.lines.length, MAX_LINES_PER_SLICE);
  t.equal(capped.dropped, 50, 'no silent cap');
});
