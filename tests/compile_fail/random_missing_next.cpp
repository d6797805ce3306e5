// A Random policy that can be seeded but yields nothing.
// EXPECT: raft: the Random policy needs .std::uint64_t next[(][)].
#include <raft/raft.hpp>

struct my_random {
  void seed(std::uint64_t) {}
};

int main() {
  raft::node<raft::default_transport, raft::memory_log<>, raft::tick_clock, my_random> n({.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
