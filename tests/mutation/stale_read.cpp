// tests/mutation/stale_read.cpp - proves the simulator's linearizability
// check (tests/sim/history.hpp) catches a leader that serves reads it may no
// longer serve.
//
// Built three times:
//  * -DRAFT_TEST_MUTATION_STALE_READ: the leader answers a ReadIndex read as
//    soon as any heartbeat round is confirmed, without waiting for a round
//    that began after the read arrived (include/raft/detail/reads.hpp);
//  * -DRAFT_TEST_MUTATION_LONG_LEASE: the lease lasts four election timeouts,
//    outliving the followers' promise not to elect anybody else;
//  * neither: the control.
// Each seed runs a few episodes in which the leader is partitioned while
// clients keep reading on it (both modes: lease_reads is on) and keep
// writing through whoever leads the majority. The partition is either a full
// isolation, or an asymmetric one: the leader's outgoing links are cut (the
// followers stop hearing it and elect a new leader) while its incoming links
// are slow (answers to its old heartbeat rounds keep trickling in for one to
// three election timeouts). A mutant passes only if the check reports a
// read-check violation ("Linearizability: read ...") within
// RAFT_MUTATION_SEEDS seeds (default 200), printing the seed (RAFT_SIM_SEED
// replays it); the control passes only if no seed finds any violation and
// reads were both served and failed.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "../sim/cluster.hpp"
#include "../sim/seeds.hpp"

#if defined(RAFT_TEST_MUTATION_STALE_READ) || defined(RAFT_TEST_MUTATION_LONG_LEASE)
#define RAFT_MUTANT 1
#endif

namespace {

// Not "w" + std::to_string(k): g++ 12 at -O3 warns (-Wrestrict, a known
// false positive) on that concatenation here.
std::string write_name(std::uint64_t k) {
  std::string s = std::to_string(k);
  s.insert(s.begin(), 'w');
  return s;
}

struct totals {
  std::uint64_t reads_ok = 0, reads_failed = 0, old_leader_reads = 0, writes_ok = 0;
};

void run(std::uint64_t seed, totals& t) {
  sim::options o{.nodes = 3 + 2 * (seed % 2), .seed = seed};
  o.lease_reads = true;
  sim::cluster c(o);
  const std::uint32_t e = o.election_ticks;
  const std::size_t n = o.nodes;
  std::uint64_t k = 0;
  if (!c.one(write_name(k++), static_cast<int>(n), 1000)) throw sim::violation("no progress at start");
  for (int episode = 0; episode < 4; ++episode) {
    const auto l = c.wait_leader(400);
    if (!l) throw sim::violation("no leader");
    std::vector<sim::node_id> others;
    for (sim::node_id i = 1; i <= n; ++i)
      if (i != *l) others.push_back(i);
    // One tick of clients: reads on the old leader in both modes, a read on
    // some other node, writes through whoever leads the majority.
    const auto clients = [&] {
      for (auto mode : {raft::read_mode::read_index, raft::read_mode::lease}) {
        (void)c.read_at(*l, mode);
        ++t.old_leader_reads;
      }
      (void)c.read_at(others[c.rand(others.size())], c.rand(2) ? raft::read_mode::lease : raft::read_mode::read_index);
      for (auto nl : c.leaders_among(others)) (void)c.propose_at(nl, write_name(k++));
      c.run_units_until([] { return false; }, o.units_per_tick / 2);
      (void)c.read_at(*l, raft::read_mode::lease);
      ++t.old_leader_reads;
      c.run_units_until([] { return false; }, o.units_per_tick - o.units_per_tick / 2);
    };
    if (c.rand(2) == 0) {
      c.isolate(*l);
    } else {
      // A gray failure: the links into the leader slow down gradually (so
      // answers keep arriving, later and later: it keeps its quorum), then
      // its outgoing links fail. The followers elect a new leader while
      // answers to the old leader's earlier rounds are still on their way.
      const auto ramp = static_cast<std::uint32_t>((3 + c.rand(3)) * e);
      const auto step = static_cast<std::uint32_t>(5 + c.rand(4));
      for (std::uint32_t tick = 1; tick <= ramp; ++tick) {
        for (auto j : others) c.set_delay(j, *l, tick * step);
        clients();
      }
      for (auto j : others) c.set_link_one_way(*l, j, false);
    }
    for (std::uint32_t tick = 0; tick < 5 * e; ++tick) clients();
    c.heal();
    for (sim::node_id a = 1; a <= n; ++a)
      for (sim::node_id b = 1; b <= n; ++b) c.set_delay(a, b, 0);
    if (!c.one(write_name(k++), static_cast<int>(n), 1000)) throw sim::violation("no progress after healing");
  }
  t.reads_ok += c.hist().reads_ok();
  t.reads_failed += c.hist().reads_failed();
  t.writes_ok += c.hist().writes_ok();
}

}  // namespace

int main() {
  const auto n = sim::env_u64("RAFT_MUTATION_SEEDS", 200);
  std::uint64_t tried = 0;
  totals t;
  for (auto seed : sim::seeds(n, 1)) {
    ++tried;
    try {
      run(seed, t);
    } catch (const sim::violation& v) {
#ifndef RAFT_MUTANT
      std::printf("control run FAILED: %s\n(replay with RAFT_SIM_SEED=%llu)\n", v.what(),
                  static_cast<unsigned long long>(seed));
      return 1;
#else
      if (std::string(v.what()).find("Linearizability: read") == std::string::npos) {
        std::printf("mutant failed, but not by the read check: %s\n(replay with RAFT_SIM_SEED=%llu)\n", v.what(),
                    static_cast<unsigned long long>(seed));
        return 1;
      }
      std::printf("mutation caught after %llu seed(s): %s\n(replay with RAFT_SIM_SEED=%llu)\n",
                  static_cast<unsigned long long>(tried), v.what(), static_cast<unsigned long long>(seed));
      return 0;
#endif
    }
  }
  std::printf("%s: %llu seeds, %llu reads served, %llu failed, %llu issued on partitioned leaders, %llu writes completed\n",
#ifdef RAFT_MUTANT
              "MUTATION SURVIVED",
#else
              "control",
#endif
              static_cast<unsigned long long>(tried), static_cast<unsigned long long>(t.reads_ok),
              static_cast<unsigned long long>(t.reads_failed), static_cast<unsigned long long>(t.old_leader_reads),
              static_cast<unsigned long long>(t.writes_ok));
#ifdef RAFT_MUTANT
  return 1;
#else
  return t.reads_ok > 0 && t.reads_failed > 0 && t.writes_ok > 0 ? 0 : 1;
#endif
}
