// PreVote, CheckQuorum and leader stickiness, leadership transfer, ReadIndex
// and leases, back-pressure, forwarding, status() and the trace hook: each
// rule driven message by message through a small in-process network.
#include <catch2/catch.hpp>

#include <raft/raft.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <vector>

using raft::index_t;
using raft::term_t;
using nid = std::uint64_t;

namespace {

struct recorder {
  static constexpr bool enabled = true;
  std::vector<raft::trace_event<nid>>* events = nullptr;
  void operator()(const raft::trace_event<nid>& e) const {
    if (events != nullptr) events->push_back(e);
  }
};

using node = raft::node<raft::default_transport, raft::memory_log<>, raft::tick_clock, raft::default_random, recorder>;
using out_t = node::output_type;
using msg = node::message_type;

raft::config<nid> base_cfg(nid id, std::vector<nid> voters) {
  return raft::config<nid>{.id = id, .voters = std::move(voters), .election_ticks = 10, .heartbeat_ticks = 1};
}

/// N nodes, messages queued and delivered on request; links can be cut.
struct net {
  std::vector<node> nodes;  // nodes[i - 1] has id i
  std::vector<out_t> outs;
  std::deque<msg> wire;
  std::set<std::pair<nid, nid>> cut;
  std::vector<raft::trace_event<nid>> events;
  std::map<nid, std::vector<raft::read_state>> reads;
  std::map<nid, std::vector<std::uint64_t>> failed;
  std::map<nid, std::vector<raft::transfer_event<nid>>> transfers;
  std::map<nid, std::vector<std::string>> applied;
  std::function<bool(const msg&)> drop;  // true: lose it

  explicit net(std::size_t n, const std::function<void(raft::config<nid>&)>& tweak = {}) {
    std::vector<nid> ids;
    for (nid i = 1; i <= n; ++i) ids.push_back(i);
    nodes.reserve(n);
    for (nid i = 1; i <= n; ++i) {
      auto c = base_cfg(i, ids);
      c.random_seed = 7;
      if (tweak) tweak(c);
      nodes.emplace_back(c, raft::memory_log<>{}, raft::tick_clock{}, raft::default_random{},
                         recorder{i == 1 ? &events : nullptr});
    }
    outs.resize(n);
  }
  node& at(nid i) { return nodes[i - 1]; }
  out_t& out(nid i) { return outs[i - 1]; }

  /// Moves node i's output out: messages to the wire, the rest recorded.
  void collect(nid i) {
    auto& o = out(i);
    for (const auto& e : o.committed) applied[i].push_back(std::string(e.data.view()));
    for (auto& m : o.messages) wire.push_back(m);
    for (auto r : o.reads) reads[i].push_back(r);
    for (auto f : o.failed_reads) failed[i].push_back(f);
    for (auto t : o.transfers) transfers[i].push_back(t);
    o.clear();
  }
  void collect_all() {
    for (nid i = 1; i <= nodes.size(); ++i) collect(i);
  }
  /// Delivers queued messages until none are left (or `limit`).
  void deliver(std::size_t limit = 100000) {
    collect_all();
    while (!wire.empty() && limit-- > 0) {
      msg m = std::move(wire.front());
      wire.pop_front();
      if (cut.count({m.from, m.to}) || (drop && drop(m))) continue;
      (void)at(m.to).step(std::move(m), out(m.to));
      collect(m.to);
    }
  }
  void tick(nid i) {
    at(i).tick(out(i));
    collect(i);
  }
  void tick_all(int n = 1) {
    for (int k = 0; k < n; ++k) {
      for (nid i = 1; i <= nodes.size(); ++i) tick(i);
      deliver();
    }
  }
  void isolate(nid i) {
    for (nid j = 1; j <= nodes.size(); ++j)
      if (j != i) cut.insert({i, j}), cut.insert({j, i});
  }
  void heal() { cut.clear(); }
  void elect(nid i) {
    at(i).campaign(out(i));
    deliver();
    REQUIRE(at(i).is_leader());
    tick_all(1);  // the no-op commits everywhere
  }
};

}  // namespace

// ------------------------------------------------------------------- PreVote

