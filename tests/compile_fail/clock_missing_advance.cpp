// A Clock that can be read but never moves.
// EXPECT: raft: the Clock policy needs .void advance[(][)].
#include <raft/raft.hpp>

struct my_clock {
  std::uint64_t now() const { return 0; }
};

int main() {
  raft::node<raft::default_transport, raft::memory_log<>, my_clock> n({.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
