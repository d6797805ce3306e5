// A Log policy that cannot append entries.
// EXPECT: raft: the Log policy needs .void append[(]raft::entry<payload>&&[)].
#include <raft/raft.hpp>

#include <vector>

struct my_log {
  using node_id = std::uint64_t;
  using payload = raft::bytes;
  using entry_type = raft::entry<payload>;

  raft::hard_state<node_id> hard_state() const { return hs; }
  void save_hard_state(const raft::hard_state<node_id>& s) { hs = s; }
  raft::index_t snapshot_index() const { return raft::index_t{}; }
  raft::term_t snapshot_term() const { return raft::term_t{}; }
  raft::index_t first_index() const { return raft::index_t{1}; }
  raft::index_t last_index() const { return raft::index_t{entries.size()}; }
  raft::term_t term_at(raft::index_t i) const { return i.value == 0 ? raft::term_t{} : entries[i.value - 1].term; }
  const entry_type& entry_at(raft::index_t i) const { return entries[i.value - 1]; }
  // append(entry_type&&) is missing
  void truncate_after(raft::index_t i) { entries.resize(i.value); }
  void install_snapshot(const raft::snapshot&) {}  // (a stub: enough for this test)
  raft::bytes snapshot_data() const { return {}; }

  raft::hard_state<node_id> hs;
  std::vector<entry_type> entries;
};

int main() {
  raft::node<raft::default_transport, my_log> n({.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
