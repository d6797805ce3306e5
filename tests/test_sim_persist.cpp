// Crashes, restarts and the unreliable network (paper §5.4, Figure 8; the
// 6.824 2C scenarios). A crash keeps only the Log; nothing committed may be lost.
#include <catch2/catch.hpp>

#include "sim/cluster.hpp"
#include "sim/seeds.hpp"

using raft::index_t;
using sim::cluster;
using sim::node_id;

namespace {
std::string cmd(std::uint64_t k) { return "cmd-" + std::to_string(k); }

}  // namespace

TEST_CASE("a node rebuilt from its Log resumes with its term, vote and log", "[sim][persist]") {
  cluster c({.nodes = 3, .seed = 11});
  REQUIRE(c.one(cmd(1), 3));
  REQUIRE(c.one(cmd(2), 3));
  for (node_id i = 1; i <= 3; ++i) {
    const auto term = c.node(i).term();
    const auto vote = c.node(i).voted_for();
    const auto last = c.node(i).last_index();
    c.crash(i);
    c.restart(i);
    CHECK(c.node(i).term() == term);
    CHECK(c.node(i).voted_for() == vote);
    CHECK(c.node(i).last_index() == last);
    CHECK(c.node(i).role() == raft::role::follower);
    CHECK(c.applied(i).empty());  // the state machine restarts empty and is replayed
  }
  REQUIRE(c.one(cmd(3), 3));
  CHECK(c.all_applied_everything());
}

TEST_CASE("crash and restart of followers, of the leader and of all nodes lose nothing committed",
          "[sim][persist]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    REQUIRE(c.one(cmd(11), 3));
    // All nodes crash and restart.
    for (node_id i = 1; i <= 3; ++i) c.crash(i);
    for (node_id i = 1; i <= 3; ++i) c.restart(i);
    REQUIRE(c.one(cmd(12), 3));
    // The leader crashes and restarts.
    node_id l = *c.leader();
    c.crash(l);
    c.restart(l);
    REQUIRE(c.one(cmd(13), 3));
    // The leader crashes, the others carry on, it comes back.
    l = *c.leader();
    c.crash(l);
    REQUIRE(c.one(cmd(14), 2));
    c.restart(l);
    // A follower crashes while the others commit.
    REQUIRE(c.one(cmd(15), 3));
    l = *c.leader();
    const node_id f = l % 3 + 1;
    c.crash(f);
    REQUIRE(c.one(cmd(16), 2));
    c.restart(f);
    REQUIRE(c.one(cmd(17), 3));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 50));
    for (std::uint64_t k = 11; k <= 17; ++k) CHECK(c.n_committed(cmd(k)).first == 3);
  }
}

TEST_CASE("repeated crashes of two of three nodes while committing lose nothing", "[sim][persist]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    std::uint64_t k = 0;
    REQUIRE(c.one(cmd(k++), 3));
    for (int iter = 0; iter < 5; ++iter) {
      const node_id l = *c.leader();
      const node_id f1 = l % 3 + 1, f2 = (l + 1) % 3 + 1;
      REQUIRE(c.one(cmd(k++), 3));
      c.crash(f1);
      REQUIRE(c.one(cmd(k++), 2));
      c.crash(l);  // only f2 left
      c.restart(f1);
      REQUIRE(c.one(cmd(k++), 2));
      c.restart(l);
      REQUIRE(c.one(cmd(k++), 3));
      c.crash(f2);
      REQUIRE(c.one(cmd(k++), 2));
      c.restart(f2);
    }
    REQUIRE(c.one(cmd(k++), 3));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 50));
  }
}

