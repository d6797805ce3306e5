// raft/assert.hpp - the one place broken invariants go.
//
// Expected outcomes (not leader, stale message, malformed bytes) are values,
// never exceptions. RAFT_ASSERT is for "this cannot happen unless the library
// or a policy is broken": it reports through raft::detail::assertion_failed,
// which throws raft::invariant_error, or aborts when exceptions are disabled.
// Define RAFT_ASSERT yourself before including any raft header to route it
// elsewhere (your logger, a crash handler).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace raft {
inline namespace v0 {

/// Thrown when an internal invariant is broken (a bug, or a Log policy that
/// does not keep its contract). Never thrown for bad input from the network.
struct invariant_error : std::logic_error {
  using std::logic_error::logic_error;
};

namespace detail {
[[noreturn]] inline void assertion_failed(const char* expr, const char* msg, const char* file, int line) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s:%d: raft invariant broken: %s (%s)", file, line, msg, expr);
  throw invariant_error(buf);
#else
  std::fprintf(stderr, "%s:%d: raft invariant broken: %s (%s)\n", file, line, msg, expr);
  std::abort();
#endif
}
}  // namespace detail

}  // namespace v0
}  // namespace raft

#ifndef RAFT_ASSERT
#define RAFT_ASSERT(cond, msg) \
  ((cond) ? static_cast<void>(0) : ::raft::detail::assertion_failed(#cond, msg, __FILE__, __LINE__))
#endif