TEST_CASE("PreVote: a node that cannot win never raises its term (thesis 9.6)", "[liveness][prevote]") {
  net n(3);
  n.elect(1);
  const term_t t = n.at(1).term();
  n.isolate(3);
  for (int k = 0; k < 300; ++k) n.tick_all();
  CHECK(n.at(3).term() == t);  // without PreVote it climbs by one per timeout
  CHECK(n.at(3).role() == raft::role::pre_candidate);
  n.heal();
  n.tick_all(3);
  CHECK(n.at(1).is_leader());
  CHECK(n.at(1).term() == t);
  CHECK(n.at(3).leader() == std::optional<nid>(1));
}

TEST_CASE("Without PreVote the same cut-off node climbs and deposes the leader on return", "[liveness][prevote]") {
  net n(3, [](auto& c) {
    c.pre_vote = false;
    c.check_quorum = false;
  });
  n.elect(1);
  const term_t t = n.at(1).term();
  n.isolate(3);
  for (int k = 0; k < 300; ++k) n.tick_all();
  CHECK(n.at(3).term() > t);
  n.heal();
  n.tick_all(3);
  CHECK(n.at(1).term() > t);  // the contrast that makes the test above meaningful
}

TEST_CASE("A pre-vote request changes nothing at the receiver: no write, no term, no timer", "[liveness][prevote]") {
  node f(base_cfg(2, {1, 2, 3}));
  out_t out;
  for (int k = 0; k < 5; ++k) f.tick(out);
  out.clear();
  auto twin = base_cfg(2, {1, 2, 3});
  node g(twin);
  for (int k = 0; k < 5; ++k) g.tick(out);
  out.clear();
  REQUIRE(f.step(msg{3, 2, term_t{1}, raft::pre_vote_request{index_t{0}, term_t{0}}}, out) == raft::step_status::ok);
  CHECK(!out.persist);
  CHECK(f.term() == term_t{0});
  CHECK(!f.voted_for());
  auto sent = std::vector<msg>(out.messages);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].term == term_t{1});  // a grant answers in the term asked about
  CHECK(std::get<raft::pre_vote_response>(sent[0].body).granted);
  out.clear();
  // The timer did not restart: f times out on the same tick as its twin.
  int tf = 0, tg = 0;
  for (int k = 1; k <= 40 && (tf == 0 || tg == 0); ++k) {
    f.tick(out);
    if (tf == 0 && f.role() != raft::role::follower) tf = k;
    out.clear();
    g.tick(out);
    if (tg == 0 && g.role() != raft::role::follower) tg = k;
    out.clear();
  }
  CHECK(tf == tg);
  CHECK(tf > 0);
}

TEST_CASE("A pre-vote is refused to a stale log, and by a node that hears from a leader", "[liveness][prevote]") {
  net n(3);
  n.elect(1);
  out_t out;
  // Node 2 hears from leader 1: it refuses, in its own term.
  REQUIRE(n.at(2).step(msg{3, 2, n.at(2).term().next(), raft::pre_vote_request{index_t{100}, n.at(2).term()}}, out) ==
          raft::step_status::leader_active);  // check_quorum's stickiness ignores it altogether
  out.clear();
  net m(3, [](auto& c) { c.check_quorum = false; });
  m.elect(1);
  REQUIRE(m.at(2).step(msg{3, 2, m.at(2).term().next(), raft::pre_vote_request{index_t{100}, m.at(2).term()}}, out) ==
          raft::step_status::ok);
  auto sent = std::vector<msg>(out.messages);
  REQUIRE(sent.size() == 1);
  CHECK(!std::get<raft::pre_vote_response>(sent[0].body).granted);
  CHECK(sent[0].term == m.at(2).term());
  out.clear();
  // A fresh node with a longer log refuses a shorter one.
  node f(base_cfg(2, {1, 2, 3}));
  REQUIRE(f.step(msg{1, 2, term_t{1}, raft::append_request<raft::bytes>{index_t{0}, term_t{0}, index_t{0},
                                                                       {{term_t{1}, index_t{1}}}}},
                 out) == raft::step_status::ok);
  out.clear();
  for (int k = 0; k < 25; ++k) f.tick(out);  // long enough not to hear from a leader
  out.clear();
  REQUIRE(f.step(msg{3, 2, term_t{2}, raft::pre_vote_request{index_t{0}, term_t{0}}}, out) == raft::step_status::ok);
  bool refused = false;
  for (const auto& m2 : out.messages)
    if (auto* r = std::get_if<raft::pre_vote_response>(&m2.body); r != nullptr && m2.to == 3) refused = !r->granted;
  CHECK(refused);
}

