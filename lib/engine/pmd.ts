// Did the mapping get a 2 MiB PMD entry? For fsdax the fs_dax:dax_pmd_fault_done
// tracepoint says so for each huge fault (smaps does not count DAX); for page-cache
// and shmem files the page tables do: PAGEMAP_SCAN's PAGE_IS_HUGE (Linux 6.7+), else
// smaps' FilePmdMapped/ShmemPmdMapped. When none can be read the answer is null.
import fs from 'node:fs';
import { PMD_SIZE } from '../cases/matrix';
import { MappingHandle, isSystemError, native } from '../native';

const TRACEFS_CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];
const EVENT = 'events/fs_dax/dax_pmd_fault_done';

function findTracefs(): string | null {
  for (const dir of TRACEFS_CANDIDATES) if (fs.existsSync(`${dir}/trace`)) return dir;
  // Not mounted: mounting tracefs at its standard place changes nothing else.
  try {
    native.mount('nodev', TRACEFS_CANDIDATES[0], 'tracefs', 0, '');
    return fs.existsSync(`${TRACEFS_CANDIDATES[0]}/trace`) ? TRACEFS_CANDIDATES[0] : null;
  } catch {
    return null;
  }
}

/** Whether one tracepoint line reports a successful PMD fault of inode `ino`. */
export function isPmdFaultLine(line: string, ino: number): boolean {
  if (!line.includes('dax_pmd_fault_done')) return false;
  if (!new RegExp(`\\bino 0x${ino.toString(16)}\\b`).test(line)) return false;
  return !/\bFALLBACK\b/.test(line) && /\bNOPAGE\b/.test(line);
}

/**
 * PMD-mapped kB of the VMA starting at `address` in smaps text: FilePmdMapped plus
 * ShmemPmdMapped (a tmpfs file counts only in the latter). null without either field.
 */
export function pmdMappedKb(smaps: string, address: bigint): number | null {
  const start = address.toString(16);
  const lines = smaps.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith(`${start}-`)) continue;
    let kb: number | null = null;
    for (let j = i + 1; j < lines.length && !/^[0-9a-f]+-[0-9a-f]+ /.test(lines[j]); j++) {
      const m = /^(?:File|Shmem)PmdMapped:\s+(\d+) kB/.exec(lines[j]);
      if (m) kb = (kb ?? 0) + Number(m[1]);
    }
    return kb;
  }
  return null;
}

export class PmdProbe {
  private tracefs: string | null | undefined;
  /** false once PAGEMAP_SCAN turned out not to exist (before Linux 6.7). */
  private pagemapScan = true;

  private daxEvent(): string | null {
    if (this.tracefs === undefined) {
      this.tracefs = findTracefs();
      if (this.tracefs && fs.existsSync(`${this.tracefs}/${EVENT}/enable`)) {
        fs.writeFileSync(`${this.tracefs}/${EVENT}/enable`, '1');
      } else {
        this.tracefs = null;
      }
    }
    return this.tracefs;
  }

  /**
   * A PMD entry maps an aligned 2 MiB of the VMA, so a VMA shorter than that cannot
   * have one: no trace or smaps read (smaps of a node process cost ~1.5 ms a case).
   */
  static canHavePmd(mapping: MappingHandle): boolean {
    return mapping.length >= PMD_SIZE;
  }

  /**
   * Call before faulting the mapping in: clears the trace buffer, which only a DAX
   * file's probe reads (clearing costs a synchronize_rcu, ~18 ms a case natively).
   */
  async begin(mapping: MappingHandle, dax: boolean): Promise<void> {
    if (!dax || !PmdProbe.canHavePmd(mapping)) return;
    const t = this.daxEvent();
    if (t) fs.writeFileSync(`${t}/trace`, '');
  }

  async end(mapping: MappingHandle, ino: number, dax: boolean): Promise<boolean | null> {
    if (!PmdProbe.canHavePmd(mapping)) return false;
    if (dax) {
      const t = this.daxEvent();
      if (!t) return null;
      return fs.readFileSync(`${t}/trace`, 'utf8').split('\n').some((l) => isPmdFaultLine(l, ino));
    }
    if (this.pagemapScan) {
      try {
        return native.pagemapScanHuge(mapping.address, mapping.length) > 0;
      } catch (e) {
        if (!isSystemError(e) || !['ENOTTY', 'EINVAL', 'EOPNOTSUPP'].includes(e.code)) throw e;
        this.pagemapScan = false;
      }
    }
    // A node process has hundreds of VMAs: this read costs ~1.5 ms natively.
    const kb = pmdMappedKb(fs.readFileSync('/proc/self/smaps', 'utf8'), mapping.address);
    return kb === null ? null : kb > 0;
  }
}
