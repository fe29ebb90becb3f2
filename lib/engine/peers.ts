// What a worker's pins need beside the mapping: the FUSE and NBD peers that hold
// O_DIRECT I/O, the soft-RoCE device for RDMA registrations. The FUSE peer starts
// with the worker; the others on the first case that needs them. A case whose pin or
// op cannot exist here (no nbd module, no RDMA device, a filesystem daxpin did not
// mount) is not applicable, with the reason: that is no kernel outcome.
import { Case } from '../cases/matrix';
import { PeerClient } from './peer';
import { TimelineOptions } from './protocol';
import { nbdSupport, nbdTimeoutSeconds } from './nbd';
import { RdmaSupport, rdmaSupport } from './rdma';

export class PinPeers {
  private nbd: PeerClient | null = null;
  /** Called once when a peer dies without being asked to stop (see PeerClient.onGone). */
  onGone: (kind: 'fuse' | 'nbd', how: string) => void = () => undefined;
  private nbdUnsupported: string | null = null;
  private rdmaProbe: RdmaSupport | null = null;

  /** `inGuest`: daxpin runs in a guest it booted (it may add an RDMA device there). */
  constructor(
    readonly fuse: PeerClient,
    private readonly inGuest: boolean,
  ) {
    fuse.onGone = (how) => this.onGone('fuse', how);
  }

  /** Why that peer can no longer serve, or null (also null for an NBD peer never started). */
  gone(kind: 'fuse' | 'nbd'): string | null {
    if (kind === 'fuse') return this.fuse.gone();
    return this.nbd ? this.nbd.gone() : null;
  }

  /** Why this case cannot run here, or null. Starts what the case needs. */
  async notApplicable(c: Case, opt: TimelineOptions): Promise<string | null> {
    if (c.pinMethod.peer === 'nbd') {
      const peer = await this.nbdPeer(opt);
      if (typeof peer === 'string') return peer;
    }
    if (c.pinMethod.path === 'rdma-mr' || c.pinMethod.path === 'rdma-mr-odp') {
      const rdma = this.rdma();
      if (!rdma.ok) return rdma.reason;
    }
    if ((c.layoutOp.kind === 'freeze' || c.layoutOp.kind === 'umount') && opt.mount === null) {
      return `${c.layoutOp.name} needs a filesystem daxpin mounted itself (--dir: not daxpin's to ${c.layoutOp.kind})`;
    }
    return null;
  }

  /** The peer serving a case's O_DIRECT I/O; the NBD one exists once notApplicable() said yes. */
  ioPeer(which: 'fuse' | 'nbd'): PeerClient {
    if (which === 'fuse') return this.fuse;
    if (!this.nbd) throw new Error('the NBD peer was not started');
    return this.nbd;
  }

  rdma(): RdmaSupport {
    this.rdmaProbe ??= rdmaSupport(this.inGuest);
    return this.rdmaProbe;
  }

  /** The NBD peer, started on first use. A dead one ends the worker (onGone), as a dead FUSE peer does. */
  private async nbdPeer(opt: TimelineOptions): Promise<PeerClient | string> {
    if (this.nbdUnsupported !== null) return this.nbdUnsupported;
    if (this.nbd) return this.nbd;
    const support = nbdSupport();
    if (!support.ok) {
      this.nbdUnsupported = support.reason;
      return support.reason;
    }
    this.nbd = new PeerClient({ kind: 'nbd', timeoutSeconds: nbdTimeoutSeconds(opt.hold.holdMs, opt.settleMs) });
    this.nbd.onGone = (how) => this.onGone('nbd', how);
    await this.nbd.start();
    return this.nbd;
  }

  async stop(): Promise<void> {
    await Promise.all([this.fuse.stop(), this.nbd?.stop()]);
  }
}
