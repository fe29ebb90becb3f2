// The kernel log of a case: /dev/kmsg records logged while it ran, with a
// signature that drops what differs between boots and kernels (addresses,
// offsets, pids, CPUs, timestamps, comm names) so the same warning compares equal.
import fs from 'node:fs';
import { KernelLogLine } from '../outcome';
import { native } from '../native';

export interface KmsgRecord {
  level: number;
  seq: number;
  usec: number;
  text: string;
}

export function parseKmsgRecord(raw: string): KmsgRecord | null {
  if (raw === '<lost>') return { level: 4, seq: -1, usec: 0, text: 'daxpin: kernel log records were overwritten before they could be read' };
  const semi = raw.indexOf(';');
  if (semi < 0) return null;
  const [prio, seq, usec] = raw.slice(0, semi).split(',');
  // The message ends at the first newline; continuation lines are " KEY=value" dictionary entries.
  const text = raw.slice(semi + 1).split('\n')[0];
  return { level: Number(prio) & 7, seq: Number(seq), usec: Number(usec), text };
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

const SEVERE = /WARNING:|BUG:|Oops|general protection|lockdep|possible circular locking|blocked for more than|KASAN|UBSAN|RCU stall|Call Trace|kernel BUG|refcount_t|list_add corruption|bad page/i;

/**
 * Which records belong in an outcome: everything at warning level or above, and
 * anything that looks like a splat at any level (some call traces are logged at
 * KERN_DEFAULT). Informational noise (loop, mount messages) is left out.
 */
export function keepRecord(r: KmsgRecord): boolean {
  return r.level <= 4 || SEVERE.test(r.text);
}

export const MAX_LINES_PER_CASE = 200;

export function toKernelLogLines(records: KmsgRecord[]): KernelLogLine[] {
  return records
    .filter(keepRecord)
    .slice(0, MAX_LINES_PER_CASE)
    .map((r) => ({ level: r.level, signature: kernelLogSignature(r.text), text: r.text }));
}

/** One reader for the whole run, positioned at the end of the log when opened. */
export class KernelLog {
  private fd: number | null;

  constructor() {
    try {
      this.fd = native.kmsgOpen(true);
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

export function readTainted(): number | null {
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/tainted', 'utf8').trim());
  } catch {
    return null;
  }
}
