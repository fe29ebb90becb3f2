// One error class for everything under lib/vm: the message is a single line fit to
// print as is (`daxpin: …`), the code lets callers branch without parsing text.

export type VmErrorCode =
  | 'ENOMIRROR' // no Debian mirror in the machine's apt sources
  | 'EAPT' // apt-get/apt-cache failed
  | 'ENOKERNEL' // a kernel spec matched nothing
  | 'EBADKERNEL' // a .deb or directory that does not hold a usable kernel
  | 'ENOHOSTPKG' // a host package is missing and may not be installed
  | 'EINITRAMFS' // building the initramfs failed
  | 'EQEMU'; // qemu could not be started

export class VmError extends Error {
  readonly code: VmErrorCode;

  constructor(code: VmErrorCode, message: string) {
    super(message.startsWith('daxpin: ') ? message : `daxpin: ${message}`);
    this.name = 'VmError';
    this.code = code;
  }
}

/** An error's message without the `daxpin: ` prefix, for quoting inside another message. */
export function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^daxpin: /, '');
}