// ---------------------------------------------------- CheckQuorum, stickiness

TEST_CASE("CheckQuorum: a leader cut off from its quorum steps down within an election timeout (thesis 6.2)",
          "[liveness][checkquorum]") {
  net n(3);
  n.elect(1);
  REQUIRE(n.at(1).read_index(42, n.out(1)) == raft::read_status::ok);
  n.isolate(1);
  int ticks = 0;
  while (n.at(1).is_leader() && ticks < 100) {
    n.tick(1);
    n.deliver();
    ++ticks;
  }
  CHECK(!n.at(1).is_leader());
  CHECK(ticks <= 10 + 1);  // one election timeout after it last heard from its quorum
  CHECK(n.failed[1] == std::vector<std::uint64_t>{42});  // its client gets a definite answer
  CHECK(n.reads[1].empty());
  bool traced = false;
  for (const auto& e : n.events) traced = traced || e.kind == raft::trace_kind::quorum_lost;
  CHECK(traced);
}

TEST_CASE("CheckQuorum: a leader that hears from its quorum keeps leading", "[liveness][checkquorum]") {
  net n(5);
  n.elect(1);
  n.isolate(5);
  n.isolate(4);
  n.cut.erase({4, 1});  // 4 still hears 1 but 1 hears from 2 and 3 only: a quorum
  n.cut.erase({1, 4});
  for (int k = 0; k < 100; ++k) n.tick_all();
  CHECK(n.at(1).is_leader());
  // Without check_quorum a leader never steps down on its own.
  net m(3, [](auto& c) { c.check_quorum = false; });
  m.elect(1);
  m.isolate(1);
  for (int k = 0; k < 100; ++k) {
    m.tick(1);
    m.deliver();
  }
  CHECK(m.at(1).is_leader());
}

TEST_CASE("Leader stickiness: a node that hears from a leader ignores a newer term's vote request (thesis 4.2.3)",
          "[liveness][checkquorum]") {
  net n(3);
  n.elect(1);
  const term_t t = n.at(2).term();
  out_t out;
  CHECK(n.at(2).step(msg{3, 2, t.next(), raft::vote_request{index_t{100}, t, false}}, out) ==
        raft::step_status::leader_active);
  CHECK(n.at(2).term() == t);  // not even adopted
  CHECK(out.messages.empty());
  // A transfer's election is answered (and granted: the log is up to date).
  CHECK(n.at(2).step(msg{3, 2, t.next(), raft::vote_request{index_t{100}, t, true}}, out) == raft::step_status::ok);
  CHECK(n.at(2).term() == t.next());
  CHECK(n.at(2).voted_for() == std::optional<nid>(3));
  // Once the leader is silent for an election timeout, requests count again.
  net m(3);
  m.elect(1);
  m.isolate(1);
  for (int k = 0; k < 10; ++k) m.tick(2);
  m.collect_all();
  out.clear();
  CHECK(m.at(2).step(msg{3, 2, m.at(2).term().next(), raft::vote_request{index_t{100}, m.at(2).term(), false}}, out) ==
        raft::step_status::ok);
}

// --------------------------------------------------- leadership transfer

TEST_CASE("Leadership transfer to an up-to-date follower: TimeoutNow, then it leads (thesis 3.10)",
          "[liveness][transfer]") {
  net n(3);
  n.elect(1);
  const term_t t = n.at(1).term();
  REQUIRE(n.at(1).transfer_leadership(2, n.out(1)) == raft::transfer_status::started);
  CHECK(n.at(1).propose(raft::bytes("x"), n.out(1)).status == raft::propose_status::transferring);
  CHECK(n.at(1).transfer_leadership(2, n.out(1)) == raft::transfer_status::in_progress);
  n.deliver();
  CHECK(n.at(2).is_leader());
  CHECK(n.at(2).term() == t.next());
  n.tick_all(2);
  REQUIRE(n.transfers[1].size() == 2);
  CHECK(n.transfers[1][0] == raft::transfer_event<nid>{2, raft::transfer_outcome::started});
  CHECK(n.transfers[1][1] == raft::transfer_event<nid>{2, raft::transfer_outcome::succeeded});
  CHECK(n.at(1).leader() == std::optional<nid>(2));
}

