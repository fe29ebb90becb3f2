// Did the mapping get a 2 MiB PMD entry? For fsdax the fs_dax:dax_pmd_fault_done
// tracepoint says so for each huge fault (smaps does not count DAX); for page-cache
// and shmem files the page tables do: PAGEMAP_SCAN's PAGE_IS_HUGE (Linux 6.7+), else
// smaps' FilePmdMapped/ShmemPmdMapped. When none can be read the answer is null.
import fs from 'node:fs';
import { PMD_SIZE } from '../cases/matrix';
import { MappingHandle, isSystemError, native } from '../native';
import { staleTraceInstances } from '../host/leftovers';

const TRACEFS_CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];
const EVENT = 'events/fs_dax/dax_pmd_fault_done';

/**
 * tracefs at its standard place, mounted there if it is not. The debugfs path is the
 * last resort: from 6.17 on, reaching tracefs through debugfs logs a deprecation NOTICE,
 * which would pass for the kernel's own words in a case's log.
 */
function findTracefs(): string | null {
  const [standard, viaDebugfs] = TRACEFS_CANDIDATES;
  if (fs.existsSync(`${standard}/trace`)) return standard;
  // Not mounted: mounting tracefs at its standard place changes nothing else.
  try {
    native.mount('nodev', standard, 'tracefs', 0, '');
    if (fs.existsSync(`${standard}/trace`)) return standard;
  } catch {
    // no tracefs at the standard place
  }
  return fs.existsSync(`${viaDebugfs}/trace`) ? viaDebugfs : null;
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

/** Trace instances this process family makes: `daxpin-<pid>` (host/leftovers.ts finds dead ones). */
const INSTANCE_PREFIX = 'daxpin-';

/** rmdir of an instance; one still being read (busy) or already gone is left be. */
function removeInstance(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // busy (a reader still has its pipe open) or gone
  }
}

/**
 * Removes the trace instances of daxpin processes that are gone (a worker killed before
 * it could remove its own). Never mounts tracefs: where it is not mounted, there are none.
 */
export function removeStaleTraceInstances(): void {
  for (const l of staleTraceInstances()) removeInstance(l.target);
}

/**
 * A private trace instance with only the fs_dax PMD event enabled, read through its
 * trace_pipe. The global buffer, which the person running daxpin may be using, is
 * never touched; reading the pipe consumes events, so nothing is ever cleared (a
 * clear costs a synchronize_rcu, ~18 ms natively).
 */
export class DaxPmdTrace {
  private constructor(
    readonly dir: string,
    private fd: number,
  ) {}

  /** null when tracefs, instances or the fs_dax event are not there. */
  static open(tracefs: string): DaxPmdTrace | null {
    const instances = `${tracefs}/instances`;
    if (!fs.existsSync(`${tracefs}/${EVENT}`) || !fs.existsSync(instances)) return null;
    removeStaleTraceInstances();
    const dir = `${instances}/${INSTANCE_PREFIX}${process.pid}`;
    try {
      if (!fs.existsSync(dir)) fs.mkdirSync(dir);
      fs.writeFileSync(`${dir}/${EVENT}/enable`, '1');
      const fd = fs.openSync(`${dir}/trace_pipe`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const trace = new DaxPmdTrace(dir, fd);
      process.once('exit', () => trace.close());
      return trace;
    } catch {
      removeInstance(dir);
      return null;
    }
  }

  /** Everything the pipe holds now, consumed. */
  drain(): string {
    if (this.fd < 0) return '';
    const chunks: string[] = [];
    const buf = Buffer.allocUnsafe(65536);
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(this.fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw e;
      }
      if (n <= 0) break;
      chunks.push(buf.toString('utf8', 0, n));
    }
    return chunks.join('');
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
    removeInstance(this.dir);
  }
}

export class PmdProbe {
  private trace: DaxPmdTrace | null | undefined;
  /** false once PAGEMAP_SCAN turned out not to exist (before Linux 6.7). */
  private pagemapScan = true;

  private daxTrace(): DaxPmdTrace | null {
    if (this.trace === undefined) {
      const tracefs = findTracefs();
      this.trace = tracefs ? DaxPmdTrace.open(tracefs) : null;
    }
    return this.trace;
  }

  /**
   * A PMD entry maps an aligned 2 MiB of the VMA, so a VMA shorter than that cannot
   * have one: no trace or smaps read (smaps of a node process cost ~1.5 ms a case).
   */
  static canHavePmd(mapping: MappingHandle): boolean {
    return mapping.length >= PMD_SIZE;
  }

  /** Call before faulting the mapping in: drops the PMD events of earlier faults. */
  async begin(mapping: MappingHandle, dax: boolean): Promise<void> {
    if (!dax || !PmdProbe.canHavePmd(mapping)) return;
    this.daxTrace()?.drain();
  }

  async end(mapping: MappingHandle, ino: number, dax: boolean): Promise<boolean | null> {
    if (!PmdProbe.canHavePmd(mapping)) return false;
    if (dax) {
      const t = this.daxTrace();
      if (!t) return null;
      return t.drain().split('\n').some((l) => isPmdFaultLine(l, ino));
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
