// The RDMA device for ibv_reg_mr pins: soft-RoCE (rdma_rxe) over a dummy network
// device, made by daxpin inside its own qemu guests only (on a host it would add a
// network device nobody asked for). Natively the RDMA pins are not applicable.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { IBV_ODP_SUPPORT, IBV_ODP_SUPPORT_WRITE, native } from '../native';

export const RXE_NETDEV = 'daxpin0';
export const RXE_DEVICE = 'daxpin_rxe';

export type RdmaSupport = { ok: true; device: string } | { ok: false; reason: string };

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
}

function firstLine(e: unknown): string {
  const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
  return (stderr || (e instanceof Error ? e.message : String(e))).split('\n')[0];
}

/**
 * Makes (once) or finds daxpin's soft-RoCE device. `inGuest`: daxpin runs in a guest
 * it booted, the only place it adds network and RDMA devices.
 */
export function rdmaSupport(inGuest: boolean): RdmaSupport {
  if (!native.RdmaDevice) return { ok: false, reason: 'daxpin was built without the verbs headers (libibverbs-dev)' };
  if (fs.existsSync(`/sys/class/infiniband/${RXE_DEVICE}`)) return { ok: true, device: RXE_DEVICE };
  if (!inGuest) return { ok: false, reason: 'soft-RoCE is set up only in daxpin guests (it adds a network device)' };
  const steps: Array<[string, string[]]> = [
    ['modprobe', ['-a', 'dummy', 'ib_uverbs', 'rdma_rxe']],
    ['ip', ['link', 'add', RXE_NETDEV, 'type', 'dummy']],
    ['ip', ['link', 'set', RXE_NETDEV, 'up']],
    ['rdma', ['link', 'add', RXE_DEVICE, 'type', 'rxe', 'netdev', RXE_NETDEV]],
  ];
  for (const [cmd, args] of steps) {
    try {
      run(cmd, args);
    } catch (e) {
      return { ok: false, reason: `${cmd} ${args.join(' ')}: ${firstLine(e)}` };
    }
  }
  return fs.existsSync(`/sys/class/infiniband/${RXE_DEVICE}`) ? { ok: true, device: RXE_DEVICE } : { ok: false, reason: `no ${RXE_DEVICE} after rdma link add` };
}

/** Whether the device's capabilities offer on-demand paging for RC writes (what IBV_ACCESS_ON_DEMAND needs). */
export function odpOffered(caps: { general: number; rc: number } | null): boolean {
  return caps !== null && (caps.general & IBV_ODP_SUPPORT) !== 0 && (caps.rc & IBV_ODP_SUPPORT_WRITE) !== 0;
}
