// A Trace policy that forgets to say whether it is enabled.
// EXPECT: raft: the Trace policy needs 'static constexpr bool enabled'
#include <raft/raft.hpp>

struct my_trace {
  void operator()(const raft::trace_event<std::uint64_t>&) {}
};

int main() {
  raft::node<raft::default_transport, raft::memory_log<>, raft::tick_clock, raft::default_random, my_trace> n(
      {.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