TEST_CASE("Leadership transfer to a lagging follower brings it up to date first", "[liveness][transfer]") {
  net n(3);
  n.elect(1);
  n.cut.insert({1, 3});
  for (int k = 0; k < 20; ++k) REQUIRE(n.at(1).propose(raft::bytes("e"), n.out(1)).ok());
  n.deliver();
  REQUIRE(n.at(3).last_index() < n.at(1).last_index());
  n.heal();
  REQUIRE(n.at(1).transfer_leadership(3, n.out(1)) == raft::transfer_status::started);
  // No TimeoutNow may leave before 3 holds the whole log.
  bool early = false;
  n.drop = [&](const msg& m) {
    if (std::holds_alternative<raft::timeout_now>(m.body)) early = early || n.at(3).last_index() < n.at(1).last_index();
    return false;
  };
  for (int k = 0; k < 30 && !n.at(3).is_leader(); ++k) n.tick_all();
  CHECK(!early);
  CHECK(n.at(3).is_leader());
  CHECK(n.applied[3].size() >= 21);
}

TEST_CASE("Leadership transfer to a follower that needs a snapshot: TimeoutNow once it is installed",
          "[liveness][transfer]") {
  net n(3);
  n.elect(1);
  n.isolate(3);
  for (int k = 0; k < 5; ++k) REQUIRE(n.at(1).propose(raft::bytes("s"), n.out(1)).ok());
  n.tick_all(2);
  REQUIRE(n.at(1).compact(n.at(1).applied_index(), raft::bytes("image"), n.out(1)) == raft::compact_status::ok);
  n.collect(1);
  n.heal();
  REQUIRE(n.at(1).transfer_leadership(3, n.out(1)) == raft::transfer_status::started);
  for (int k = 0; k < 10 && !n.at(3).is_leader(); ++k) n.tick_all();
  CHECK(n.at(3).is_leader());
  CHECK(n.at(3).log().snapshot_index() == index_t{6});
}

TEST_CASE("A transfer to an unreachable target aborts after an election timeout; proposals resume",
          "[liveness][transfer]") {
  net n(3);
  n.elect(1);
  n.cut.insert({1, 3});
  n.cut.insert({3, 1});
  REQUIRE(n.at(1).transfer_leadership(3, n.out(1)) == raft::transfer_status::started);
  for (int k = 0; k < 10; ++k) {
    n.tick(1);
    n.deliver();
  }
  REQUIRE(n.transfers[1].size() == 2);
  CHECK(n.transfers[1][1] == raft::transfer_event<nid>{3, raft::transfer_outcome::aborted});
  CHECK(n.at(1).is_leader());
  CHECK(n.at(1).propose(raft::bytes("x"), n.out(1)).ok());
  // Misuse gets clear results.
  CHECK(n.at(1).transfer_leadership(1, n.out(1)) == raft::transfer_status::is_self);
  CHECK(n.at(1).transfer_leadership(9, n.out(1)) == raft::transfer_status::unknown_target);
  CHECK(n.at(2).transfer_leadership(3, n.out(2)) == raft::transfer_status::not_leader);
}

// ----------------------------------------------------------------- ReadIndex

