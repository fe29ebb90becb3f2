// Parsers of what the kernel exposes: fs_dax tracepoint lines and smaps (PMD
// faults), /proc task stat and stack (stuck threads). No DAX needed.
import t from 'tap';
import { isPmdFaultLine, pmdMappedKb } from '../../lib/engine/pmd';
import { holdersUnder, isDying, parseDying, parseStack, parseStatState, readAllTasks, readTaskState } from '../../lib/engine/tasks';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// As printed by the fs_dax:dax_pmd_fault_done tracepoint (include/trace/events/fs_dax.h).
const NOPAGE =
  '            node-4242    [001] .....  1234.567890: dax_pmd_fault_done: dev 259:0 ino 0xc shared WRITE|ALLOW_RETRY|KILLABLE|USER address 0x7f1234400000 vm_start 0x7f1234400000 vm_end 0x7f1234800000 pgoff 0x0 max_pgoff 0x3ff NOPAGE';
const FALLBACK =
  '            node-4242    [000] .....  1234.600000: dax_pmd_fault_done: dev 259:0 ino 0xc shared ALLOW_RETRY|KILLABLE|USER address 0x7f1234600000 vm_start 0x7f1234400000 vm_end 0x7f1234800000 pgoff 0x200 max_pgoff 0x3ff FALLBACK';
const START =
  '            node-4242    [001] .....  1234.567800: dax_pmd_fault: dev 259:0 ino 0xc shared WRITE|ALLOW_RETRY|KILLABLE|USER address 0x7f1234400000 vm_start 0x7f1234400000 vm_end 0x7f1234800000 pgoff 0x0 max_pgoff 0x3ff';

t.test('a NOPAGE dax_pmd_fault_done of the inode is a PMD fault', async (t) => {
  t.ok(isPmdFaultLine(NOPAGE, 12));
});

t.test('FALLBACK, another inode, or the fault-start event are not', async (t) => {
  t.notOk(isPmdFaultLine(FALLBACK, 12), 'fell back to PTEs');
  t.notOk(isPmdFaultLine(NOPAGE, 13), 'another inode');
  t.notOk(isPmdFaultLine(NOPAGE.replace('ino 0xc ', 'ino 0xc0 '), 12), 'an inode whose hex starts the same');
  t.notOk(isPmdFaultLine(NOPAGE.replace('ino 0xc ', 'ino 0x1c '), 12));
  t.notOk(isPmdFaultLine(START, 12), 'dax_pmd_fault (start) has no result');
  t.notOk(isPmdFaultLine('# tracer: nop', 12));
  t.notOk(isPmdFaultLine('', 12));
  t.notOk(isPmdFaultLine(NOPAGE.replace(' NOPAGE', ' NOPAGE|FALLBACK'), 12));
});

const SMAPS = `7f1234400000-7f1234800000 rw-s 00000000 07:00 12                         /tmp/mnt/daxpin-1/case-1-1.data
Size:               4096 kB
KernelPageSize:        4 kB
Rss:                4096 kB
FilePmdMapped:      2048 kB
Locked:                0 kB
7f1234800000-7f1234a00000 rw-s 00000000 07:00 13                         /tmp/mnt/daxpin-1/case-1-2.data
Size:               2048 kB
Rss:                   0 kB
FilePmdMapped:         0 kB
7f1234a00000-7f1234a01000 rw-p 00000000 00:00 0
Size:                  4 kB
Rss:                   4 kB
7f1234c00000-7f1234c01000 rw-p 00000000 00:00 0
Size:                  4 kB
FilePmdMapped:      9999 kB
7f1234e00000-7f1235200000 rw-s 00000000 00:27 2                          /tmp/hugetmpfs/x
ShmemPmdMapped:     4096 kB
FilePmdMapped:         0 kB
`;

