// Snapshots and log compaction in the simulator (paper §7, thesis chapter 5).
// The checker verifies, besides the safety properties, that every node's
// applied sequence is gapless and exactly-once, counting a restored snapshot
// as applying every index it covers (and checking its contents).
#include <catch2/catch.hpp>

#include "sim/cluster.hpp"
#include "sim/seeds.hpp"

using raft::index_t;
using sim::cluster;
using sim::node_id;

namespace {
std::string cmd(std::uint64_t k) { return "cmd-" + std::to_string(k); }


/// Counts, in `counter`, the snapshot chunks delivered to `to` from now on.
void snapshot_chunks_to(cluster& c, node_id to, std::uint64_t& counter) {
  c.on_deliver = [&counter, to](const sim::message_type& m) {
    if (m.to == to && std::holds_alternative<raft::install_snapshot>(m.body)) ++counter;
  };
}

/// Commits cmd-0 on all three nodes, then cuts a follower off (or crashes it)
/// while the other two commit cmd-1..cmd-n and compact past it. Returns it.
node_id leave_follower_behind(cluster& c, std::uint64_t n, bool crash) {
  REQUIRE(c.one(cmd(0), 3));
  const node_id f = *c.leader() % 3 + 1;
  if (crash) c.crash(f);
  else c.isolate(f);
  for (std::uint64_t k = 1; k <= n; ++k) REQUIRE(c.one(cmd(k), 2));
  return f;
}

sim::options snap_opts(std::uint64_t seed) {
  return {.nodes = 3, .seed = seed, .snapshot_every = 20, .snapshot_padding = 1000, .snapshot_chunk_bytes = 64};
}
}  // namespace

TEST_CASE("snapshotting every N entries while clients propose keeps every Log bounded", "[sim][snapshot]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c(snap_opts(seed));
    std::uint64_t k = 0;
    std::size_t max_entries = 0, max_bytes = 0;
    for (int round = 0; round < 100; ++round) {
      for (int p = 0; p < 5; ++p)
        if (auto l = c.leader()) c.propose_at(*l, cmd(k++));
      c.run_ticks(1);
      for (node_id i = 1; i <= 3; ++i) {
        max_entries = std::max(max_entries, c.node(i).log().entry_count());
        max_bytes = std::max(max_bytes, c.node(i).log().payload_bytes());
      }
    }
    REQUIRE(c.one(cmd(k++), 3));
    // The bound: one snapshot interval plus what is still uncommitted (at
    // most a few rounds of proposals in a healthy cluster).
    INFO("max entries held " << max_entries << ", max payload bytes " << max_bytes);
    CHECK(max_entries <= 20 + 30);
    CHECK(max_bytes <= (20 + 30) * 10);
    INFO("restores " << c.restores() << " k " << k);
    CHECK(c.snapshots_taken() >= 3 * (k / 20) - 3);
    CHECK(c.committed().size() > 400);
  }
}

TEST_CASE("a follower cut off while the leader compacts is brought up by InstallSnapshot", "[sim][snapshot]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c(snap_opts(seed));
    const node_id f = leave_follower_behind(c, 100, false);
    REQUIRE(c.node(*c.leader()).log().snapshot_index() > c.node(f).last_index());
    std::uint64_t chunks = 0;
    snapshot_chunks_to(c, f, chunks);
    c.connect(f);
    REQUIRE(c.one(cmd(101), 3));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 50));
    // 1000+ bytes in 64-byte chunks: the snapshot went over in many chunks.
    CHECK(chunks >= 16);
    CHECK(c.node(f).log().snapshot_index() > index_t{});
    CHECK(c.restores() >= 1);
    c.on_deliver = nullptr;
  }
}

TEST_CASE("InstallSnapshot over an unreliable network: lost, duplicated and reordered chunks", "[sim][snapshot]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c(snap_opts(seed));
    const node_id f = leave_follower_behind(c, 60, false);
    c.opts().drop = 0.2;
    c.opts().duplicate = 0.2;
    c.opts().max_delay = 15;
    std::uint64_t chunks = 0;
    snapshot_chunks_to(c, f, chunks);
    c.connect(f);
    REQUIRE(c.run_until([&] { return c.node(f).log().snapshot_index() > index_t{}; }, 2000));
    c.calm_network();
    REQUIRE(c.one(cmd(61), 3, 1000));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 100));
    CHECK(chunks >= 16);
    c.on_deliver = nullptr;
  }
}