TEST_CASE("ReadIndex: a read waits for the term's first commit and one heartbeat round (thesis 6.4)",
          "[liveness][reads]") {
  net n(3);
  n.at(1).campaign(n.out(1));
  n.deliver(/*limit*/ 0);
  // Win the election, but hold every AppendEntries answer back.
  std::vector<msg> held;
  n.drop = [&](const msg& m) {
    if (std::holds_alternative<raft::append_response>(m.body)) {
      held.push_back(m);
      return true;
    }
    return false;
  };
  n.deliver();
  REQUIRE(n.at(1).is_leader());
  REQUIRE(n.at(1).commit_index() == index_t{0});  // the no-op is not committed yet
  REQUIRE(n.at(1).read_index(7, n.out(1)) == raft::read_status::ok);
  n.deliver();
  CHECK(n.reads[1].empty());  // no commit in this term yet
  n.drop = {};
  for (auto& m : held) n.wire.push_back(m);
  held.clear();
  n.deliver();
  n.tick_all(2);
  REQUIRE(n.reads[1].size() == 1);
  CHECK(n.reads[1][0].id == 7);
  CHECK(n.reads[1][0].index == n.at(1).commit_index());
  // Many reads share one round: two reads in one output, one set of heartbeats.
  REQUIRE(n.at(1).read_index(8, n.out(1)) == raft::read_status::ok);
  auto first = std::vector<msg>(n.out(1).messages);
  n.out(1).messages.clear();
  REQUIRE(n.at(1).read_index(9, n.out(1)) == raft::read_status::ok);
  for (auto& m : first) n.wire.push_back(m);
  std::size_t appends = 0;
  for (const auto& m : std::vector<msg>(n.out(1).messages)) appends += m.from == 1 ? 1 : 0;
  CHECK(first.size() == 2);
  CHECK(appends == 0);  // the second read waits for the round in flight to finish, then the next
  n.deliver();
  n.tick_all(1);
  CHECK(n.reads[1].size() == 3);
}

TEST_CASE("ReadIndex: a leader that cannot reach a quorum never answers a read", "[liveness][reads]") {
  net n(3, [](auto& c) { c.check_quorum = false; });
  n.elect(1);
  n.isolate(1);
  REQUIRE(n.at(1).read_index(1, n.out(1)) == raft::read_status::ok);
  for (int k = 0; k < 50; ++k) {
    n.tick(1);
    n.deliver();
  }
  CHECK(n.reads[1].empty());
}

TEST_CASE("ReadIndex from a follower: the leader confirms, the follower answers once applied", "[liveness][reads]") {
  net n(3);
  n.elect(1);
  n.cut.insert({1, 3});  // 3 does not even get the entries
  for (int k = 0; k < 3; ++k) REQUIRE(n.at(1).propose(raft::bytes("w"), n.out(1)).ok());
  n.deliver();
  REQUIRE(n.at(1).commit_index() == index_t{4});  // written and acknowledged before the read begins
  n.heal();
  REQUIRE(n.at(3).commit_index() < index_t{4});
  REQUIRE(n.at(3).read_index(5, n.out(3)) == raft::read_status::ok);
  n.deliver();
  n.tick_all(2);
  REQUIRE(n.reads[3].size() == 1);
  CHECK(n.reads[3][0].index >= index_t{4});
  CHECK(n.at(3).applied_index() >= n.reads[3][0].index);
  // A follower that knows no leader says so.
  node lone(base_cfg(2, {1, 2, 3}));
  out_t out;
  CHECK(lone.read_index(1, out) == raft::read_status::no_leader);
  CHECK(lone.read_index(1, out, raft::read_mode::lease) == raft::read_status::lease_disabled);
}

TEST_CASE("A follower asks again for a read whose request or answer was lost", "[liveness][reads]") {
  net n(3);
  n.elect(1);
  int lost = 0;
  n.drop = [&](const msg& m) {
    if (std::holds_alternative<raft::read_index_request>(m.body) && lost == 0) return ++lost, true;
    if (std::holds_alternative<raft::read_index_response>(m.body) && lost == 1) return ++lost, true;
    return false;
  };
  REQUIRE(n.at(3).read_index(21, n.out(3)) == raft::read_status::ok);
  n.deliver();
  for (int k = 0; k < 25 && n.reads[3].empty(); ++k) n.tick_all();
  CHECK(lost == 2);  // the request, then the answer to the second one
  REQUIRE(n.reads[3].size() == 1);
  CHECK(n.reads[3][0].id == 21);
  CHECK(n.at(1).is_leader());
  CHECK(n.at(1).status().pending_reads == 0);
}

TEST_CASE("A follower's pending reads fail when its leader changes", "[liveness][reads]") {
  net n(3);
  n.elect(1);
  n.cut.insert({3, 1});  // the request is lost
  REQUIRE(n.at(3).read_index(11, n.out(3)) == raft::read_status::ok);
  n.deliver();
  n.heal();
  REQUIRE(n.at(1).transfer_leadership(2, n.out(1)) == raft::transfer_status::started);
  n.tick_all(3);
  REQUIRE(n.at(2).is_leader());
  CHECK(n.failed[3] == std::vector<std::uint64_t>{11});
}

