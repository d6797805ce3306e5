// Leader election in the simulator (paper §5.2; the 6.824 2A scenarios).
#include <catch2/catch.hpp>

#include "sim/cluster.hpp"
#include "sim/seeds.hpp"

using sim::cluster;
using sim::node_id;

namespace {
std::vector<node_id> all_but(std::size_t n, std::vector<node_id> except) {
  std::vector<node_id> r;
  for (node_id i = 1; i <= n; ++i)
    if (std::find(except.begin(), except.end(), i) == except.end()) r.push_back(i);
  return r;
}
}  // namespace

TEST_CASE("an initial election produces exactly one leader, which keeps its term while all is well", "[sim][election]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    auto l = c.wait_leader(60);
    REQUIRE(l);
    // Everyone agrees on the term and on who leads it.
    c.run_ticks(5);
    const auto term = c.node(*l).term();
    for (node_id i = 1; i <= 3; ++i) {
      CHECK(c.node(i).term() == term);
      REQUIRE(c.node(i).leader());
      CHECK(*c.node(i).leader() == *l);
    }
    // With a healthy network, heartbeats keep the leader in place: no new terms.
    c.run_ticks(100);
    CHECK(c.node(*l).is_leader());
    CHECK(c.node(*l).term() == term);
    CHECK(c.leaders_by_term().size() == 1);
  }
}

TEST_CASE("a new leader is elected when the leader is cut off, and the old one steps down on rejoining",
          "[sim][election]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    auto l1 = c.wait_leader();
    REQUIRE(l1);
    c.isolate(*l1);
    auto l2 = c.wait_leader_among(all_but(3, {*l1}));
    REQUIRE(l2);
    CHECK(*l2 != *l1);
    CHECK(c.node(*l2).term() > c.node(*l1).term());

    // The old leader rejoins: it learns the newer term and follows.
    c.connect(*l1);
    REQUIRE(c.run_until([&] { return !c.node(*l1).is_leader(); }, 50));
    auto l = c.wait_leader();
    REQUIRE(l);
    CHECK(c.leaders_by_term().rbegin()->second == 1);

    // No quorum: no leader among the remaining node.
    const node_id other = all_but(3, {*l})[0];
    c.isolate(*l);
    c.isolate(other);
    const node_id last = all_but(3, {*l, other})[0];
    c.run_ticks(100);
    CHECK(c.leaders_among({last}).empty());
    CHECK(c.leaders_among({other}).empty());

    // A majority again: a leader again.
    c.connect(other);
    c.set_link(other, *l, false);
    auto l3 = c.wait_leader_among({other, last});
    REQUIRE(l3);
    c.heal();
    REQUIRE(c.wait_leader());
  }
}

TEST_CASE("no leader is elected without a majority, and one is once a majority returns", "[sim][election]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 5, .seed = seed});
    REQUIRE(c.wait_leader());
    // Cut everyone off from everyone: 5 minorities of one.
    c.partition({{1}, {2}, {3}, {4}, {5}});
    c.run_ticks(30);  // any old leader is still "leader" of its old term, cut off
    std::map<node_id, raft::term_t> old_leaders;
    for (node_id i = 1; i <= 5; ++i)
      if (c.node(i).is_leader()) old_leaders[i] = c.node(i).term();
    c.run_ticks(200);
    for (node_id i = 1; i <= 5; ++i) {
      if (!c.node(i).is_leader()) continue;
      // Only a leader from before the partition may still believe it leads.
      REQUIRE(old_leaders.count(i) == 1);
      CHECK(c.node(i).term() == old_leaders[i]);
    }
    // Three nodes reconnect: a majority, so a new leader among them.
    c.partition({{1, 2, 3}, {4}, {5}});
    auto l = c.wait_leader_among({1, 2, 3}, 300);
    REQUIRE(l);
    CHECK(c.leaders_among({1, 2, 3}).size() >= 1);
    c.heal();
    REQUIRE(c.converge());
  }
}

TEST_CASE("many elections under random disconnections keep at most one leader per term", "[sim][election]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 7, .seed = seed});
    REQUIRE(c.wait_leader());
    for (int iter = 0; iter < 10; ++iter) {
      // Disconnect three random nodes; four remain, a majority of seven.
      std::vector<node_id> out;
      while (out.size() < 3) {
        node_id r = 1 + c.rand(7);
        if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
      }
      for (auto r : out) c.isolate(r);
      auto rest = all_but(7, out);
      // The four connected nodes must (re)establish a leader of their own.
      std::vector<std::vector<node_id>> groups{rest};
      for (auto r : out) groups.push_back({r});
      c.partition(groups);
      auto l = c.wait_leader_among(rest, 300);
      REQUIRE(l);
      for (auto r : out) c.connect(r);
      c.heal();
    }
    // The checker verified Election Safety after every event; end on a quiet cluster.
    REQUIRE(c.converge());
  }
}

TEST_CASE("an election in a quiet cluster takes a bounded number of messages", "[sim][election][count]") {
  for (auto seed : sim::seeds(10)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed, .election_ticks = 50, .heartbeat_ticks = 25});
    auto l = c.wait_leader(200);
    REQUIRE(l);
    // One candidate: 2 requests + 2 votes; at worst a split vote or two.
    const auto votes = c.stats().by_type.count("vote_request") ? c.stats().by_type.at("vote_request") : 0;
    CHECK(votes <= 6);
    CHECK(c.stats().sent <= 30);
  }
}
