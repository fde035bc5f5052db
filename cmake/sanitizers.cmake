# Sanitizer and static-analysis options (scripts/sanitize.sh drives them; see
# docs/development.md). Included from the top CMakeLists.txt before any
# target is defined, so the flags reach every target, generated code and
# tests included.
#
#   IMBRIDGE_SANITIZE         "" (default), "address,undefined" or "thread":
#                             -fsanitize=... on every compile and link, with
#                             frame pointers kept and UBSan findings fatal.
#                             clang (Debian's clang-14) and gcc both work.
#   IMBRIDGE_THREAD_SAFETY    ON: clang's -Wthread-safety, which checks every
#                             ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED
#                             (an error with IMBRIDGE_WERROR). clang only.
set(IMBRIDGE_SANITIZE "" CACHE STRING
  "Sanitizers for every target: empty, address,undefined or thread")
set_property(CACHE IMBRIDGE_SANITIZE PROPERTY STRINGS
  "" "address,undefined" "thread")
option(IMBRIDGE_THREAD_SAFETY
  "clang -Wthread-safety on our targets (errors with IMBRIDGE_WERROR)" OFF)

if(IMBRIDGE_SANITIZE)
  if(NOT IMBRIDGE_SANITIZE MATCHES "^(address,undefined|address|undefined|thread)$")
    message(FATAL_ERROR "IMBRIDGE_SANITIZE=${IMBRIDGE_SANITIZE}: expected "
      "address,undefined, address, undefined or thread")
  endif()
  set(imbridge_sanitize_flags -fsanitize=${IMBRIDGE_SANITIZE}
    -fno-omit-frame-pointer)
  if(IMBRIDGE_SANITIZE MATCHES "undefined")
    list(APPEND imbridge_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${imbridge_sanitize_flags})
  add_link_options(${imbridge_sanitize_flags})
  # Tests that start child processes read IMBRIDGE_SANITIZE from here to
  # allow for the slowdown (longer timeouts, never skips).
  message(STATUS "imbridge: sanitizers ${IMBRIDGE_SANITIZE}")
endif()

if(IMBRIDGE_THREAD_SAFETY)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "IMBRIDGE_THREAD_SAFETY needs clang "
      "(-DCMAKE_CXX_COMPILER=clang++); ${CMAKE_CXX_COMPILER_ID} has no "
      "-Wthread-safety")
  endif()
  # Only our targets (imbridge_warnings): -Wthread-safety-beta and the
  # negative analysis stay off, they flag correct absl::Mutex code.
  list(APPEND IMBRIDGE_WARNINGS -Wthread-safety)
endif()
