// The kernel log: every /dev/kmsg record of the kernel's own facility, read by one
// reader for the whole run and handed out in slices (a case's, or the gap between
// cases), with a signature that drops what differs between boots and kernels
// (addresses, offsets, pids, CPUs, timestamps, comm names) so the same warning
// compares equal. What counts as a splat is lib/splats.ts's to say.
import fs from 'node:fs';
import { KernelLogLine } from '../outcome';
import { native } from '../native';
import { KERNEL_FACILITY } from '../splats';

export interface KmsgRecord {
  level: number;
  facility: number;
  seq: number;
  usec: number;
  text: string;
}

/** What the reader reports when the kernel overwrote records before they were read. */
export const LOST_RECORDS = 'kernel log records were overwritten before daxpin could read them';

export function parseKmsgRecord(raw: string): KmsgRecord | null {
  if (raw === '<lost>') return { level: 4, facility: -1, seq: -1, usec: 0, text: LOST_RECORDS };
  const semi = raw.indexOf(';');
  if (semi < 0) return null;
  const [prio, seq, usec] = raw.slice(0, semi).split(',');
  // The message ends at the first newline; continuation lines are " KEY=value" dictionary entries.
  const text = raw.slice(semi + 1).split('\n')[0];
  return { level: Number(prio) & 7, facility: Number(prio) >> 3, seq: Number(seq), usec: Number(usec), text };
}

export function kernelLogSignature(text: string): string {
  return text
    .replace(/\b[0-9a-f]{8,16}\b/gi, 'X') // raw addresses and register values
    .replace(/0x[0-9a-f]+/gi, '0xX')
    .replace(/\+0xX\/0xX/g, '') // function+offset/size
    .replace(/\b(CPU|PID|pid|cpu|tgid|Tainted)[:= ]+\s*\S+/g, '$1:N')
    .replace(/\bcomm[:=] ?\S+/gi, 'comm:C')
    .replace(/(\.[chS]):\d+\b/g, '$1:N') // source line numbers move between kernels
    .replace(/\[\s*\d+\.\d+\]/g, '')
    .replace(/\b\d+ seconds\b/g, 'N seconds')
    .replace(/\btask .+:\d+ blocked\b/g, 'task T blocked') // "task %s:%d blocked"; comms hold ':' (kworker/u8:3)
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The kernel's own lines (facility 0), and the reader's note of lost records: user
 * space writing to /dev/kmsg (daxpin's case markers, anyone's "WARNING") is not the kernel.
 */
export function isKernelRecord(r: KmsgRecord): boolean {
  return r.facility === KERNEL_FACILITY || r.text === LOST_RECORDS;
}

/** A slice of the log keeps at most this many lines; how many it dropped is recorded beside them. */
export const MAX_LINES_PER_SLICE = 1000;

export function toKernelLogLines(records: KmsgRecord[]): { lines: KernelLogLine[]; dropped: number } {
  const kernel = records.filter(isKernelRecord);
  const lines = kernel.slice(0, MAX_LINES_PER_SLICE).map((r) => ({ level: r.level, signature: kernelLogSignature(r.text), text: r.text }));
  return { lines, dropped: kernel.length - lines.length };
}

/** Writes a line into the kernel log as user space (LOG_USER|LOG_INFO), e.g. "daxpin: begin CASE". Best effort. */
export function markKernelLog(text: string): void {
  try {
    fs.writeFileSync('/dev/kmsg', `<14>${text}\n`);
  } catch {
    // no /dev/kmsg, or not writable: the markers are a help for console readers only
  }
}

/** One reader for the whole run: from boot (a guest booted for the run) or from now. */
export class KernelLog {
  private fd: number | null;

  constructor(readonly from: 'boot' | 'run-start') {
    try {
      this.fd = native.kmsgOpen(from === 'run-start');
    } catch {
      // No /dev/kmsg (container without it): the outcome says so with an empty log.
      this.fd = null;
    }
  }

  get available(): boolean {
    return this.fd !== null;
  }

  /** Everything logged since the previous call. */
  take(): KmsgRecord[] {
    if (this.fd === null) return [];
    return native.kmsgRead(this.fd).map(parseKmsgRecord).filter((r): r is KmsgRecord => r !== null);
  }
}

let taintedFd: number | null = null;
const taintedBuf = Buffer.alloc(32);

export function readTainted(): number | null {
  try {
    // Read twice a case: one descriptor kept open, read from offset 0 each time.
    taintedFd ??= fs.openSync('/proc/sys/kernel/tainted', fs.constants.O_RDONLY);
    const n = fs.readSync(taintedFd, taintedBuf, 0, taintedBuf.length, 0);
    const text = taintedBuf.toString('latin1', 0, n).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}
