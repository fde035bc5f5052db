#include "common/process_allocator.h"

#include <malloc.h>
#include <stddef.h>

// jemalloc's control interface: defined only when the executable links
// jemalloc, so its address tells which allocator this process has.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp,
                       void* newp, size_t newlen) __attribute__((weak));

namespace imbridge {
namespace {

bool HasJemalloc() { return &mallctl != nullptr; }

}  // namespace

void ConfigureProcessAllocator() {
  if (!HasJemalloc()) mallopt(M_ARENA_MAX, 2);
}

const char* ProcessAllocatorName() {
  return HasJemalloc() ? "jemalloc" : "glibc";
}

}  // namespace imbridge
