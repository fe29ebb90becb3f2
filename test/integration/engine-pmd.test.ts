// The PMD observation on this host's kernel: PAGEMAP_SCAN (what lib/engine/pmd.ts
// asks first) must agree with smaps (its fallback before Linux 6.7). Needs root.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { PMD_SIZE } from '../../lib/cases/matrix';
import { DaxPmdTrace, pmdMappedKb, removeStaleTraceInstances } from '../../lib/engine/pmd';
import { within } from '../../lib/engine/time';
import { isSystemError, native } from '../../lib/native';

// PAGEMAP_SCAN against smaps, on tmpfs mounted huge=always (2 MiB folios, PMD-mapped
// at a 2 MiB-aligned address) and huge=never. Needs root and Linux 6.7+.
const hasPagemapScan = (() => {
  try {
    native.pagemapScanHuge(0x10000n, 4096);
    return true;
  } catch (e) {
    return !(isSystemError(e) && e.code === 'ENOTTY');
  }
})();
const skip = process.getuid?.() !== 0 ? 'needs root to mount tmpfs' : !hasPagemapScan ? 'this kernel has no PAGEMAP_SCAN (before 6.7)' : false;

t.test('PAGEMAP_SCAN sees the PMD mappings smaps counts', { skip }, async (t) => {
  for (const huge of ['always', 'never']) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-pmd-'));
    native.mount('tmpfs', dir, 'tmpfs', 0, `huge=${huge},size=16m`);
    try {
      const fd = fs.openSync(path.join(dir, 'f'), 'w+');
      fs.ftruncateSync(fd, PMD_SIZE * 2);
      const m = new native.Mapping(fd, PMD_SIZE * 2, 0, 'shared', PMD_SIZE);
      t.notOk(m.touch(0, PMD_SIZE * 2, 4096).sigbus);
      const scanned = native.pagemapScanHuge(m.address, m.length);
      const kb = pmdMappedKb(fs.readFileSync('/proc/self/smaps', 'utf8'), m.address);
      t.equal(scanned, (kb ?? -1) * 1024, `huge=${huge}: PAGEMAP_SCAN ${scanned} bytes, smaps ${kb} kB`);
      if (huge === 'never') t.equal(scanned, 0);
      m.unmap();
      fs.closeSync(fd);
    } finally {
      // within(): a blocking call alone does not keep node's event loop alive
      t.ok(await within(native.startUmount(dir, 0).promise, 10_000), 'unmounted');
      fs.rmdirSync(dir);
    }
  }
});

// The DAX PMD observation reads a private trace instance; the global buffer (which
// the person running daxpin may be using) must stay as it was.
const TRACEFS = '/sys/kernel/tracing';
const traceSkip =
  process.getuid?.() !== 0 ? 'needs root' : !fs.existsSync(`${TRACEFS}/events/fs_dax/dax_pmd_fault_done`) ? 'this kernel has no fs_dax tracepoints' : false;

t.test('the fs_dax PMD trace lives in its own instance and leaves the global buffer alone', { skip: traceSkip }, async (t) => {
  const globalEnable = `${TRACEFS}/events/fs_dax/dax_pmd_fault_done/enable`;
  const before = fs.readFileSync(globalEnable, 'utf8');
  fs.writeFileSync(`${TRACEFS}/trace_marker`, 'daxpin-test-marker\n');
  // A stale instance of a process that is gone (a SIGKILLed worker's) is removed.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const stale = `${TRACEFS}/instances/daxpin-${dead}`;
  fs.mkdirSync(stale);
  const trace = DaxPmdTrace.open(TRACEFS);
  t.ok(trace, 'opened');
  t.notOk(fs.existsSync(stale), 'the dead process\'s instance is gone');
  t.equal(fs.readFileSync(`${trace!.dir}/events/fs_dax/dax_pmd_fault_done/enable`, 'utf8').trim(), '1', 'the event is on in the instance');
  t.equal(trace!.drain(), '', 'nothing happened: the pipe is empty and does not block');
  trace!.close();
  t.notOk(fs.existsSync(trace!.dir), 'closing removes the instance');
  t.equal(fs.readFileSync(globalEnable, 'utf8'), before, 'the global event switch is as it was');
  // What the orchestrator does after it killed a worker: only dead processes' instances go.
  const live = `${TRACEFS}/instances/daxpin-${process.ppid}`;
  const deadAgain = `${TRACEFS}/instances/daxpin-${spawnSync(process.execPath, ['-e', '0']).pid}`;
  fs.mkdirSync(live);
  fs.mkdirSync(deadAgain);
  try {
    removeStaleTraceInstances();
    t.ok(fs.existsSync(live), 'a live process\'s instance stays');
    t.notOk(fs.existsSync(deadAgain), 'a dead one\'s goes');
  } finally {
    fs.rmdirSync(live);
  }
  t.match(fs.readFileSync(`${TRACEFS}/trace`, 'utf8'), /daxpin-test-marker/, 'the global buffer was not cleared');
});