TEST_CASE("A single-node cluster answers a read at once", "[liveness][reads]") {
  node solo(base_cfg(1, {1}));
  out_t out;
  solo.campaign(out);
  REQUIRE(solo.is_leader());
  out.clear();
  REQUIRE(solo.read_index(3, out) == raft::read_status::ok);
  REQUIRE(out.reads.size() == 1);
  CHECK(out.reads[0] == raft::read_state{3, solo.commit_index()});
}

TEST_CASE("Lease reads: answered at once while a quorum's acknowledgements are fresh, not after (thesis 6.4.1)",
          "[liveness][reads][lease]") {
  net n(3, [](auto& c) { c.lease_reads = true; });
  for (int k = 0; k < 10; ++k) n.tick_all();  // a node refuses votes for election_ticks after it starts
  n.elect(1);
  n.tick_all(2);
  REQUIRE(n.at(1).lease_valid());
  REQUIRE(n.at(1).read_index(1, n.out(1), raft::read_mode::lease) == raft::read_status::ok);
  CHECK(n.out(1).reads.size() == 1);  // in the same output: no round trip
  CHECK(n.out(1).messages.empty());
  n.collect_all();
  // Cut off: the lease runs out after election_ticks - drift ticks at most.
  n.isolate(1);
  int valid_for = 0;
  while (n.at(1).lease_valid() && valid_for < 100) {
    n.tick(1);
    n.deliver();
    ++valid_for;
  }
  CHECK(valid_for <= 10 - 2);
  REQUIRE(n.at(1).is_leader());
  REQUIRE(n.at(1).read_index(2, n.out(1), raft::read_mode::lease) == raft::read_status::ok);
  CHECK(n.out(1).reads.empty());  // falls back to a round, which cannot complete
  // A lease is never valid during a transfer.
  net m(3, [](auto& c) { c.lease_reads = true; });
  for (int k = 0; k < 10; ++k) m.tick_all();
  m.elect(1);
  m.tick_all(2);
  REQUIRE(m.at(1).lease_valid());
  m.cut.insert({1, 3});  // 3 misses the next entry: no TimeoutNow can go to it
  REQUIRE(m.at(1).propose(raft::bytes("x"), m.out(1)).ok());
  m.tick_all(2);
  REQUIRE(m.at(1).transfer_leadership(3, m.out(1)) == raft::transfer_status::started);
  CHECK(!m.at(1).lease_valid());
  m.tick_all(12);  // the target is unreachable: the transfer aborts
  REQUIRE(m.transfers[1].back().outcome == raft::transfer_outcome::aborted);
  CHECK(m.at(1).lease_valid());  // no TimeoutNow left: the lease is back
  // Once a TimeoutNow left, the lease stays off for the term even if the
  // transfer aborts: that message may still arrive, late, and start an
  // election that ignores stickiness.
  m.heal();
  bool lost = false;
  m.drop = [&](const msg& mm) {
    const bool t = std::holds_alternative<raft::timeout_now>(mm.body);
    lost = lost || t;
    return t;
  };
  REQUIRE(m.at(1).transfer_leadership(2, m.out(1)) == raft::transfer_status::started);
  m.tick_all(12);
  REQUIRE(lost);
  REQUIRE(m.transfers[1].back().outcome == raft::transfer_outcome::aborted);
  REQUIRE(m.at(1).is_leader());
  CHECK(!m.at(1).lease_valid());
}

TEST_CASE("With leases, a restarted node refuses votes for an election timeout", "[liveness][reads][lease]") {
  auto c = base_cfg(2, {1, 2, 3});
  c.lease_reads = true;
  node f(c);
  out_t out;
  CHECK(f.step(msg{3, 2, term_t{1}, raft::vote_request{index_t{0}, term_t{0}, false}}, out) ==
        raft::step_status::leader_active);
  for (int k = 0; k < 10; ++k) f.tick(out);
  out.clear();
  CHECK(f.step(msg{3, 2, term_t{1}, raft::vote_request{index_t{0}, term_t{0}, false}}, out) == raft::step_status::ok);
  auto c2 = base_cfg(1, {1});
  c2.lease_reads = true;
  c2.check_quorum = false;
  CHECK(c2.validate().has_value());  // leases need check_quorum
}

