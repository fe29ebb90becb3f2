// Messages between the orchestrator and a worker process (Node IPC, JSON).
import { CaseRecord } from '../outcome';
import { HoldPolicy } from './hold';
import { OwnedMount } from '../configs/setup';

export type { OwnedMount };

export interface TimelineOptions {
  dir: string;
  /** When the pin is released: on evidence (the op seen asleep in its call) or after a fixed hold. */
  hold: HoldPolicy;
  settleMs: number;
  /** How long to wait for a signalled op before calling it uninterruptible. */
  signalWaitMs: number;
  /** Upper bound on canary bytes written after the op (stops earlier at ENOSPC). */
  canaryBytes: number;
  /** Whether the test file may be given an extent size hint for PMD alignment. */
  pmdExtentHint: boolean;
  /** The filesystem's mount when daxpin made it (null for --dir): what the freeze and umount ops act on. */
  mount: OwnedMount | null;
}


/** What the worker measured: the case record's measured fields; the orchestrator adds run metadata and the kernel log. */
export interface CaseObservation
  extends Pick<CaseRecord, 'daxVerified' | 'pmd' | 'map' | 'pin' | 'op' | 'views' | 'viewDetail' | 'file' | 'sigbus' | 'release' | 'canary'> {
  /** Set when the worker must not be reused (a thread is stuck in the kernel). */
  retire: boolean;
  /** Notes on set-up steps that did not go as asked (e.g. no extent size hint). */
  notes: string[];
  /** Why the case cannot run here (no nbd module, no RDMA device ...); nothing else was measured. */
  unsupported: string | null;
}

export interface CaseRequest {
  type: 'case';
  seq: number;
  config: string;
  mapping: string;
  pinMethod: string;
  layoutOp: string;
  options: TimelineOptions;
}

/** The worker's exit status after its FUSE peer died (also said by a peer-gone message). */
export const PEER_GONE_EXIT = 4;

export type ToWorker = CaseRequest | { type: 'exit' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'op-thread'; seq: number; tid: number }
  | { type: 'result'; seq: number; observation: CaseObservation }
  | { type: 'failed'; seq: number; error: string }
  /** The FUSE peer died (during case `seq`, or between cases when null); the worker exits. */
  | { type: 'peer-gone'; seq: number | null; how: string };
