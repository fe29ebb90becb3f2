// Resolves the (mapping, offset, length) arguments that pin methods take.
#pragma once
#include <napi.h>
#include <string>

#include "errors.h"
#include "mapping.h"

namespace daxpin {

// args i, i+1, i+2 = (mapping, offset, length) -> pointer into the mapping; nullptr after throwing.
inline char* MappingRangeArg(const Napi::CallbackInfo& info, size_t i, int64_t* length) {
  Mapping* m = Mapping::Unwrap(info[i]);
  if (m == nullptr) { ThrowTypeError(info.Env(), "argument " + std::to_string(i) + " must be a Mapping"); return nullptr; }
  int64_t offset;
  if (!ArgInt(info, i + 1, &offset) || !ArgInt(info, i + 2, length)) return nullptr;
  return m->Range(info.Env(), offset, *length);
}

}  // namespace daxpin
