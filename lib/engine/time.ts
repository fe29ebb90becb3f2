export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Resolves to the promise's value, or to null if it has not settled within ms.
 * The timer also keeps the event loop alive while a native call is pending
 * (the addon's blocking calls do not hold the loop by themselves).
 */
export function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]).finally(() => clearTimeout(timer));
}
