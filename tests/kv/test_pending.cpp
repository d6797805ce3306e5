// tests/kv/test_pending.cpp - kv::pending_requests, the rule that decides
// whether a proposed client request was applied (examples/kv/pending.hpp),
// alone and under a real 5-node run in which an entry of an earlier term
// commits after the node that proposed it reused its index in a later term.
#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <raft/raft.hpp>

#include "pending.hpp"

namespace {

using fate = kv::request_fate;
using raft::index_t;
using raft::term_t;

/// Records every decision: client -> fate.
struct decisions {
  std::map<std::uint64_t, fate> got;
  auto sink() {
    return [this](const kv::pending_request& r, fate f) {
      INFO("client " << r.client << " decided twice");
      CHECK(got.count(r.client) == 0);
      got[r.client] = f;
    };
  }
  [[nodiscard]] bool decided(std::uint64_t client) const { return got.count(client) != 0; }
};

kv::pending_request req(std::uint64_t client, std::uint64_t term, std::int64_t deadline = 1000000) {
  return kv::pending_request{client, term_t{term}, deadline, kv::op::put};
}

}  // namespace

TEST_CASE("pending: the entry applied at the index decides by its term", "[kv][pending]") {
  kv::pending_requests p;
  decisions d;
  p.add(index_t{5}, req(1, 2));
  p.add(index_t{5}, req(2, 4));  // the same index reused by a later leader: both wait
  p.add(index_t{6}, req(3, 4));
  CHECK(p.size() == 3);
  CHECK(d.got.empty());
  p.applied(index_t{4}, term_t{2}, d.sink());
  CHECK(d.got.empty());
  p.applied(index_t{5}, term_t{2}, d.sink());  // the term-2 entry committed after all
  CHECK(d.got.at(1) == fate::applied);
  CHECK(d.got.at(2) == fate::not_applied);
  CHECK_FALSE(d.decided(3));  // index 6 of term 4 can still commit
  p.applied(index_t{6}, term_t{4}, d.sink());
  CHECK(d.got.at(3) == fate::applied);
  CHECK(p.empty());
}

TEST_CASE("pending: a later term committed at or before the index decides early", "[kv][pending]") {
  kv::pending_requests p;
  decisions d;
  p.add(index_t{7}, req(1, 2));
  p.add(index_t{9}, req(2, 3));
  p.add(index_t{8}, req(3, 3));
  p.applied(index_t{5}, term_t{2}, d.sink());
  CHECK(d.got.empty());
  // (6, 3) committed: every committed log now holds it, and terms never
  // decrease along a log, so no committed log holds (7, 2).
  p.applied(index_t{6}, term_t{3}, d.sink());
  CHECK(d.got.at(1) == fate::not_applied);
  CHECK_FALSE(d.decided(2));  // term 3 entries after index 6 may still be ours
  CHECK_FALSE(d.decided(3));
  p.applied(index_t{7}, term_t{3}, d.sink());
  p.applied(index_t{8}, term_t{3}, d.sink());
  CHECK(d.got.at(3) == fate::applied);
  p.applied(index_t{9}, term_t{5}, d.sink());
  CHECK(d.got.at(2) == fate::not_applied);
  CHECK(p.empty());
}

TEST_CASE("pending: a snapshot decides what it can and leaves the rest unknown", "[kv][pending]") {
  kv::pending_requests p;
  decisions d;
  p.add(index_t{3}, req(1, 5));   // covered, from a term after the snapshot's: certainly not that entry
  p.add(index_t{3}, req(2, 4));   // covered, could be the entry: unknown
  p.add(index_t{10}, req(3, 3));  // after it, from an earlier term: can no longer commit
  p.add(index_t{10}, req(4, 4));  // after it, same term: keeps waiting
  p.snapshot(index_t{8}, term_t{4}, d.sink());
  CHECK(d.got.at(1) == fate::not_applied);
  CHECK(d.got.at(2) == fate::unknown);
  CHECK(d.got.at(3) == fate::not_applied);
  CHECK_FALSE(d.decided(4));
  p.applied(index_t{9}, term_t{4}, d.sink());
  p.applied(index_t{10}, term_t{4}, d.sink());
  CHECK(d.got.at(4) == fate::applied);
}

TEST_CASE("pending: deadlines and shutdown answer unknown", "[kv][pending]") {
  kv::pending_requests p;
  decisions d;
  p.add(index_t{1}, req(1, 1, 100));
  p.add(index_t{2}, req(2, 1, 200));
  p.add(index_t{2}, req(3, 2, 100));
  p.expire(99, d.sink());
  CHECK(d.got.empty());
  p.expire(100, d.sink());
  CHECK(d.got.at(1) == fate::unknown);
  CHECK(d.got.at(3) == fate::unknown);
  CHECK_FALSE(d.decided(2));
  p.clear(d.sink());
  CHECK(d.got.at(2) == fate::unknown);
  CHECK(p.empty());
}

