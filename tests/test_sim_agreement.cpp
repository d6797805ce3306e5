// Log replication in the simulator (paper §5.3, §5.4; the 6.824 2B scenarios).
#include <catch2/catch.hpp>

#include "sim/cluster.hpp"
#include "sim/seeds.hpp"

using raft::index_t;
using sim::cluster;
using sim::node_id;

namespace {
node_id other_than(const cluster& c, std::vector<node_id> except) {
  for (node_id i = 1; i <= c.size(); ++i)
    if (std::find(except.begin(), except.end(), i) == except.end()) return i;
  return 0;
}
std::string cmd(int k) { return "cmd-" + std::to_string(k); }
}  // namespace

TEST_CASE("basic agreement: each command is applied by every node at the next index", "[sim][agreement]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    REQUIRE(c.wait_leader());
    for (int k = 1; k <= 5; ++k) {
      CHECK(c.n_committed(cmd(k)).first == 0);
      auto idx = c.one(cmd(k), 3);
      REQUIRE(idx);
      // Index 1 is the first leader's no-op.
      CHECK(*idx == index_t{static_cast<std::uint64_t>(k) + 1});
    }
  }
}

TEST_CASE("agreement continues with a follower cut off, and the follower catches up when it rejoins",
          "[sim][agreement]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    REQUIRE(c.one(cmd(101), 3));
    const node_id l = *c.leader();
    const node_id f = other_than(c, {l});
    c.isolate(f);
    REQUIRE(c.one(cmd(102), 2));
    c.run_ticks(20);
    REQUIRE(c.one(cmd(103), 2));
    CHECK(c.applied(f).size() < c.committed().size());
    c.connect(f);
    REQUIRE(c.one(cmd(104), 3));
    CHECK(c.run_until([&] { return c.applied(f).size() == c.committed().size(); }, 20));
    // Lose the leader instead: the other two carry on.
    const node_id l2 = *c.leader();
    c.isolate(l2);
    REQUIRE(c.one(cmd(105), 2));
    c.connect(l2);
    REQUIRE(c.one(cmd(106), 3));
  }
}

TEST_CASE("no commit without a majority, then commit once the majority is back", "[sim][agreement]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 5, .seed = seed});
    REQUIRE(c.one(cmd(10), 5));
    const node_id l = *c.leader();
    std::vector<node_id> cut;
    for (node_id i = 1; i <= 5 && cut.size() < 3; ++i)
      if (i != l) cut.push_back(i);
    for (auto i : cut) c.isolate(i);
    auto r = c.propose_at(l, cmd(20));
    REQUIRE(r.ok());
    CHECK(r.index == index_t{3});
    c.run_ticks(50);
    CHECK(c.n_committed(cmd(20)).first == 0);
    CHECK(c.node(l).commit_index() < r.index);
    for (auto i : cut) c.connect(i);
    c.heal();
    // Either the old leader commits it or a new leader overwrites it; either
    // way agreement resumes.
    REQUIRE(c.one(cmd(30), 5));
  }
}

TEST_CASE("many concurrent proposals all commit, in one order on every node", "[sim][agreement]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    REQUIRE(c.one("warmup", 3));
    const node_id l = *c.leader();
    std::vector<index_t> idx;
    for (int k = 0; k < 200; ++k) {
      auto r = c.propose_at(l, cmd(k));
      REQUIRE(r.ok());
      idx.push_back(r.index);
    }
    for (std::size_t k = 1; k < idx.size(); ++k) CHECK(idx[k] == idx[k - 1].next());
    REQUIRE(c.run_until([&] { return c.n_committed(cmd(199)).first == 3; }, 100));
    for (int k = 0; k < 200; ++k) CHECK(c.n_committed(cmd(k)).second == idx[static_cast<std::size_t>(k)]);
    for (node_id i = 1; i <= 3; ++i) CHECK(c.applied(i).size() == c.committed().size());
  }
}

TEST_CASE("proposals batched into one append go out as a single message per follower", "[sim][agreement][batch]") {
  cluster c({.nodes = 3, .seed = 7, .max_append_entries = 1000});
  REQUIRE(c.one("warmup", 3));
  const node_id l = *c.leader();
  c.reset_stats();
  std::vector<raft::bytes> batch;
  for (int k = 0; k < 100; ++k) batch.emplace_back(cmd(k));
  sim::output_type out;
  auto r = c.node(l).propose_batch(std::move(batch), out);
  REQUIRE(r.ok());
  std::size_t appends = 0, entries = 0;
  for (const auto& m : out.messages)
    if (const auto* a = std::get_if<raft::append_request<raft::bytes>>(&m.body)) {
      ++appends;
      entries += a->entries.size();
    }
  CHECK(appends == 2);
  CHECK(entries == 200);
}

