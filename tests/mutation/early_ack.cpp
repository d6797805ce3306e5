// tests/mutation/early_ack.cpp - proves the simulator catches a node that
// sends an acknowledgement (or a vote) before the write it promises is
// durable.
//
// Built twice. With -DRAFT_TEST_MUTATION_EARLY_ACK, raft::node sends append
// acknowledgements, vote grants and "installed" snapshot answers at once
// instead of holding them until persisted() (see
// include/raft/detail/durability.hpp); the program runs asynchronous-
// durability churn and passes only if the safety checker reports a violation
// within the seeds given (RAFT_MUTATION_SEEDS, default 2000), printing the
// seed (RAFT_SIM_SEED replays it). Without the define it is the control: the
// same churn over RAFT_MUTATION_SEEDS seeds must find no violation.

#include <cstdio>
#include <cstdlib>

#include "../sim/cluster.hpp"
#include "../sim/seeds.hpp"

int main() {
  const auto n = sim::env_u64("RAFT_MUTATION_SEEDS", 2000);
  std::uint64_t tried = 0, lost = 0, committed = 0;
  for (auto seed : sim::seeds(n, 1)) {
    ++tried;
    sim::options o{.nodes = 3, .seed = seed};
    o.disk = sim::durability::async;
    o.max_disk_delay = 40;
    o.election_ticks = 10;
    sim::cluster c(o);
    try {
      for (int round = 0; round < 300; ++round) c.churn_round(2);
      c.calm_network();
      (void)c.converge(3000);
    } catch (const sim::violation& v) {
#ifndef RAFT_TEST_MUTATION_EARLY_ACK
      std::printf("control run FAILED: %s\n(replay with RAFT_SIM_SEED=%llu)\n", v.what(),
                  static_cast<unsigned long long>(seed));
      return 1;
#endif
      std::printf("mutation caught after %llu seed(s): %s\n(replay with RAFT_SIM_SEED=%llu)\n",
                  static_cast<unsigned long long>(tried), v.what(), static_cast<unsigned long long>(seed));
      return 0;
    }
    lost += c.lost_ops();
    committed += c.committed().size();
  }
#ifndef RAFT_TEST_MUTATION_EARLY_ACK
  std::printf("control: %llu seeds, %llu entries committed, %llu writes lost in crashes, no violation\n",
              static_cast<unsigned long long>(tried), static_cast<unsigned long long>(committed),
              static_cast<unsigned long long>(lost));
  return lost > 0 ? 0 : 1;  // the crashes must actually have lost writes
#endif
  std::printf("MUTATION SURVIVED: %llu seeds, %llu entries committed, %llu lost writes, no violation found\n",
              static_cast<unsigned long long>(tried), static_cast<unsigned long long>(committed),
              static_cast<unsigned long long>(lost));
  return 1;
}
