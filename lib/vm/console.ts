// The guest's serial console as the host reads it: lines cleaned for a text file, the
// kernel's splats picked out of it (a crashed case carries them), and the guest's own
// last words for messages.

import * as fs from 'node:fs';
import { kernelLogSignature } from '../engine/kmsg';
import { KernelLogLine } from '../outcome';
import { CALL_TRACE, consoleLevelOf, splatOf } from '../splats';

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1bc|[\x00-\x08\x0b-\x1f\x7f]/g;

/** A console line fit for a text file: terminal escapes and control characters removed. */
export function cleanConsoleLine(line: string): string {
  return line.replace(ANSI, '');
}

const KERNEL_TIMESTAMP = /^\[\s*\d+\.\d+\]\s?/;

/**
 * Kernel log lines in a console excerpt that are splats (lib/splats.ts, the one table)
 * or the call trace under one. Only lines with a kernel timestamp (the guest's own
 * output has none). The console carries no syslog levels: each splat stands for the
 * level its table row gives; a call-trace line for 4.
 */
export function consoleKernelLog(lines: string[]): KernelLogLine[] {
  const out: KernelLogLine[] = [];
  for (const raw of lines) {
    const line = cleanConsoleLine(raw);
    if (!KERNEL_TIMESTAMP.test(line)) continue;
    const text = line.replace(KERNEL_TIMESTAMP, '').trimEnd();
    const splat = splatOf(text);
    if (splat === null && !CALL_TRACE.test(text)) continue;
    out.push({ level: splat === null ? 4 : consoleLevelOf(splat), signature: kernelLogSignature(text), text });
  }
  return out;
}

/** The last line of the guest's own output (no kernel timestamp, no init marker), for messages. */
export function lastGuestLine(consoleTail: string[]): string | null {
  for (let i = consoleTail.length - 1; i >= 0; i--) {
    const line = cleanConsoleLine(consoleTail[i]).trim();
    if (line === '' || KERNEL_TIMESTAMP.test(line) || line.startsWith('daxpin-guest:') || line.startsWith('qemu:')) continue;
    if (/^(Node\.js v|\s*at |\^|\}|requireStack|code:)/.test(line)) continue;
    return line.replace(/^daxpin:\s*/, '');
  }
  return null;
}

/** Distinct splats a boot's console may name before the rest are left out. */
const MAX_SPLATS = 20;
/** Console lines kept in memory for the crashed case's kernel log. */
const TIMED_LINES_KEPT = 1000;

/**
 * One boot's console: every line written to `boot-N.console.log`, the recent ones kept
 * with the host time they arrived (a crashed case gets those since it began), and the
 * distinct splats it showed.
 */
export class BootConsole {
  private readonly fd: number;
  private readonly timed: { at: number; line: string }[] = [];
  private readonly splats = new Map<string, string>();

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'w');
  }

  add(line: string): void {
    const clean = cleanConsoleLine(line);
    this.timed.push({ at: Date.now(), line: clean });
    if (this.timed.length > 2 * TIMED_LINES_KEPT) this.timed.splice(0, this.timed.length - TIMED_LINES_KEPT);
    fs.writeSync(this.fd, `${clean}\n`);
    for (const l of consoleKernelLog([clean])) {
      if (this.splats.size < MAX_SPLATS && !/^Call Trace/.test(l.text) && !this.splats.has(l.signature)) this.splats.set(l.signature, l.text);
    }
  }

  /** Lines that arrived at or after `at` (host ms). */
  since(at: number): string[] {
    return this.timed.filter((t) => t.at >= at).map((t) => t.line);
  }

  get warnings(): string[] {
    return [...this.splats.values()];
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
