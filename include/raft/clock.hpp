// raft/clock.hpp - the default Clock policy: logical ticks.
#pragma once

#include <cstdint>

namespace raft {
inline namespace v0 {

/// Counts the node's ticks. Elections and heartbeats are measured in ticks;
/// `now()` is the monotonic reading features such as leases compare against.
/// A clock backed by std::chrono::steady_clock fits the same concept: advance()
/// may ignore its call and now() return the real monotonic time in ticks.
class tick_clock {
 public:
  void advance() noexcept { ++now_; }
  [[nodiscard]] std::uint64_t now() const noexcept { return now_; }

 private:
  std::uint64_t now_ = 0;
};

}  // namespace v0
}  // namespace raft