TEST_CASE("proposals made one by one into the same output share one append per follower", "[sim][agreement][batch]") {
  cluster c({.nodes = 3, .seed = 9, .max_inflight = 4, .max_append_entries = 50});
  REQUIRE(c.one("warmup", 3));
  const node_id l = *c.leader();
  REQUIRE(c.node(l).progress_of(l % 3 + 1)->state == raft::replication_state::replicate);
  sim::output_type out;
  for (int k = 0; k < 120; ++k) REQUIRE(c.node(l).propose(raft::bytes(cmd(k)), out).ok());
  // 120 entries, at most 50 per message: 3 messages per follower, contiguous.
  std::map<node_id, std::vector<std::pair<std::uint64_t, std::size_t>>> per_peer;
  for (const auto& m : out.messages)
    if (const auto* a = std::get_if<raft::append_request<raft::bytes>>(&m.body))
      per_peer[m.to].push_back({a->prev_index.value, a->entries.size()});
  REQUIRE(per_peer.size() == 2);
  for (const auto& [peer, msgs] : per_peer) {
    INFO("peer " << peer);
    REQUIRE(msgs.size() == 3);
    CHECK(msgs[0].second == 50);
    CHECK(msgs[1].second == 50);
    CHECK(msgs[2].second == 20);
    CHECK(msgs[1].first == msgs[0].first + 50);
    CHECK(msgs[2].first == msgs[1].first + 50);
    CHECK(c.node(l).progress_of(peer)->inflight.count() == 3);
  }
  // A caller that took the messages (moved them out) gets fresh ones.
  std::vector<sim::message_type> taken(std::make_move_iterator(out.messages.begin()),
                                       std::make_move_iterator(out.messages.end()));
  REQUIRE(c.node(l).propose(raft::bytes("after"), out).ok());
  std::size_t fresh = 0;
  for (std::size_t k = taken.size(); k < out.messages.size(); ++k)
    if (const auto* a = std::get_if<raft::append_request<raft::bytes>>(&out.messages[k].body)) {
      ++fresh;
      CHECK(a->entries.size() == 1);
    }
  CHECK(fresh == 2);
}

TEST_CASE("a new proposal is sent at once, not at the next heartbeat", "[sim][agreement]") {
  cluster c({.nodes = 3, .seed = 3, .election_ticks = 50, .heartbeat_ticks = 20});
  REQUIRE(c.one("warmup", 3, 400));
  const node_id l = *c.leader();
  const auto t0 = c.now();
  REQUIRE(c.propose_at(l, "fast").ok());
  REQUIRE(c.run_until([&] { return c.n_committed("fast").first == 3; }, 10));
  // Delivery takes at most 3 units per hop; three hops (append, ack, commit).
  CHECK(c.now() - t0 <= 3 * 3 + 1);
}

TEST_CASE("a deposed leader's uncommitted entries are replaced when it rejoins", "[sim][agreement]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    REQUIRE(c.one(cmd(101), 3));
    const node_id l1 = *c.leader();
    c.isolate(l1);
    // The cut-off leader accepts proposals it can never commit.
    for (int k = 102; k <= 104; ++k) REQUIRE(c.propose_at(l1, cmd(k)).ok());
    REQUIRE(c.one(cmd(103), 2));  // the new leader commits its own cmd-103
    const node_id l2 = *c.leader();
    REQUIRE(l2 != l1);
    c.isolate(l2);
    c.connect(l1);
    c.set_link(l1, l2, false);
    REQUIRE(c.one(cmd(104), 2));
    c.heal();
    REQUIRE(c.one(cmd(105), 3));
    // cmd-102 was only ever in the deposed leader's log: never committed.
    CHECK(c.n_committed(cmd(102)).first == 0);
    for (node_id i = 1; i <= 3; ++i) CHECK(c.applied(i).size() == c.committed().size());
  }
}

TEST_CASE("a follower 50+ entries behind with a divergent log is repaired in about one round trip per term",
          "[sim][agreement][backtrack]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    REQUIRE(c.one("start", 3));
    const node_id a = *c.leader();
    // A is cut off while leading and piles up 60 entries it cannot commit.
    c.isolate(a);
    for (int k = 0; k < 60; ++k) REQUIRE(c.propose_at(a, "lost-" + std::to_string(k)).ok());
    // The others elect a leader and commit 60 entries of their own, over
    // three terms (leader changes between batches).
    int committed = 0;
    for (int term = 0; term < 3; ++term) {
      for (int k = 0; k < 20; ++k) REQUIRE(c.one("kept-" + std::to_string(committed++), 2));
      const node_id l = *c.leader();
      const node_id other = other_than(c, {a, l});
      c.partition({{a}, {l}, {other}});
      c.run_ticks(1);
      c.partition({{a}, {l, other}});
      // Force a new term among the two.
      c.crash(l);
      c.restart(l);
      REQUIRE(c.wait_leader_among({l, other}, 300));
    }
    REQUIRE(c.node(a).last_index().value >= 60);
    // Count the rejections A sends while it is repaired.
    std::uint64_t rejections = 0, appends_to_a = 0;
    c.on_deliver = [&](const sim::message_type& m) {
      if (const auto* r = std::get_if<raft::append_response>(&m.body); r && m.from == a && !r->success) ++rejections;
      if (std::holds_alternative<raft::append_request<raft::bytes>>(m.body) && m.to == a) ++appends_to_a;
    };
    c.heal();
    REQUIRE(c.one("after", 3));
    c.on_deliver = nullptr;
    // A's log diverges in one term (its own); the leader's has a few terms
    // A lacks. One rejection per divergent term plus one for "too short" and
    // slack for heartbeat probes crossing in flight - far from one per entry.
    INFO("rejections " << rejections << ", appends to A " << appends_to_a);
    CHECK(rejections <= 4);
    CHECK(c.applied(a).size() == c.committed().size());
    for (int k = 0; k < 60; ++k) CHECK(c.n_committed("lost-" + std::to_string(k)).first == 0);
  }
}

TEST_CASE("one agreement in a quiet cluster takes a bounded number of messages", "[sim][agreement][count]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed, .election_ticks = 100, .heartbeat_ticks = 50});
    REQUIRE(c.one("warmup", 3, 1000));
    c.run_ticks(1);
    const node_id l = *c.leader();
    c.reset_stats();
    REQUIRE(c.propose_at(l, "x").ok());
    REQUIRE(c.run_until([&] { return c.n_committed("x").first == 3; }, 20));
    c.run_ticks(1);
    // 2 appends + 2 acks, then 2 commit notices + 2 acks; a heartbeat round may fall inside.
    INFO("messages " << c.stats().sent);
    CHECK(c.stats().sent <= 8 + 4);
  }
}
