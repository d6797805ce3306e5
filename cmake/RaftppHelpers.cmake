# Helpers shared by raftpp's own CMakeLists (tests, examples, benchmarks, and
# any examples/<dir>/CMakeLists.txt).  Not installed, not used by consumers.
include_guard(GLOBAL)

# Warning flags for raftpp's own code (never for catch_main / third-party).
if(MSVC)
  set(RAFT_WARNING_FLAGS /W4 /permissive-)
  set(RAFT_WERROR_FLAG /WX)
else()
  set(RAFT_WARNING_FLAGS -Wall -Wextra -Wpedantic)
  set(RAFT_WERROR_FLAG -Werror)
endif()
if(RAFT_WERROR)
  list(APPEND RAFT_WARNING_FLAGS ${RAFT_WERROR_FLAG})
endif()

# Sanitizers apply to every target in the raftpp tree (including catch_main,
# so the whole test binary is instrumented consistently).
set(RAFT_SANITIZE_FLAGS "")
if(RAFT_SANITIZE)
  if(MSVC)
    message(FATAL_ERROR "RAFT_SANITIZE is only supported with GCC/Clang")
  endif()
  set(RAFT_SANITIZE_FLAGS
    -fsanitize=${RAFT_SANITIZE}
    -fno-omit-frame-pointer
    -fno-sanitize-recover=all)
  add_compile_options(${RAFT_SANITIZE_FLAGS})
  add_link_options(${RAFT_SANITIZE_FLAGS})
  message(STATUS "raftpp: sanitizers enabled: ${RAFT_SANITIZE}")
endif()

# raftpp_target_defaults(<target>)
#   Link raft::raft and add raftpp's warning flags (+ -Werror if RAFT_WERROR).
function(raftpp_target_defaults target)
  target_link_libraries(${target} PRIVATE raft::raft)
  target_compile_options(${target} PRIVATE ${RAFT_WARNING_FLAGS})
endfunction()

# raftpp_add_program(<target> <sources>...)
#   An executable with raftpp defaults.
function(raftpp_add_program target)
  add_executable(${target} ${ARGN})
  raftpp_target_defaults(${target})
endfunction()
