// Running cases through the real engine (orchestrator -> worker -> timeline) on a
// scratch config of this host, plus the direct syscall experiments tests compare
// daxpin's records with.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomInt } from 'node:crypto';
import { Case, PAGE, PIN_FIRST_PAGE, PIN_PAGES, PMD_SIZE, PTE_FILE_PAGES, casesFor, findConfig } from '../../lib/cases/matrix';
import { ORIGINAL, Tag, WRITTEN, makePattern, readView } from '../../lib/cases/patterns';
import { abortFuseConnectionsFor, settled } from '../../lib/host/lifecycle';
import { PreparedConfig, prepareScratch } from '../../lib/configs/setup';
import { CaseTiming, Orchestrator } from '../../lib/engine/orchestrator';
import { KernelLog } from '../../lib/engine/kmsg';
import { newRunId } from '../../lib/engine/run';
import { CaseRecord, SyscallResult, ViewClass } from '../../lib/outcome';
import { MappingHandle, isSystemError, native } from '../../lib/native';

export const TIMING: CaseTiming = {
  holdMs: 300,
  holdMode: 'evidence',
  dwellMs: 25,
  settleMs: 1000,
  signalWaitMs: 1000,
  caseBudgetMs: 30_000,
  canaryBytes: 256 * 1024,
};

export function findCase(configName: string, id: string): Case {
  const config = findConfig(configName);
  const c = config && casesFor(config, 'full').find((x) => x.id === id);
  if (!c) throw new Error(`no case ${configName}/${id}`);
  return c;
}

export interface Scratch {
  prepared: PreparedConfig;
  /** The private work dir holding the loop file, mount point and FUSE mounts. */
  workDir: string;
  /** Runs cases in order with the given timing; close() ends the workers. */
  run(ids: string[], timing?: CaseTiming): Promise<Map<string, CaseRecord>>;
  close(): Promise<void>;
}

/** Prepares a scratch config (loop ext4/XFS or tmpfs) in a private work dir. */
export async function scratch(configName: string): Promise<Scratch> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-engine-'));
  const prepared = await prepareScratch(findConfig(configName)!, { workDir });
  // One orchestrator (and so one worker) per timing, kept across calls like a run keeps it.
  const orchestrators = new Map<string, Orchestrator>();
  // One kernel-log reader, as a run has; what is logged between cases is taken (and
  // dropped) before each case, as a run writes it to a kernel-log record.
  const kernelLog = new KernelLog('run-start');
  return {
    prepared,
    workDir,
    async run(ids, timing = TIMING) {
      const key = JSON.stringify(timing);
      const o =
        orchestrators.get(key) ??
        new Orchestrator({ runId: newRunId(), kernel: os.release(), host: os.hostname() }, timing, workDir, abortFuseConnectionsFor, kernelLog);
      orchestrators.set(key, o);
      const out = new Map<string, CaseRecord>();
      for (const id of ids) {
        kernelLog.take();
        out.set(id, await o.runCase(findCase(configName, id), prepared.testDir, prepared.pmdExtentHint, prepared.mount));
      }
      return out;
    },
    async close() {
      for (const o of orchestrators.values()) await o.close();
      await prepared.teardown();
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}

const newTag = (gen: number): Tag => ({ fileId: randomInt(1, 0x7fffffff), gen });

/**
 * A test file shaped like a PTE case's: written with one write(), mapped shared,
 * every page faulted in. The caller gets the mapping and must call done().
 */
export function patternedMapping(dir: string): { fd: number; mapping: MappingHandle; tag: Tag; written: Tag; done(): void } {
  const file = path.join(dir, `direct-${process.pid}-${randomInt(1e9)}`);
  const len = PTE_FILE_PAGES * PAGE;
  const tag = newTag(ORIGINAL);
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  fs.writeSync(fd, makePattern(len, tag, 0), 0, len, 0);
  const mapping = new native.Mapping(fd, len, 0, 'shared', PMD_SIZE);
  mapping.read(0, len);
  return {
    fd,
    mapping,
    tag,
    written: { fileId: tag.fileId, gen: WRITTEN },
    done() {
      if (mapping.mapped) mapping.unmap();
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    },
  };
}

/** IORING_REGISTER_BUFFERS on the pinned range of a fresh shared mapping, made by the test itself. */
export function directRegisterBuffers(dir: string): SyscallResult {
  const f = patternedMapping(dir);
  const ring = new native.Ring();
  try {
    ring.registerBuffers(f.mapping, PIN_FIRST_PAGE * PAGE, PIN_PAGES * PAGE);
    ring.unregisterBuffers();
    return { ok: true, errno: null };
  } catch (e) {
    if (isSystemError(e)) return { ok: false, errno: e.code };
    throw e;
  } finally {
    ring.close();
    f.done();
  }
}

/**
 * vmsplice the pinned range into a pipe, write new bytes through the mapping, run
 * ftruncate to the start of the range, and classify what the pipe then holds.
 */
export async function directVmspliceThenTruncate(dir: string): Promise<ViewClass> {
  const f = patternedMapping(dir);
  const off = PIN_FIRST_PAGE * PAGE;
  const len = PIN_PAGES * PAGE;
  const [r, w] = native.pipe(65536);
  try {
    native.vmsplice(w, f.mapping, off, len);
    f.mapping.write(off, makePattern(len, f.written, PIN_FIRST_PAGE));
    await settled(native.startFtruncate(f.fd, off), 'ftruncate', 10_000);
    const data = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(r, data, got, len - got, null);
      if (n === 0) break;
      got += n;
    }
    return readView(data.subarray(0, got), { original: [f.tag], written: [f.written] }, PIN_FIRST_PAGE).class;
  } finally {
    fs.closeSync(r);
    fs.closeSync(w);
    f.done();
  }
}