// The exact sequence of Figure 8 (a)-(e), forced step by step. With one entry
// per message, the term-3 leader S1 gets its term-1 entry X onto a majority
// before its own no-op; counting those replicas would commit X, and S5 could
// then be elected and overwrite it.
TEST_CASE("Figure 8: a leader never commits an entry from an earlier term by counting replicas",
          "[sim][persist][figure8][paper]") {
  // Forced elections, as in the figure: the plain algorithm, without PreVote
  // and leader stickiness (which would refuse them).
  cluster c({.nodes = 5,
             .seed = 8,
             .election_ticks = 1000,
             .heartbeat_ticks = 1,
             .max_append_entries = 1,
             .pre_vote = false,
             .check_quorum = false});
  c.campaign(1);
  REQUIRE(c.run_until([&] { return c.node(1).is_leader() && c.n_committed("").first == 0; }, 10));
  REQUIRE(c.run_until([&] { return c.committed().size() == 1 && c.applied(5).size() == 1; }, 10));
  // (a) S1 leads term 1 and replicates X at index 2 to S2 only.
  for (node_id j : {3, 4, 5}) c.set_link(1, j, false);
  REQUIRE(c.propose_at(1, "X").index == index_t{2});
  REQUIRE(c.run_until([&] { return c.node(2).last_index() == index_t{2}; }, 10));
  // (b) S1 crashes; S5 wins term 2 with S3 and S4 and appends Y at index 2,
  //     then is cut off before replicating it.
  c.crash(1);
  c.heal();
  for (node_id j : {1, 2}) c.set_link(5, j, false);
  c.campaign(5);
  REQUIRE(c.run_units_until([&] { return c.node(5).is_leader(); }, 20));
  c.isolate(5);
  REQUIRE(c.node(5).last_index() == index_t{2});
  REQUIRE(c.node(5).log().term_at(index_t{2}) == raft::term_t{2});
  c.crash(5);
  // (c) S1 restarts and wins term 3 with S2, S3, S4; it gets X onto S3 (a
  //     majority: S1, S2, S3) but, one entry per message, not yet its no-op.
  c.restart(1);
  c.isolate(1);
  c.set_link(1, 2, true);
  c.set_link(1, 3, true);
  c.set_link(1, 4, true);
  // (Its first try, in term 2, loses: S3 and S4 already voted in term 2.)
  for (int attempt = 0; attempt < 3 && !c.node(1).is_leader(); ++attempt) {
    c.campaign(1);
    c.run_units_until([&] { return c.node(1).is_leader(); }, 20);
  }
  REQUIRE(c.node(1).is_leader());
  REQUIRE(c.node(1).term() == raft::term_t{3});
  REQUIRE(c.run_units_until([&] { return c.node(3).last_index() >= index_t{2}; }, 20));
  c.run_units_until([] { return false; }, 3);
  // X is on a majority, but it is from term 1: it must not be committed.
  CHECK(c.node(1).commit_index() < index_t{2});
  CHECK(c.n_committed("X").first == 0);
  // (d) S1 crashes; S5 restarts and can win term 4 (its last term 2 beats 1)
  //     and overwrite X everywhere. Had X been committed, that would break
  //     State Machine Safety - the checker would throw.
  c.crash(1);
  c.restart(5);
  c.heal();
  c.isolate(1);
  for (int attempt = 0; attempt < 3 && !c.node(5).is_leader(); ++attempt) {
    c.campaign(5);
    c.run_units_until([&] { return c.node(5).is_leader(); }, 20);
  }
  REQUIRE(c.node(5).is_leader());
  REQUIRE(c.one("Z", 4));
  CHECK(c.n_committed("X").first == 0);
  c.restart(1);
  c.connect(1);
  REQUIRE(c.one("W", 5));
  CHECK(c.node(1).log().term_at(index_t{2}) == raft::term_t{2});
}

// Figure 8 of the paper: a leader must not count replicas of an entry from an
// earlier term to commit it. The test makes leaders crash right after
// proposing, over and over, so that entries of old terms reach majorities
// without being committed; the checker catches any committed entry that is
// later overwritten.
TEST_CASE("Figure 8: crashing leaders never cause a committed entry to be lost (reliable network)",
          "[sim][persist][figure8]") {
  for (auto seed : sim::seeds(20)) {
    INFO("seed " << seed);
    // One entry per AppendEntries: a new leader's old-term entries then reach
    // followers before its own no-op, which is what makes Figure 8 possible.
    cluster c({.nodes = 5, .seed = seed, .max_append_entries = 1});
    std::uint64_t k = 0;
    REQUIRE(c.one(cmd(k++), 1));
    std::size_t up = 5;
    for (int iter = 0; iter < 300; ++iter) {
      std::optional<node_id> l;
      for (node_id i = 1; i <= 5; ++i)
        if (c.up(i) && c.node(i).is_leader()) {
          c.propose_at(i, cmd(k++));
          l = i;
        }
      // Mostly short pauses (crash before replication completes), sometimes long.
      if (c.rand(1000) < 100) c.run_ticks(c.rand(50));
      else c.run_ticks(c.rand(2));
      if (l) {
        c.crash(*l);
        --up;
      }
      if (up < 3) {
        const node_id s = 1 + c.rand(5);
        if (!c.up(s)) {
          c.restart(s);
          ++up;
        }
      }
    }
    for (node_id i = 1; i <= 5; ++i) c.restart(i);
    REQUIRE(c.one(cmd(k++), 5, 1000));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 200));
  }
}

