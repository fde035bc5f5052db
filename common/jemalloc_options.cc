// jemalloc's options for an executable that links it (cmake/allocator.cmake,
// imbridge_link_jemalloc): jemalloc reads this symbol of the executable when
// the process starts, before main.
//
// Two arenas, as glibc gets (common/process_allocator.h): eight (jemalloc's
// default here) used 6-7 MiB more peak RSS in the bench for no measurable
// CPU. Thread caches stay on: they are where jemalloc saves its CPU. Dirty
// pages are purged after 1 s instead of 10 s, so the RSS falls soon after a
// burst. MALLOC_CONF in the environment still overrides each of them.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000";
}
