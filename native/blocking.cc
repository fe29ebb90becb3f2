#include "blocking.h"
#include "errors.h"

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <unistd.h>

namespace daxpin {

namespace {

struct Completion {
  Napi::Promise::Deferred deferred;
  std::string syscall;
  CallResult result;
};

// While node tears its environment down (it exits with a call still in the kernel),
// JS can no longer run and every napi call that would run it fails; node-addon-api
// turns such a failure into a fatal error. Probe with raw napi calls first.
bool CanRunJs(napi_env env) {
  napi_value probe;
  if (napi_create_object(env, &probe) != napi_ok) return false;
  return napi_set_named_property(env, probe, "probe", probe) == napi_ok;
}

void SetPhase(Napi::Env env, Napi::Object o, const CallResult& r) {
  o.Set("enteredNs", Napi::Number::New(env, static_cast<double>(r.enteredNs)));
  o.Set("exitedNs", Napi::Number::New(env, static_cast<double>(r.exitedNs)));
}

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void Settle(Napi::Env env, Napi::Function, std::nullptr_t*, Completion* c) {
  // Nobody can observe the promise any more when JS cannot run: leave it unsettled.
  if (env != nullptr && CanRunJs(env)) {
    if (c->result.err != 0) {
      Napi::Object e = SystemError(env, c->result.err, c->syscall).Value();
      SetPhase(env, e, c->result);
      c->deferred.Reject(e);
    } else {
      Napi::Object v = Napi::Object::New(env);
      v.Set("ret", Napi::Number::New(env, static_cast<double>(c->result.ret)));
      v.Set("aux", Napi::Number::New(env, static_cast<double>(c->result.aux)));
      SetPhase(env, v, c->result);
      c->deferred.Resolve(v);
    }
  }
  delete c;
}

using SettleFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Completion, Settle>;

// Node finalizes and frees every thread-safe function when its environment is torn
// down, even one a thread still holds: the thread must not call it after that.
struct Liveness {
  std::mutex mu;
  bool alive = true;
};

void Finalize(Napi::Env, std::shared_ptr<Liveness>* live, std::nullptr_t*) {
  {
    std::lock_guard<std::mutex> lock((*live)->mu);
    (*live)->alive = false;
  }
  delete live;
}

// The threads that run blocking calls. A thread is made once and reused: making one
// per call cost ~0.1 ms natively and far more under TCG, several times a case. A thread
// whose call never returns (D state) simply never comes back to the pool.
struct PoolThread {
  pid_t tid = 0;
  std::function<CallResult()> fn;
  Completion* completion = nullptr;  // the job; null while idle
  std::condition_variable cv;
  // The current (or last) call's boundaries; read by CallPhase from the JS thread.
  std::atomic<int64_t> enteredNs{0};
  std::atomic<int64_t> exitedNs{0};
};

struct Pool {
  napi_env env;
  SettleFn tsfn;
  std::shared_ptr<Liveness> live;
  std::mutex mu;
  std::vector<PoolThread*> idle;
  std::vector<PoolThread*> all;
};

// One pool per process: the addon serves one environment (no worker_threads here).
Pool* pool = nullptr;

void RunPoolThread(Pool* p, PoolThread* t, std::condition_variable* started) {
  std::unique_lock<std::mutex> lock(p->mu);
  t->tid = gettid();
  started->notify_one();  // under the lock: the starter owns `started` until it sees the tid
  for (;;) {
    t->cv.wait(lock, [t] { return t->completion != nullptr; });
    Completion* c = t->completion;
    std::function<CallResult()> fn = std::move(t->fn);
    lock.unlock();
    int64_t entered = MonotonicNs();
    t->enteredNs.store(entered);
    CallResult r = fn();
    r.exitedNs = MonotonicNs();
    r.enteredNs = entered;
    t->exitedNs.store(r.exitedNs);
    c->result = r;
    lock.lock();
    // Idle before the result reaches JS, so the next call JS starts can take this thread.
    t->completion = nullptr;
    p->idle.push_back(t);
    lock.unlock();
    {
      std::lock_guard<std::mutex> l(p->live->mu);
      if (!p->live->alive) return;  // the process is exiting: nobody is left to settle the promise
      p->tsfn.BlockingCall(c);
    }
    lock.lock();
  }
}

Pool* PoolFor(Napi::Env env) {
  if (pool != nullptr && pool->env == env) return pool;
  // (A second environment would get a pool of its own; the old one's threads stay idle.)
  auto* p = new Pool{env, {}, std::make_shared<Liveness>(), {}, {}, {}};
  p->tsfn = SettleFn::New(env, "daxpin.blocking", 0, 1, nullptr, Finalize, new std::shared_ptr<Liveness>(p->live));
  // A call stuck forever in the kernel must not keep the event loop alive by itself:
  // lib/ always holds a timer while it waits, and decides when to give up.
  p->tsfn.Unref(env);
  pool = p;
  return p;
}

}  // namespace

Napi::Value StartBlocking(Napi::Env env, const std::string& syscall, std::function<CallResult()> fn) {
  auto* completion = new Completion{Napi::Promise::Deferred::New(env), syscall, {}};
  Napi::Promise promise = completion->deferred.Promise();
  Pool* p = PoolFor(env);
  pid_t tid;
  {
    std::unique_lock<std::mutex> lock(p->mu);
    PoolThread* t;
    if (!p->idle.empty()) {
      t = p->idle.back();
      p->idle.pop_back();
    } else {
      t = new PoolThread();
      p->all.push_back(t);
      std::condition_variable started;
      std::thread(RunPoolThread, p, t, &started).detach();
      started.wait(lock, [t] { return t->tid != 0; });
    }
    t->fn = std::move(fn);
    t->enteredNs.store(0);
    t->exitedNs.store(0);
    t->completion = completion;
    tid = t->tid;
    t->cv.notify_one();
  }

  Napi::Object call = Napi::Object::New(env);
  call.Set("tid", Napi::Number::New(env, tid));
  call.Set("promise", promise);
  return call;
}

Napi::Value CallPhase(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t tid;
  if (!ArgInt(info, 0, &tid)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enteredNs", Napi::Number::New(env, 0));
  o.Set("exitedNs", Napi::Number::New(env, 0));
  if (pool == nullptr) return o;
  std::lock_guard<std::mutex> lock(pool->mu);
  for (PoolThread* t : pool->all) {
    if (t->tid != tid) continue;
    o.Set("enteredNs", Napi::Number::New(env, static_cast<double>(t->enteredNs.load())));
    o.Set("exitedNs", Napi::Number::New(env, static_cast<double>(t->exitedNs.load())));
  }
  return o;
}

}  // namespace daxpin
