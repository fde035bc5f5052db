# How gRPC, protobuf and Abseil are linked.
#
#   IMBRIDGE_STATIC_GRPC   ON (default): every binary links gRPC, protobuf
#                          and Abseil from the static archives Debian ships
#                          beside the shared ones (libgrpc++-dev,
#                          libprotobuf-dev, libabsl-dev, libre2-dev). An
#                          adapter then maps 39 shared libraries instead of
#                          86: under imbridge-http-bench the webhook
#                          adapter's peak RSS fell from 26.1-26.2 to
#                          21.8-22.1 MiB, the Slack adapter's from 27.4 to
#                          23.4-23.5, the router's by 4 MiB, and the CPU per
#                          message by 4-12 % (docs/benchmarks.md, "Adapters
#                          linked with static gRPC"). Code is no longer
#                          shared between different binaries: the Slack
#                          adapter's PSS rose by 2 MiB (the webhook
#                          adapter's by 0.2-0.3 MiB).
#                          OFF: the shared libraries, as before.
#
# Sanitizer and fuzz builds always link the shared libraries: TSan's
# suppressions of races inside gRPC's and Abseil's own code name their
# shared objects (tools/sanitizers/tsan.supp, `called_from_lib:`), which a
# static link does not have.
#
# Every target of the three packages is switched, so no process ever holds
# a static copy beside a shared one (two protobuf descriptor pools or two
# Abseil copies in one process break at run time). The other dependencies
# (OpenSSL, libcurl, SQLite, libpq, zlib, c-ares) stay shared: they do not
# link any of the three.
option(IMBRIDGE_STATIC_GRPC
  "Link gRPC, protobuf and Abseil from their static archives" ON)

# Points every imported target of gRPC, protobuf and Abseil at its static
# archive. Call once, in the top-level directory, after their find_package.
function(imbridge_use_static_grpc)
  if(NOT IMBRIDGE_STATIC_GRPC OR IMBRIDGE_SANITIZE OR IMBRIDGE_FUZZ)
    message(STATUS "imbridge: gRPC, protobuf and Abseil linked shared")
    return()
  endif()
  get_directory_property(imported IMPORTED_TARGETS)
  set(switched 0)
  foreach(target IN LISTS imported)
    if(NOT target MATCHES "^(absl|gRPC|protobuf)::")
      continue()
    endif()
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "INTERFACE_LIBRARY" OR type STREQUAL "EXECUTABLE")
      continue()
    endif()
    get_target_property(configs ${target} IMPORTED_CONFIGURATIONS)
    set(properties IMPORTED_LOCATION)
    if(configs)
      foreach(config IN LISTS configs)
        list(APPEND properties IMPORTED_LOCATION_${config})
      endforeach()
    endif()
    foreach(property IN LISTS properties)
      get_target_property(location ${target} ${property})
      if(NOT location OR NOT location MATCHES "\\.so(\\.[0-9]+)*$")
        continue()
      endif()
      string(REGEX REPLACE "\\.so(\\.[0-9]+)*$" ".a" archive "${location}")
      if(NOT EXISTS "${archive}")
        message(FATAL_ERROR "IMBRIDGE_STATIC_GRPC=ON needs ${archive} "
          "(for ${target}); run scripts/install-deps.sh, or configure with "
          "-DIMBRIDGE_STATIC_GRPC=OFF")
      endif()
      set_target_properties(${target} PROPERTIES ${property} "${archive}")
      math(EXPR switched "${switched} + 1")
    endforeach()
  endforeach()
  # gRPC links RE2 by name (re2::re2 is `-lre2`), which finds the shared
  # library; RE2 2022 links none of the three, but its copy must be the
  # archive's so that libgrpc.a's references resolve in the same link.
  if(TARGET re2::re2)
    find_library(IMBRIDGE_RE2_ARCHIVE NAMES libre2.a REQUIRED)
    set_target_properties(re2::re2 PROPERTIES
      INTERFACE_LINK_LIBRARIES "${IMBRIDGE_RE2_ARCHIVE}")
  endif()
  message(STATUS "imbridge: gRPC, protobuf and Abseil linked static "
    "(${switched} archives)")
endfunction()
