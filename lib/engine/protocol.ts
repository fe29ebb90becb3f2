// Messages between the orchestrator and a worker process (Node IPC, JSON).
import { CaseObservation, TimelineOptions } from './timeline';

export interface CaseRequest {
  type: 'case';
  seq: number;
  config: string;
  mapping: string;
  pinMethod: string;
  layoutOp: string;
  options: TimelineOptions;
}

export type ToWorker = CaseRequest | { type: 'exit' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; seq: number; observation: CaseObservation }
  | { type: 'failed'; seq: number; error: string };