TEST_CASE("Figure 8 on an unreliable network: drops, duplicates, long reordering delays and partitions",
          "[sim][persist][figure8]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 5,
               .seed = seed,
               .min_delay = 1,
               .max_delay = 40,
               .drop = 0.1,
               .duplicate = 0.05,
               .max_append_entries = 1});
    std::uint64_t k = 0;
    REQUIRE(c.one(cmd(k++), 1, 1000));
    std::size_t connected = 5;
    std::vector<bool> on(6, true);
    for (int iter = 0; iter < 300; ++iter) {
      std::optional<node_id> l;
      for (node_id i = 1; i <= 5; ++i)
        if (c.node(i).is_leader()) {
          c.propose_at(i, cmd(k++));
          l = i;
        }
      if (c.rand(1000) < 100) c.run_ticks(c.rand(10));
      else c.run_ticks(c.rand(2));
      if (l && c.rand(1000) < 500) {
        c.isolate(*l);
        on[*l] = false;
        --connected;
      }
      if (connected < 3) {
        const node_id s = 1 + c.rand(5);
        if (!on[s]) {
          // reconnect s to the other connected nodes only
          for (node_id j = 1; j <= 5; ++j)
            if (j != s && on[j]) c.set_link(s, j, true);
          on[s] = true;
          ++connected;
        }
      }
    }
    c.heal();
    c.calm_network();
    REQUIRE(c.one(cmd(k++), 5, 1000));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 200));
  }
}

namespace {
/// Random crashes, restarts and partitions while clients keep proposing; then
/// everything heals and every committed command must be on every node.
struct churn_disk {
  sim::durability mode = sim::durability::sync;
  std::uint32_t max_delay = 20;  // async: flush delay in units (a tick is 10)
  bool torn = false;             // a crash keeps a random prefix of the writes in flight
};

/// Asynchronous durability for a seed: random flush delays up to 1-6 ticks,
/// torn crashes on every other seed.
churn_disk async_disk(std::uint64_t seed) {
  return {sim::durability::async, static_cast<std::uint32_t>(5 + (seed * 7919) % 56), (seed / 2) % 2 == 0};
}

/// Whether a seed's churn runs with lease reads (a quarter-period pattern of
/// the seed, independent of the network, snapshot and disk choices).
bool lease_seed(std::uint64_t seed) { return (seed >> 2) % 2 == 1; }

/// Random crashes, restarts and partitions while clients propose; clients
/// also read at random nodes (lease or ReadIndex, the cluster checks every
/// answer for linearizability) and the leader is sometimes asked to hand
/// over leadership. Then everything heals and every committed command must
/// be on every node.
struct churn_stats {
  std::uint64_t reads_ok = 0, reads_failed = 0, writes_ok = 0, transfers = 0;
};

churn_stats churn(std::uint64_t seed, bool unreliable, int iterations, std::uint64_t snapshot_every = 0,
                  churn_disk disk = {}, bool lease_reads = false) {
  sim::options o{.nodes = 5, .seed = seed};
  o.lease_reads = lease_reads;
  o.disk = disk.mode;
  o.max_disk_delay = disk.max_delay;
  o.torn_crashes = disk.torn;
  if (snapshot_every != 0) {
    o.snapshot_every = snapshot_every;
    o.snapshot_padding = 200;
    o.snapshot_chunk_bytes = 64;
  }
  if (unreliable) {
    o.max_delay = 25;
    o.drop = 0.1;
    o.duplicate = 0.05;
  }
  cluster c(o);
  for (int iter = 0; iter < iterations; ++iter) {
    for (int r = static_cast<int>(c.rand(4)); r > 0; --r) {
      const node_id at = 1 + c.rand(5);
      if (c.up(at)) (void)c.read_at(at, lease_reads && c.rand(2) ? raft::read_mode::lease : raft::read_mode::read_index);
    }
    if (c.rand(100) < 4)
      if (auto l = c.leader()) (void)c.transfer_at(*l, 1 + c.rand(5));
    c.churn_round();
  }
  // Every node that applied something agrees with the rest (checked all along);
  // now heal and make sure all committed commands reach everyone.
  c.calm_network();
  REQUIRE(c.converge(3000));
  for (node_id i = 1; i <= 5; ++i) REQUIRE(c.applied(i).size() == c.committed().size());
  return {c.hist().reads_ok(), c.hist().reads_failed(), c.hist().writes_ok(), c.transfers().size()};
}
}  // namespace

