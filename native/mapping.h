#pragma once
#include <napi.h>
#include <cstddef>

namespace daxpin {

// A memory mapping of a file. Reads and writes through it report a SIGBUS as a
// result instead of killing the process: after a truncate or on a poisoned DAX page
// that is an outcome to record.
class Mapping : public Napi::ObjectWrap<Mapping> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Mapping* Unwrap(const Napi::Value& v);
  explicit Mapping(const Napi::CallbackInfo& info);
  ~Mapping();

  // Bounds-checked pointer into the live mapping; throws and returns nullptr otherwise.
  char* Range(Napi::Env env, int64_t offset, int64_t length);

 private:
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Touch(const Napi::CallbackInfo& info);
  Napi::Value Unmap(const Napi::CallbackInfo& info);
  Napi::Value GetAddress(const Napi::CallbackInfo& info);
  Napi::Value GetLength(const Napi::CallbackInfo& info);
  Napi::Value GetMapped(const Napi::CallbackInfo& info);

  char* addr_ = nullptr;
  size_t length_ = 0;
  void* reservation_ = nullptr;  // the aligned reservation the mapping sits in
  size_t reservationLength_ = 0;
};

void InstallSignalHandlers();

}  // namespace daxpin