// ------------------------------------------------------------- back-pressure

TEST_CASE("Back-pressure: beyond max_uncommitted_bytes proposals are dropped, a batch all or nothing",
          "[liveness][backpressure]") {
  net n(3, [](auto& c) { c.max_uncommitted_bytes = 10; });
  n.elect(1);
  n.isolate(1);
  CHECK(n.at(1).propose(raft::bytes("123456"), n.out(1)).ok());
  CHECK(n.at(1).propose(raft::bytes("1234"), n.out(1)).ok());  // exactly 10
  const index_t last = n.at(1).last_index();
  CHECK(n.at(1).propose(raft::bytes("1"), n.out(1)).status == raft::propose_status::dropped);
  std::vector<raft::bytes> batch{raft::bytes("a"), raft::bytes("b")};
  CHECK(n.at(1).propose_batch(batch, n.out(1)).status == raft::propose_status::dropped);
  CHECK(n.at(1).last_index() == last);  // nothing of the batch was appended
  CHECK(n.at(1).status().uncommitted_bytes == 10);
  n.heal();
  n.tick_all(3);
  CHECK(n.at(1).status().uncommitted_bytes == 0);
  CHECK(n.at(1).propose_batch(batch, n.out(1)).ok());
  // One oversized proposal is taken when nothing is uncommitted.
  n.tick_all(3);
  CHECK(n.at(1).propose(raft::bytes(std::string(100, 'x')), n.out(1)).ok());
}

TEST_CASE("Flow control in bytes: at most max_inflight_bytes in flight to a follower", "[liveness][backpressure]") {
  net n(3, [](auto& c) {
    c.max_inflight_bytes = 100;
    c.max_append_bytes = 40;
  });
  n.elect(1);
  n.cut.insert({2, 1});  // acknowledgements from 2 are lost
  n.cut.insert({3, 1});
  std::uint64_t sent_to_2 = 0;
  n.drop = [&](const msg& m) {
    if (const auto* a = std::get_if<raft::append_request<raft::bytes>>(&m.body); a != nullptr && m.to == 2)
      for (const auto& e : a->entries) sent_to_2 += e.data.size();
    return false;
  };
  for (int k = 0; k < 50; ++k) {
    REQUIRE(n.at(1).propose(raft::bytes(std::string(20, 'p')), n.out(1)).ok());
    n.deliver();
  }
  CHECK(sent_to_2 >= 100);
  CHECK(sent_to_2 <= 100 + 40);  // the last message may go over
  const auto st = n.at(1).status();
  REQUIRE(st.peers.size() == 2);
  CHECK(st.peers[0].inflight_bytes >= 100);
}

// --------------------------------------------------------------- forwarding

TEST_CASE("Proposal forwarding: a follower sends the command to the leader, which appends it",
          "[liveness][forwarding]") {
  net n(3, [](auto& c) { c.forward_proposals = true; });
  n.elect(1);
  const auto r = n.at(2).propose(raft::bytes("fwd"), n.out(2));
  CHECK(r.status == raft::propose_status::forwarded);
  CHECK(r.leader == std::optional<nid>(1));
  n.deliver();
  n.tick_all(2);
  CHECK(std::count(n.applied[3].begin(), n.applied[3].end(), "fwd") == 1);
  // Without forwarding: the leader hint, as before.
  net m(3);
  m.elect(1);
  const auto r2 = m.at(2).propose(raft::bytes("x"), m.out(2));
  CHECK(r2.status == raft::propose_status::not_leader);
  CHECK(r2.leader == std::optional<nid>(1));
  // A forwarded proposal reaching a non-leader is dropped.
  out_t out;
  raft::forward_proposal<raft::bytes> f;
  f.commands.push_back(raft::bytes("y"));
  CHECK(m.at(3).step(msg{2, 3, m.at(3).term(), f}, out) == raft::step_status::dropped);
}

// ------------------------------------------------------ reports, snapshots

