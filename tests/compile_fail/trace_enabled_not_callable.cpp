// An enabled Trace policy that cannot take the node's events.
// EXPECT: raft: the Trace policy needs 'void operator[(][)][(]const raft::trace_event<node_id>&[)]' when enabled
#include <raft/raft.hpp>

struct my_trace {
  static constexpr bool enabled = true;
  void operator()(int) {}
};

int main() {
  raft::node<raft::default_transport, raft::memory_log<>, raft::tick_clock, raft::default_random, my_trace> n(
      {.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