namespace {

/// Five raft::nodes in one process on a network the test controls message by
/// message; node 1 ("A") is the kv-server whose pending requests we follow.
/// Elections are forced by ticking one node only, so PreVote and leader
/// stickiness (which would rightly refuse them) are off.
class five_nodes {
 public:
  using node = raft::node<>;
  using message = node::message_type;
  /// Whether a message may pass (dropped otherwise).
  std::function<bool(const message&)> link = [](const message&) { return true; };

  five_nodes() {
    for (std::uint64_t id = 1; id <= 5; ++id)
      nodes_.emplace_back(raft::config<std::uint64_t>{
          .id = id, .voters = {1, 2, 3, 4, 5}, .pre_vote = false, .check_quorum = false, .random_seed = 7});
  }

  node& at(std::uint64_t id) { return nodes_[id - 1]; }

  /// Every entry node 1 applies goes to its pending table, as in server.cpp.
  kv::pending_requests pending;
  decisions decided;
  std::vector<node::entry_type> applied_by_a;

  /// Ticks node `id` until it is leader (delivering everything after each tick).
  void elect(std::uint64_t id) {
    for (int i = 0; i < 200 && !at(id).is_leader(); ++i) tick(id);
    REQUIRE(at(id).is_leader());
  }
  void tick(std::uint64_t id, int n = 1) {
    for (int i = 0; i < n; ++i) {
      at(id).tick(out_);
      handle_(id);
      deliver();
    }
  }
  /// Proposes on node 1 and registers the request as server.cpp does.
  raft::propose_result<std::uint64_t> propose_on_a(std::uint64_t client, const std::string& cmd) {
    auto r = at(1).propose(raft::bytes(cmd), out_);
    handle_(1);
    if (r.ok()) pending.add(r.index, kv::pending_request{client, r.term, 1000000, kv::op::put});
    deliver();
    return r;
  }
  void deliver() {
    while (!net_.empty()) {
      message m = std::move(net_.front());
      net_.pop_front();
      if (!link(m)) continue;
      const std::uint64_t to = m.to;
      (void)at(to).step(std::move(m), out_);
      handle_(to);
    }
  }

 private:
  void handle_(std::uint64_t id) {
    for (auto& m : out_.messages) net_.push_back(std::move(m));
    if (id == 1)
      for (const auto& e : out_.committed) {
        applied_by_a.push_back(e);
        pending.applied(e.index, e.term, decided.sink());
      }
    out_.clear();
  }

  std::vector<node> nodes_;
  std::deque<message> net_;
  node::output_type out_;
};

bool is_vote(const five_nodes::message& m) {
  return std::holds_alternative<raft::vote_request>(m.body) || std::holds_alternative<raft::vote_response>(m.body);
}
bool between(const five_nodes::message& m, std::uint64_t a, std::uint64_t b) {
  return (m.from == a && m.to == b) || (m.from == b && m.to == a);
}

}  // namespace