t.test('PMD-mapped kB of the VMA at an address', async (t) => {
  t.equal(pmdMappedKb(SMAPS, 0x7f1234400000n), 2048);
  t.equal(pmdMappedKb(SMAPS, 0x7f1234800000n), 0);
  t.equal(pmdMappedKb(SMAPS, 0x7f1234e00000n), 4096, 'a tmpfs file counts in ShmemPmdMapped');
  t.equal(pmdMappedKb(SMAPS, 0x7f1234a00000n), null, 'a VMA without the field: not the next VMA\'s value');
  t.equal(pmdMappedKb(SMAPS, 0x7f1234500000n), null, 'an address inside a VMA is not its start');
  t.equal(pmdMappedKb(SMAPS, 0x1000n), null, 'no such VMA');
  t.equal(pmdMappedKb('', 0x1000n), null);
});

t.test('task state: the letter after the last ")" even when the comm holds ") " and spaces', async (t) => {
  t.equal(parseStatState('1234 (node) S 1 1234 1234 0 -1 4194560 ...'), 'S');
  t.equal(parseStatState('1234 (a) b) c) D 1 1234 1234 0 -1 4194560'), 'D');
  t.equal(parseStatState('77 (my worker ) ) R 1 77'), 'R');
  t.equal(parseStatState('77 (() Z 1 77'), 'Z');
  t.equal(parseStatState('no parenthesis at all'), null);
  t.equal(parseStatState('77 (x)'), null, 'nothing after the comm');
});

t.test('kernel stack: frames without the [<addr>] prefix, blank lines dropped', async (t) => {
  const text = '[<0>] percpu_rwsem_wait+0x12d/0x150\n[<0>] mnt_want_write+0x9f/0xc0\n[<ffffffff81000000>] do_unlinkat+0x81/0x2f0\n\n';
  t.same(parseStack(text), ['percpu_rwsem_wait+0x12d/0x150', 'mnt_want_write+0x9f/0xc0', 'do_unlinkat+0x81/0x2f0']);
  t.same(parseStack(''), []);
});

t.test('this process: its main thread is listed and running (read from /proc)', async (t) => {
  const tasks = readAllTasks(process.pid);
  const main = tasks.find((x) => x.tid === process.pid);
  t.ok(main, 'the main thread is a task');
  t.equal(main?.state, 'R', 'reading its own stat, the main thread is running');
  t.ok(tasks.length > 1, `node has helper threads (${tasks.length})`);
  t.same(readAllTasks(2 ** 30), [], 'no such process');
  t.equal(readTaskState(process.pid, 2 ** 30).state, null, 'no such thread');
});

const STATUS = (state: string, sigPnd = '0000000000000000', shdPnd = '0000000000000000') =>
  `Name:\tnode\nUmask:\t0022\nState:\t${state}\nTgid:\t4242\nPid:\t4242\nSigQ:\t0/94743\nSigPnd:\t${sigPnd}\nShdPnd:\t${shdPnd}\nSigBlk:\t0000000000000000\n`;

t.test('a killed process that has not exited yet is dying; a sleeping one is not', async (t) => {
  t.notOk(parseDying(STATUS('S (sleeping)')));
  t.notOk(parseDying(STATUS('D (disk sleep)')), 'in D state but not killed');
  t.ok(parseDying(STATUS('Z (zombie)')), 'main thread gone, another thread still in the kernel');
  t.ok(parseDying(STATUS('D (disk sleep)', '0000000000000100')), 'SIGKILL pending on the thread');
  t.ok(parseDying(STATUS('D (disk sleep)', '0000000000000000', '0000000000000100')), 'SIGKILL pending on the process');
  t.notOk(parseDying(STATUS('S (sleeping)', '0000000000000002')), 'SIGINT pending is not dying');
  t.notOk(isDying(process.pid), 'this process');
  t.notOk(isDying(2 ** 30), 'no such process');
});

t.test('holdersUnder names the processes with an open file or cwd under a directory (what keeps a mount busy)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-holders-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.same(holdersUnder(dir), [], 'nobody yet');
  const fd = fs.openSync(path.join(dir, 'f'), 'w');
  const mine = holdersUnder(dir).find((h) => h.startsWith(`${process.pid}: `));
  t.match(mine, new RegExp(`fd ${fd} ${dir}/f`), 'this process, by its fd');
  fs.closeSync(fd);
  t.same(holdersUnder(`${dir}-other`), [], 'a sibling with the same prefix is not under it');
});
