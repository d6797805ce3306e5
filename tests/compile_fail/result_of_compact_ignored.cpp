// The result of node::compact() says what happened to the input (refused,
// stale, not leader, ...): ignoring it is a bug, so it is [[nodiscard]].
// EXPECT: nodiscard
#pragma GCC diagnostic error "-Wunused-result"
#include <raft/raft.hpp>

int main() {
  raft::node<> n({.id = 1, .voters = {1}});
  raft::node<>::output_type out;
  raft::node<>::message_type m{2, 1, raft::term_t{1}, raft::vote_request{}};
  (void)m;
  n.compact(raft::index_t{1}, raft::bytes("s"), out);
  return 0;
}