TEST_CASE("churn: crashes, restarts and partitions while clients propose, then every committed command is everywhere",
          "[sim][persist][churn]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    churn(seed, false, 200);
  }
}

TEST_CASE("churn on an unreliable network", "[sim][persist][churn]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    churn(seed, true, 200);
  }
}

TEST_CASE("A leader whose own disk is slow commits with its followers' durable copies (thesis §10.2.1)",
          "[sim][persist][async]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    sim::options o{.nodes = 3, .seed = seed};
    o.disk = sim::durability::async;
    o.max_disk_delay = 3;
    cluster c(o);
    REQUIRE(c.one(cmd(0), 3));
    const node_id l = *c.leader();
    c.opts().slow_disk_node = l;  // from now on its flushes take 20 ticks
    c.opts().slow_disk_delay = 200;
    const auto t0 = c.ticks();
    const auto r = c.propose_at(l, cmd(1));
    REQUIRE(r.ok());
    REQUIRE(c.run_until([&] { return c.node(l).commit_index() >= r.index; }, 10));
    CHECK(c.ticks() - t0 < 5);
    // Committed while the leader's own copy is not durable yet.
    CHECK(c.node(l).durable_index() < c.node(l).commit_index());
    // The leader crashes before its write lands: the entry survives on the others.
    c.crash(l);
    REQUIRE(c.one(cmd(2), 2));
    CHECK(c.n_committed(cmd(1)).first == 2);
  }
}

TEST_CASE("churn with asynchronous durability: a crash loses every write not reported durable",
          "[sim][persist][churn][async]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    INFO("lease_reads=" << (lease_seed(seed) ? "on" : "off"));
    churn(seed, seed % 2 == 0, 200, 0, async_disk(seed), lease_seed(seed));
  }
}

namespace {
/// RAFT_SOAK_SEEDS seeds (default 500) of churn, half of them on an
/// unreliable network, a third compacting often, half with lease reads
/// (lease_seed()); `disk` picks the durability model per seed. A violation
/// names the seed to replay (and whether leases were on: the seed decides).
template <class DiskFn>
void soak(const char* what, DiskFn disk) {
  const auto n = sim::env_u64("RAFT_SOAK_SEEDS", 500);
  const auto first = sim::env_u64("RAFT_SOAK_FIRST_SEED", 1000);
  std::uint64_t ran = 0, leased = 0;
  churn_stats total;
  for (auto seed : sim::seeds(n, first)) {
    const bool lease = lease_seed(seed);
    INFO("replay with RAFT_SIM_SEED=" << seed << " (lease_reads=" << (lease ? "on" : "off") << ")");
    try {
      const auto st = churn(seed, seed % 2 == 0, 60, seed % 3 == 0 ? 10 : 0, disk(seed), lease);
      total.reads_ok += st.reads_ok;
      total.reads_failed += st.reads_failed;
      total.writes_ok += st.writes_ok;
      total.transfers += st.transfers;
    } catch (const sim::violation& v) {
      FAIL(v.what() << " (lease_reads=" << (lease ? "on" : "off") << "; replay with RAFT_SIM_SEED=" << seed << ")");
    }
    ++ran;
    leased += lease ? 1 : 0;
  }
  WARN(what << " ran " << ran << " seeds, " << leased << " of them with lease reads; " << total.reads_ok
              << " reads served (checked linearizable), " << total.reads_failed << " failed, " << total.writes_ok
              << " writes completed, " << total.transfers << " transfer events");
  if (ran > 20) CHECK(total.reads_ok > ran);  // the reads are really exercised
  CHECK(ran == (std::getenv("RAFT_SIM_SEED") ? 1 : n));
}
}  // namespace

TEST_CASE("randomized soak: many seeds of churn on an unreliable network", "[sim][soak]") {
  soak("soak (synchronous durability)", [](std::uint64_t) { return churn_disk{}; });
}

TEST_CASE("randomized soak, asynchronous durability: random flush delays, crashes lose (or tear) writes in flight",
          "[sim][soak][async]") {
  soak("soak (asynchronous durability)", async_disk);
}
