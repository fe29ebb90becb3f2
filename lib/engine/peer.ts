// The worker's handle on an I/O peer process (see peer-main.ts): the FUSE file or the
// NBD device that holds O_DIRECT pins until released; both speak one protocol. A peer
// that dies (killed, crashed) aborts its FUSE connection or fails its NBD requests:
// every later O_DIRECT call on its file or device fails (ENOTCONN, EIO), which is no
// answer of the kernel about pins. The client says so at once (`onGone`) and refuses to
// be used again; the worker is replaced with fresh peers.
import { ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { native } from '../native';
import { parseStatState } from './tasks';
import { within } from './time';
import { Tag } from '../cases/patterns';
import { PEER_FILE_NAME } from './fuse';

/** Which peer: a FUSE filesystem mounted at mountPoint, or an NBD device with a request timeout. */
export type PeerSpec = { kind: 'fuse'; mountPoint: string } | { kind: 'nbd'; timeoutSeconds: number };

/**
 * arm: the NBD server holds READ/WRITE requests from now on (the FUSE file holds every
 * one: it serves nothing but pins). release: answer every held request, READs with
 * bytes of `tag`. Only arm is answered: the I/O's own completion tells the worker that
 * a release reached the kernel, a message would tell it less, later.
 */
export type PeerCommand = { type: 'arm' } | { type: 'release'; tag: Tag } | { type: 'stop' };
export type PeerEvent =
  /** path: the file or device the worker opens with O_DIRECT. */
  | { type: 'ready'; path: string }
  | { type: 'armed' }
  | { type: 'held'; kind: 'read' | 'write'; offset: number; size: number };

export type HeldEvent = Extract<PeerEvent, { type: 'held' }>;

/** argv of peer-main for a spec, and back. */
export function peerArgs(spec: PeerSpec): string[] {
  return spec.kind === 'fuse' ? ['fuse', spec.mountPoint] : ['nbd', String(spec.timeoutSeconds)];
}

export function parsePeerArgs(argv: string[]): PeerSpec | null {
  const [kind, arg] = argv;
  if (kind === 'fuse' && arg) return { kind, mountPoint: arg };
  if (kind === 'nbd' && /^\d+$/.test(arg ?? '')) return { kind, timeoutSeconds: Number(arg) };
  return null;
}

const openAsync = promisify(fs.open) as (path: string, flags: number) => Promise<number>;

export class PeerClient {
  /** The file (FUSE) or device (NBD) to open with O_DIRECT; known once started. */
  filePath: string;
  /** 'the FUSE peer' / 'the NBD peer', for what is said about it. */
  private readonly name: string;
  private child: ChildProcess | null = null;
  private held: HeldEvent | null = null;
  private waiters: Array<{ type: PeerEvent['type']; resolve: (e: PeerEvent | null) => void }> = [];
  private stopping = false;
  /** How the peer process ended, once it has (and it was not asked to stop). */
  private goneHow: string | null = null;
  /** The file or device opened for O_DIRECT I/O, once (see directFd). */
  private direct: number | null = null;
  /** Called once when the peer dies without being asked to stop. */
  onGone: (how: string) => void = () => undefined;

  constructor(readonly spec: PeerSpec) {
    this.filePath = spec.kind === 'fuse' ? path.join(spec.mountPoint, PEER_FILE_NAME) : '';
    this.name = spec.kind === 'fuse' ? 'the FUSE peer' : 'the NBD peer';
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  async start(): Promise<void> {
    this.child = fork(path.join(__dirname, 'peer-main.js'), peerArgs(this.spec), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (e: PeerEvent) => {
      if (e.type === 'held' && !this.held) this.held = e;
      const i = this.waiters.findIndex((w) => w.type === e.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(e);
    });
    // A send racing the peer's death fails here, not as an uncaught exception.
    this.child.on('error', () => undefined);
    this.child.on('exit', (code, signal) => {
      for (const w of this.waiters.splice(0)) w.resolve(null);
      if (this.stopping) return;
      this.goneHow = `${this.name} (pid ${this.child?.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`;
      this.onGone(this.goneHow);
    });
    const ready = await this.next('ready', 30_000);
    if (!ready || ready.type !== 'ready') throw new Error(this.goneHow ?? `${this.name} did not start`);
    this.filePath = ready.path;
  }

  /**
   * Why the peer can no longer serve, or null while it can. Also true of a peer that
   * died a moment ago, before its exit event arrived: a zombie or a vanished pid.
   */
  gone(): string | null {
    if (this.goneHow !== null || this.stopping) return this.goneHow ?? `${this.name} was stopped`;
    const pid = this.child?.pid;
    if (pid === undefined) return `${this.name} was never started`;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return `${this.name} (pid ${pid}) is gone`;
    }
    const state = parseStatState(stat);
    if (state !== 'Z' && state !== 'X') return null;
    // A zombie's stat ends with its wait status (field 52, Linux 3.5+).
    const status = Number(stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/)[49]);
    if (!Number.isInteger(status)) return `${this.name} (pid ${pid}) died`;
    const signal = status & 0x7f;
    const name = Object.entries(os.constants.signals).find(([, n]) => n === signal)?.[0];
    return `${this.name} (pid ${pid}) ${signal ? `was killed by ${name ?? `signal ${signal}`}` : `exited with code ${status >> 8}`}`;
  }

  private command(c: PeerCommand): void {
    const gone = this.gone();
    if (gone !== null) throw new Error(gone);
    this.child!.send(c);
  }

  private next(type: PeerEvent['type'], timeoutMs: number): Promise<PeerEvent | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(null);
      }, timeoutMs);
      const waiter = { type, resolve: (e: PeerEvent | null) => (clearTimeout(timer), resolve(e)) };
      this.waiters.push(waiter);
    });
  }

  /**
   * The peer's file or device opened O_RDWR | O_DIRECT, once for the peer's life: every
   * O_DIRECT pin goes through it. An open per case cost a round trip to the peer each
   * way (OPEN, then FLUSH and RELEASE at the close) and showed nothing: the peer keeps
   * no state per open. Opened from the thread pool (the peer could be stuck). A plain
   * fd, not a FileHandle: Node closes those on GC from the JS thread.
   */
  async directFd(): Promise<number> {
    this.direct ??= await openAsync(this.filePath, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    return this.direct;
  }

  /** Forgets the last held request; an NBD peer starts holding requests (one round trip: the I/O must not overtake it). */
  async arm(): Promise<void> {
    this.held = null;
    if (this.spec.kind === 'fuse') return;
    this.command({ type: 'arm' });
    if (!(await this.next('armed', 10_000))) throw new Error(this.gone() ?? `${this.name} did not answer arm`);
  }

  /** The first READ/WRITE held since arm() (the kernel has pinned the pages), or null on timeout. */
  async waitForRequest(timeoutMs: number): Promise<HeldEvent | null> {
    if (this.held) return this.held;
    return (await this.next('held', timeoutMs)) as HeldEvent | null;
  }

  /** Asks the peer to answer every held request, READs with bytes of `tag`. */
  release(tag: Tag): void {
    this.held = null;
    this.command({ type: 'release', tag });
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.stopping = true;
    if (this.direct !== null) {
      // Closing a FUSE file waits for the peer's answer to FLUSH: from a pool thread, bounded.
      await within(native.startClose(this.direct).promise.catch(() => undefined), 5000);
      this.direct = null;
    }
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    if (c.connected) c.send({ type: 'stop' } satisfies PeerCommand);
    else c.kill('SIGKILL');
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