TEST_CASE("report_unreachable stops streaming to a peer; report_snapshot(false) resends at once",
          "[liveness][reports]") {
  net n(3);
  n.elect(1);
  REQUIRE(n.at(1).progress_of(2)->state == raft::replication_state::replicate);
  n.at(1).report_unreachable(2, n.out(1));
  CHECK(n.at(1).progress_of(2)->state == raft::replication_state::probe);
  n.collect(1);
  REQUIRE(n.at(1).propose(raft::bytes("x"), n.out(1)).ok());
  std::size_t to2 = 0;
  for (const auto& m : std::vector<msg>(n.out(1).messages)) to2 += m.to == 2 ? 1 : 0;
  CHECK(to2 == 0);  // nothing streams until the next heartbeat's probe
}

TEST_CASE("A follower that refuses a snapshot as too large is not sent it again at every heartbeat",
          "[liveness][reports]") {
  net n(3, [](auto& c) {
    c.snapshot_chunk_bytes = 4;
    c.max_snapshot_bytes = 64;
    c.max_snapshot_chunk_bytes = 8;
  });
  n.elect(1);
  n.isolate(3);
  for (int k = 0; k < 5; ++k) REQUIRE(n.at(1).propose(raft::bytes("c"), n.out(1)).ok());
  n.tick_all(2);
  REQUIRE(n.at(1).compact(n.at(1).applied_index(), raft::bytes(std::string(100, 's')), n.out(1)) ==
          raft::compact_status::ok);  // 100 bytes: node 3 accepts at most 64
  n.heal();
  std::size_t offers = 0;
  n.drop = [&](const msg& m) {
    const auto* is = std::get_if<raft::install_snapshot>(&m.body);
    offers += is != nullptr && is->offset == 0 ? 1 : 0;
    return false;
  };
  for (int k = 0; k < 40; ++k) n.tick_all();
  CHECK(offers >= 2);
  CHECK(offers <= 3);  // at 0, then after 10 and 20 more heartbeats (was: every heartbeat)
  CHECK(n.at(1).is_leader());
  CHECK(n.at(3).leader() == std::optional<nid>(1));  // it still hears heartbeats meanwhile
}

// ---------------------------------------------------------- status and trace

TEST_CASE("status() reports role, term, indexes and every peer's progress", "[liveness][status]") {
  net n(3);
  n.elect(1);
  REQUIRE(n.at(1).propose(raft::bytes("x"), n.out(1)).ok());
  n.tick_all(2);
  const auto s = n.at(1).status();
  CHECK(s.role == raft::role::leader);
  CHECK(s.leader == std::optional<nid>(1));
  CHECK(s.commit == n.at(1).commit_index());
  CHECK(s.last_index == index_t{2});
  REQUIRE(s.peers.size() == 2);
  std::set<nid> ids;
  for (const auto& p : s.peers) {
    ids.insert(p.id);
    CHECK(p.match == index_t{2});
    CHECK(p.state == raft::replication_state::replicate);
  }
  CHECK(ids == std::set<nid>{2, 3});
  const auto f = n.at(2).status();
  CHECK(f.role == raft::role::follower);
  CHECK(f.peers.empty());
  CHECK(f.leader == std::optional<nid>(1));
}

TEST_CASE("The trace hook sees elections, role changes and transfers; an untraced node pays nothing",
          "[liveness][trace]") {
  net n(3);
  n.elect(1);
  REQUIRE(n.at(1).transfer_leadership(2, n.out(1)) == raft::transfer_status::started);
  n.tick_all(3);
  std::vector<raft::trace_kind> kinds;
  for (const auto& e : n.events) kinds.push_back(e.kind);
  auto has = [&](raft::trace_kind k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
  CHECK(has(raft::trace_kind::pre_vote_started));
  CHECK(has(raft::trace_kind::election_started));
  CHECK(has(raft::trace_kind::became_leader));
  CHECK(has(raft::trace_kind::transfer_started));
  CHECK(has(raft::trace_kind::timeout_now_sent));
  CHECK(has(raft::trace_kind::became_follower));
  CHECK(has(raft::trace_kind::vote_granted));
  CHECK(has(raft::trace_kind::transfer_succeeded));
  static_assert(std::is_empty_v<raft::no_trace>);
  static_assert(!raft::no_trace::enabled);
}