TEST_CASE("pending: with 5 nodes, an entry whose index its leader reused in a later term still commits",
          "[kv][pending][node]") {
  // A=1 B=2 C=3 D=4 E=5. The rule kv-server used to follow - "a request
  // still waiting on an index at which this node proposes again was never
  // committed" - answers X3 below "not applied" at step 3, and X3 commits at
  // step 4.
  five_nodes c;
  constexpr std::uint64_t A = 1, B = 2, C = 3, D = 4, E = 5;
  c.elect(A);
  const term_t t = c.at(A).term();
  REQUIRE(c.propose_on_a(100, "base").ok());
  c.tick(A, 2);
  REQUIRE(c.decided.got.at(100) == fate::applied);
  const index_t k = c.at(A).last_index();

  // 1. Only B hears A: X1..X3 reach A and B, and cannot commit.
  c.link = [&](const auto& m) { return between(m, A, B); };
  const auto x1 = c.propose_on_a(1, "X1");
  const auto x2 = c.propose_on_a(2, "X2");
  const auto x3 = c.propose_on_a(3, "X3");
  REQUIRE((x1.ok() && x2.ok() && x3.ok()));
  CHECK(x3.index == k + 3);
  CHECK(x3.term == t);
  CHECK(c.at(B).last_index() == k + 3);

  // 2. C is elected by D and E (their votes pass, C's appends to them do
  //    not) and its first entry reaches only A: A's log loses X1..X3.
  c.link = [&](const auto& m) {
    return between(m, C, A) || ((between(m, C, D) || between(m, C, E)) && is_vote(m));
  };
  c.elect(C);
  CHECK(c.at(A).last_index() == k + 1);
  CHECK(c.at(A).log().term_at(k + 1) == c.at(C).term());
  CHECK(c.at(D).last_index() == k);
  CHECK(c.at(E).last_index() == k);

  // 3. A is elected again (C, D, E vote; only C gets its entries) and
  //    proposes Y at X3's index, in a later term.
  c.link = [&](const auto& m) {
    return between(m, A, C) || ((between(m, A, D) || between(m, A, E)) && is_vote(m));
  };
  c.elect(A);
  const auto y = c.propose_on_a(4, "Y");
  REQUIRE(y.ok());
  REQUIRE(y.index == x3.index);  // the index is reused...
  CHECK(y.term > x3.term);
  CHECK_FALSE(c.decided.decided(3));  // ...and X3 must not be answered on that
  CHECK(c.pending.size() == 4);

  // 4. The network heals; B, which still holds X1..X3, is elected by D and
  //    E (their logs end before B's, in the same term) and commits them.
  c.link = [](const auto&) { return true; };
  c.elect(B);
  c.tick(B, 3);
  REQUIRE(c.at(A).applied_index() >= x3.index);
  const auto& at_x3 = c.applied_by_a[static_cast<std::size_t>(x3.index.value - 1)];
  CHECK(at_x3.index == x3.index);
  CHECK(at_x3.term == x3.term);
  CHECK(at_x3.data.str() == "X3");
  CHECK(c.decided.got.at(1) == fate::applied);
  CHECK(c.decided.got.at(2) == fate::applied);
  CHECK(c.decided.got.at(3) == fate::applied);      // X3 was applied after all
  CHECK(c.decided.got.at(4) == fate::not_applied);  // and Y was not
  CHECK(c.pending.empty());
}

TEST_CASE("pending: with 3 nodes the old request is answered once the new leader's entry commits",
          "[kv][pending][node]") {
  // On 3 nodes: X1 and X2 reach no one, C is elected with B's vote and its
  // first entry commits at X1's index. A applies it: X1 is "not applied" (its
  // index holds another term) and so is X2 (a later term committed before
  // its index) - decided by what commits, not by A proposing again.
  using node = raft::node<>;
  std::vector<node> n;
  for (std::uint64_t id = 1; id <= 3; ++id)
    n.emplace_back(raft::config<std::uint64_t>{
        .id = id, .voters = {1, 2, 3}, .pre_vote = false, .check_quorum = false, .random_seed = 9});
  std::deque<node::message_type> net;
  node::output_type out;
  kv::pending_requests pending;
  decisions d;
  std::function<bool(const node::message_type&)> link = [](const auto&) { return true; };
  auto handle = [&](std::uint64_t id) {
    for (auto& m : out.messages) net.push_back(std::move(m));
    if (id == 1)
      for (const auto& e : out.committed) pending.applied(e.index, e.term, d.sink());
    out.clear();
  };
  auto deliver = [&] {
    while (!net.empty()) {
      auto m = std::move(net.front());
      net.pop_front();
      if (!link(m)) continue;
      const auto to = m.to;
      (void)n[to - 1].step(std::move(m), out);
      handle(to);
    }
  };
  auto elect = [&](std::uint64_t id) {
    for (int i = 0; i < 200 && !n[id - 1].is_leader(); ++i) {
      n[id - 1].tick(out);
      handle(id);
      deliver();
    }
    REQUIRE(n[id - 1].is_leader());
  };
  auto propose = [&](std::uint64_t client, const char* cmd) {
    auto r = n[0].propose(raft::bytes(cmd), out);
    handle(1);
    if (r.ok()) pending.add(r.index, kv::pending_request{client, r.term, 1000000, kv::op::put});
    deliver();
    return r;
  };
  elect(1);
  link = [](const auto&) { return false; };
  const auto x1 = propose(1, "X1");
  const auto x2 = propose(2, "X2");
  REQUIRE((x1.ok() && x2.ok()));
  link = [](const auto& m) { return m.from != 1 && m.to != 1; };
  elect(3);  // C, with B's vote; its first entry takes X1's index on B and C
  link = [](const auto&) { return true; };
  for (int i = 0; i < 3; ++i) {  // C's heartbeats bring A in line: X1, X2 gone from A's log
    n[2].tick(out);
    handle(3);
    deliver();
  }
  CHECK(d.got.at(1) == fate::not_applied);  // C's entry at X1's index committed
  CHECK(d.got.at(2) == fate::not_applied);  // and it has a later term than X2, after it
  CHECK(pending.empty());
}
