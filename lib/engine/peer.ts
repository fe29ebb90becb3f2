// The worker's handle on an I/O peer process (see peer-main.ts): the FUSE file or
// the NBD device that holds O_DIRECT pins until released. Both speak one protocol.
import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { Tag } from '../cases/patterns';
import { PEER_FILE_NAME } from './fuse';

/** Which peer: a FUSE filesystem mounted at mountPoint, or an NBD device with a request timeout. */
export type PeerSpec = { kind: 'fuse'; mountPoint: string } | { kind: 'nbd'; timeoutSeconds: number };

export type PeerCommand = { type: 'arm'; tag: Tag } | { type: 'release' } | { type: 'stop' };
export type PeerEvent =
  /** path: the file or device the worker opens with O_DIRECT. */
  | { type: 'ready'; path: string }
  | { type: 'armed' }
  | { type: 'held'; kind: 'read' | 'write'; offset: number; size: number }
  | { type: 'released'; count: number }
  /** The peer's server side ended (the NBD connection closed); the process exits. */
  | { type: 'gone'; reason: string };

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

export type HeldEvent = Extract<PeerEvent, { type: 'held' }>;

export class PeerClient {
  /** The file (FUSE) or device (NBD) to open with O_DIRECT; known once started. */
  filePath: string;
  private child: ChildProcess | null = null;
  private held: HeldEvent | null = null;
  private waiters: Array<{ type: PeerEvent['type']; resolve: (e: PeerEvent | null) => void }> = [];

  constructor(readonly spec: PeerSpec) {
    this.filePath = spec.kind === 'fuse' ? path.join(spec.mountPoint, PEER_FILE_NAME) : '';
  }

  /** Whether the peer process is running (a dead one drops every pin it held). */
  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    this.child = fork(path.join(__dirname, 'peer-main.js'), peerArgs(this.spec), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (e: PeerEvent) => {
      if (e.type === 'held' && !this.held) this.held = e;
      const i = this.waiters.findIndex((w) => w.type === e.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(e);
    });
    this.child.on('exit', () => {
      for (const w of this.waiters.splice(0)) w.resolve(null);
    });
    const ready = await this.next('ready', 30_000);
    if (!ready || ready.type !== 'ready') throw new Error(`the ${this.spec.kind === 'fuse' ? 'FUSE' : 'NBD'} peer did not start`);
    this.filePath = ready.path;
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

  /** Sets the bytes held READs are answered with; forgets the last held request. */
  async arm(tag: Tag): Promise<void> {
    this.held = null;
    this.child!.send({ type: 'arm', tag } satisfies PeerCommand);
    await this.next('armed', 10_000);
  }

  /** The first READ/WRITE held since arm() (the kernel has pinned the pages), or null on timeout. */
  async waitForRequest(timeoutMs: number): Promise<HeldEvent | null> {
    if (this.held) return this.held;
    return (await this.next('held', timeoutMs)) as HeldEvent | null;
  }

  /** Answers all held requests; resolves with how many there were. */
  async releaseAll(): Promise<number> {
    this.child!.send({ type: 'release' } satisfies PeerCommand);
    const e = await this.next('released', 10_000);
    this.held = null;
    return e && e.type === 'released' ? e.count : 0;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.send({ type: 'stop' } satisfies PeerCommand);
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