TEST_CASE("a follower that crashes and restarts, even in the middle of a transfer, is brought up by a snapshot",
          "[sim][snapshot][persist]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c(snap_opts(seed));
    const node_id f = leave_follower_behind(c, 80, true);
    std::uint64_t chunks = 0;
    snapshot_chunks_to(c, f, chunks);
    c.restart(f);
    // Crash it again once a few chunks have arrived, then bring it back.
    REQUIRE(c.run_units_until([&] { return chunks >= 3; }, 2000));
    CHECK(c.node(f).log().snapshot_index() == index_t{});
    c.crash(f);
    c.run_ticks(5);
    c.restart(f);
    REQUIRE(c.one(cmd(81), 3));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 50));
    CHECK(c.node(f).log().snapshot_index() > index_t{});
    c.on_deliver = nullptr;
  }
}

TEST_CASE("a transfer to a follower that vanishes does not stall the rest of the cluster", "[sim][snapshot]") {
  cluster c(snap_opts(3));
  const node_id f = leave_follower_behind(c, 60, false);
  std::uint64_t chunks = 0;
  snapshot_chunks_to(c, f, chunks);
  c.connect(f);
  REQUIRE(c.run_units_until([&] { return chunks >= 2; }, 2000));
  c.crash(f);  // gone mid-transfer, for good
  for (std::uint64_t k = 61; k <= 120; ++k) REQUIRE(c.one(cmd(k), 2, 100));
  c.on_deliver = nullptr;
}

TEST_CASE("all nodes crash and restart from their snapshots, and nothing committed is lost",
          "[sim][snapshot][persist]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c(snap_opts(seed));
    for (std::uint64_t k = 0; k < 50; ++k) REQUIRE(c.one(cmd(k), 3));
    for (node_id i = 1; i <= 3; ++i) REQUIRE(c.node(i).log().snapshot_index() > index_t{});
    const auto before = c.committed().size();
    for (node_id i = 1; i <= 3; ++i) c.crash(i);
    for (node_id i = 1; i <= 3; ++i) c.restart(i);
    REQUIRE(c.one(cmd(50), 3));
    REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 50));
    CHECK(c.committed().size() > before);
    CHECK(c.restores() >= 3);
  }
}

TEST_CASE("a restart right after a snapshot with no later entries restores it and carries on", "[sim][snapshot]") {
  cluster c({.nodes = 3, .seed = 5, .snapshot_every = 0});
  for (std::uint64_t k = 0; k < 10; ++k) REQUIRE(c.one(cmd(k), 3));
  REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 20));
  // Node 1 snapshots everything it applied; its log then holds no entry.
  auto& n = c.node(1);
  sim::output_type out;
  const auto upto = n.applied_index();
  REQUIRE(n.compact(upto, raft::bytes("not checked here"), out) == raft::compact_status::ok);
  CHECK(n.log().entry_count() == 0);
  CHECK(n.log().snapshot_index() == upto);
  CHECK(n.compact(upto, raft::bytes("again"), out) == raft::compact_status::not_newer);
  CHECK(n.compact(upto.next(), raft::bytes("future"), out) == raft::compact_status::beyond_applied);
  auto log = n.log();  // what is durable
  sim::node_type restarted(n.config(), std::move(log));
  CHECK(restarted.last_index() == upto);
  CHECK(restarted.commit_index() == upto);
  restarted.tick(out);
  REQUIRE(out.snapshot);
  CHECK(out.snapshot->index == upto);
  CHECK(out.snapshot->data.view() == "not checked here");
  CHECK(out.committed.empty());
}

TEST_CASE("churn with frequent snapshots on an unreliable network", "[sim][snapshot][churn]") {
  for (auto seed : sim::seeds(10, 500)) {
    INFO("seed " << seed);
    cluster c({.nodes = 5,
               .seed = seed,
               .max_delay = 20,
               .drop = 0.1,
               .duplicate = 0.05,
               .snapshot_every = 15,
               .snapshot_padding = 300,
               .snapshot_chunk_bytes = 100});
    for (int iter = 0; iter < 150; ++iter) c.churn_round();
    c.calm_network();
    REQUIRE(c.converge(3000));
    CHECK(c.all_applied_everything());
  }
}
