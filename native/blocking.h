// Syscalls that can block in the kernel (layout ops waiting for pins, pinned
// I/O waiting for its peer) run on a thread of their own, never on the event loop
// and never on libuv's pool (a call stuck in D state would starve it). The caller
// gets the thread id at once, so lib/ can read its task state, read its kernel
// stack and signal it, and a promise for the result.
#pragma once
#include <napi.h>
#include <functional>
#include <string>

namespace daxpin {

struct CallResult {
  long ret = 0;     // the syscall's return value when err == 0
  int err = 0;      // errno, 0 on success
  long aux = 0;     // a second value some calls report (dedupe status)
  // CLOCK_MONOTONIC (the clock of process.hrtime) right before and right after the
  // call, taken on the calling thread: the op's own start and return, not a callback's.
  int64_t enteredNs = 0;
  int64_t exitedNs = 0;
};

// Starts fn on a thread of its own (a reused one: see blocking.cc); returns { tid, promise } where promise resolves to
// { ret, aux, enteredNs, exitedNs } or rejects with a system error naming `syscall` that
// carries enteredNs and exitedNs too.
Napi::Value StartBlocking(Napi::Env env, const std::string& syscall, std::function<CallResult()> fn);

// callPhase(tid) -> { enteredNs, exitedNs } of the call the pool thread `tid` runs or ran
// last (0: not yet). Lets lib/ tell a thread asleep inside its call from one that has
// not entered it yet or has left it.
Napi::Value CallPhase(const Napi::CallbackInfo& info);

// Convenience for plain syscalls returning -1/errno.
inline CallResult FromSyscall(long r) {
  CallResult c;
  if (r < 0) c.err = errno; else c.ret = r;
  return c;
}

}  // namespace daxpin
