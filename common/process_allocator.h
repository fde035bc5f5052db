#ifndef IMBRIDGE_COMMON_PROCESS_ALLOCATOR_H_
#define IMBRIDGE_COMMON_PROCESS_ALLOCATOR_H_

namespace imbridge {

// The heap of a long-running imbridge process. Each executable's link
// chooses its allocator (cmake/allocator.cmake): the router links jemalloc
// by default; the adapters, the tools and every sanitizer or fuzz build use
// glibc malloc.
//
// Either way the process keeps at most two arenas: gRPC, the HTTP server and
// the pipelines run dozens of threads, and an arena per thread group keeps
// freed memory that no other thread reuses. jemalloc takes its options at
// link time (common/jemalloc_options.cc); for glibc,
// ConfigureProcessAllocator() sets M_ARENA_MAX.
//
// Call ConfigureProcessAllocator() in main before any other thread starts.
void ConfigureProcessAllocator();

// "jemalloc" or "glibc", whichever this process allocates with.
const char* ProcessAllocatorName();

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_PROCESS_ALLOCATOR_H_
