# The router's allocator (common/process_allocator.h).
#
#   IMBRIDGE_JEMALLOC   ON (default): imbridge-router links jemalloc
#                       (Debian's libjemalloc-dev). With glibc malloc,
#                       allocation was 35-40 % of the router's CPU per relayed
#                       event; jemalloc cut that CPU by about a fifth
#                       (docs/benchmarks.md, "jemalloc in the router").
#                       OFF: glibc malloc, capped at two arenas.
#
# The adapters stay on glibc malloc: jemalloc did not lower their CPU per
# message on the HTTP path and added about 2.7 MiB to their RSS. Sanitizer
# and fuzz builds always use the allocator their runtime brings (ASan, TSan
# and libFuzzer replace malloc themselves).
option(IMBRIDGE_JEMALLOC "Link imbridge-router with jemalloc" ON)

set(imbridge_jemalloc OFF)
if(IMBRIDGE_JEMALLOC AND NOT IMBRIDGE_SANITIZE AND NOT IMBRIDGE_FUZZ)
  pkg_check_modules(JEMALLOC IMPORTED_TARGET jemalloc)
  if(NOT JEMALLOC_FOUND)
    message(FATAL_ERROR "IMBRIDGE_JEMALLOC=ON needs jemalloc: run "
      "scripts/install-deps.sh (Debian package libjemalloc-dev), or configure "
      "with -DIMBRIDGE_JEMALLOC=OFF for glibc malloc")
  endif()
  set(imbridge_jemalloc ON)
  message(STATUS "imbridge: imbridge-router allocates with jemalloc ${JEMALLOC_VERSION}")
else()
  message(STATUS "imbridge: imbridge-router allocates with glibc malloc")
endif()

# Links `target` (an executable) with jemalloc and its options
# (common/jemalloc_options.cc) when the build uses it; a no-op otherwise.
function(imbridge_link_jemalloc target)
  if(imbridge_jemalloc)
    target_sources(${target} PRIVATE
      ${PROJECT_SOURCE_DIR}/common/jemalloc_options.cc)
    target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
  endif()
endfunction()
