// Membership changes in the simulator (thesis §4): growing and shrinking
// under load, replacing a dead server, removing the leader, a removed server
// that keeps campaigning, joint consensus across crashes and partitions,
// witnesses, and misuse. Every scenario runs with the cluster's safety checks
// after each event (tests/sim/cluster.hpp: Election Safety across every node
// ever started, Log Matching, Leader Completeness and State Machine Safety
// over the non-witnesses, the witness invariant, config entries that decode
// alike, configuration() = newest config in the log) and, where clients
// write and read, the linearizability check of tests/sim/history.hpp.
#include <catch2/catch.hpp>

#include "sim/cluster.hpp"
#include "sim/seeds.hpp"

#include <set>

using raft::change_status;
using raft::change_type;
using raft::index_t;
using raft::term_t;
using raft::transition;
using sim::cluster;
using sim::node_id;

namespace {
using membership = cluster::membership_type;
using conf_change = cluster::conf_change_type;
using change = raft::member_change<node_id>;

change add_voter(node_id id) { return {change_type::add_voter, id}; }
change add_learner(node_id id) { return {change_type::add_learner, id}; }
change add_witness(node_id id) { return {change_type::add_witness, id}; }
change remove(node_id id) { return {change_type::remove, id}; }

conf_change cc(std::vector<change> changes, transition how = transition::automatic) {
  return conf_change{std::move(changes), how, {}};
}

/// A non-joint membership.
membership conf(std::vector<node_id> voters, std::vector<node_id> learners = {}, std::vector<node_id> witnesses = {}) {
  membership m;
  m.voters = std::move(voters);
  m.learners = std::move(learners);
  m.witnesses = std::move(witnesses);
  return m;
}

std::string cmd(std::uint64_t k) { return "cmd-" + std::to_string(k); }

/// Client load: every tick one write at the leader and, every other tick, a
/// ReadIndex read at a random live node (checked linearizable by the
/// cluster). Runs `ticks` ticks.
struct load {
  cluster& c;
  std::uint64_t next = 0;
  void run(std::uint64_t ticks) {
    for (std::uint64_t t = 0; t < ticks; ++t) {
      if (auto l = c.leader()) (void)c.propose_at(*l, "load-" + std::to_string(next++));
      if (t % 2 == 0) {
        const node_id at = 1 + c.rand(c.size());
        if (c.up(at)) (void)c.read_at(at);
      }
      c.run_ticks(1);
    }
  }
  /// Runs under load until `pred` holds or `max_ticks` pass.
  bool until(const std::function<bool()>& pred, std::uint64_t max_ticks) {
    for (std::uint64_t t = 0; t < max_ticks; ++t) {
      if (pred()) return true;
      run(1);
    }
    return pred();
  }
};

/// Asks the leader for `change` until it is accepted (the previous change
/// must commit, and a new leader must commit an entry of its term first:
/// change_pending / not_ready are retried), under load.
cluster::change_result_type change_under_load(load& ld, const conf_change& change, std::uint64_t max_ticks = 400) {
  cluster::change_result_type r{change_status::not_leader, {}, {}, {}};
  ld.until(
      [&] {
        const auto l = ld.c.leader();
        if (!l) return false;
        r = ld.c.change_at(*l, change);
        return r.status != change_status::not_leader && r.status != change_status::change_pending &&
               r.status != change_status::not_ready && r.status != change_status::transferring;
      },
      max_ticks);
  return r;
}

/// The leader reports `peer` at most `max_lag` entries behind.
bool caught_up(const cluster& c, node_id peer, std::uint64_t max_lag) {
  const auto g = c.lag(peer);
  return g && *g <= max_lag;
}

/// Every node of `ids` is up and uses `m`.
bool everyone_uses(cluster& c, const membership& m, const std::vector<node_id>& ids) {
  for (auto id : ids)
    if (!c.up(id) || !(c.node(id).configuration() == m)) return false;
  return true;
}

/// The highest commit index of the live nodes among `ids`.
index_t max_commit(cluster& c, const std::vector<node_id>& ids) {
  index_t m;
  for (auto id : ids)
    if (c.up(id)) m = raft::max(m, c.node(id).commit_index());
  return m;
}
}  // namespace

// ---------------------------------------------------------------- growing

namespace {
/// 3 -> 5 under load: 4 and 5 join as learners (thesis §4.2.1: a new server
/// first catches up without a vote, so it does not stall commitment), are
/// promoted once the leader reports them caught up (status().peers[].lag),
/// either one at a time (two single-server changes, thesis §4.1) or together
/// (one joint change, thesis §4.3). Then two of the original servers crash
/// and the other three (one original, both new) still commit: the new
/// servers really vote.
void grow_3_to_5(std::uint64_t seed, bool joint) {
  cluster c({.nodes = 3, .seed = seed});
  load ld{c};
  REQUIRE(c.one(cmd(0), 3));
  ld.run(10);
  c.add_node(4);
  c.add_node(5);
  // Brand-new nodes know no membership and never campaign.
  CHECK(c.node(4).configuration().voters.empty());
  auto r = change_under_load(ld, cc({add_learner(4), add_learner(5)}));
  REQUIRE(r.ok());
  CHECK_FALSE(c.node(*c.leader()).configuration().joint());  // no voter changes: applied directly
  REQUIRE(ld.until([&] { return c.committed_configuration() == conf({1, 2, 3}, {4, 5}); }, 200));
  // The learners are tracked as such and catch up.
  const auto p4 = c.peer_status(4);
  REQUIRE(p4);
  CHECK(p4->learner);
  CHECK_FALSE(p4->witness);
  REQUIRE(ld.until([&] { return caught_up(c, 4, 2) && caught_up(c, 5, 2); }, 300));
  CHECK(c.node(4).configuration() == conf({1, 2, 3}, {4, 5}));
  CHECK(c.node(4).role() == raft::role::follower);
  const auto before = c.node(*c.leader()).commit_index();

  if (!joint) {
    REQUIRE(change_under_load(ld, cc({add_voter(4)})).ok());
    CHECK_FALSE(c.node(*c.leader()).configuration().joint());
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf({1, 2, 3, 4}, {5}); }, 200));
    REQUIRE(change_under_load(ld, cc({add_voter(5)})).ok());
  } else {
    r = change_under_load(ld, cc({add_voter(4), add_voter(5)}));
    REQUIRE(r.ok());
    // Two voters at once: a joint configuration, left automatically.
    const auto& m = c.node(*c.leader()).configuration();
    CHECK(m.joint());
    CHECK(m.auto_leave);
    CHECK(m.voters_outgoing.size() == 3);
    CHECK(m.voters.size() == 5);
  }
  REQUIRE(ld.until([&] { return c.committed_configuration() == conf({1, 2, 3, 4, 5}); }, 300));
  CHECK(c.node(*c.leader()).commit_index() > before);  // the writes went on meanwhile
  REQUIRE(c.wait_applied_everywhere(conf({1, 2, 3, 4, 5})));
  for (node_id i = 1; i <= 5; ++i) {
    const auto p = c.peer_status(i);
    if (p) CHECK_FALSE(p->learner);
  }

  // Two of the original servers go; the remaining three are a majority of 5.
  const node_id keep = *c.leader();
  std::vector<node_id> gone;
  for (node_id i = 1; i <= 3 && gone.size() < 2; ++i)
    if (i != keep) gone.push_back(i);
  if (keep > 3) gone = {1, 2};
  for (auto g : gone) c.crash(g);
  REQUIRE(c.one("after-grow", 3, 600));
  CHECK(c.n_committed("after-grow").first >= 3);
  for (auto g : gone) c.restart(g);
  REQUIRE(c.converge_members());
  CHECK(c.hist().reads_ok() > 0);
  CHECK(c.configs_committed() >= (joint ? 3u : 3u));
}
}  // namespace

TEST_CASE("membership: grow 3 to 5 under load, learners first, promoted by two single-server changes",
          "[sim][membership]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    grow_3_to_5(seed, false);
  }
}

TEST_CASE("membership: grow 3 to 5 under load, learners first, promoted together by one joint change",
          "[sim][membership]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    grow_3_to_5(seed, true);
  }
}

// --------------------------------------------------------------- shrinking

TEST_CASE("membership: shrink 5 to 3 under load, then two of the three commit without the removed servers",
          "[sim][membership]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 5, .seed = seed});
    load ld{c};
    REQUIRE(c.one(cmd(0), 5));
    ld.run(10);
    // Remove two followers, one change at a time (thesis §4.1).
    const node_id l = *c.leader();
    std::vector<node_id> out, stay;
    for (node_id i = 5; i >= 1; --i)
      if (i != l && out.size() < 2) out.push_back(i);
      else stay.push_back(i);
    std::sort(stay.begin(), stay.end());
    auto r = change_under_load(ld, cc({remove(out[0])}));
    REQUIRE(r.ok());
    std::vector<node_id> four;
    for (node_id i = 1; i <= 5; ++i)
      if (i != out[0]) four.push_back(i);
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf(four); }, 200));
    REQUIRE(change_under_load(ld, cc({remove(out[1])})).ok());
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf(stay); }, 200));
    REQUIRE(c.wait_applied_everywhere(conf(stay)));
    // The removed servers were sent the log until their removal committed:
    // they know they are out (and so never campaign).
    CHECK(c.run_until(
        [&] {
          return !c.node(out[0]).configuration().contains(out[0]) && !c.node(out[1]).configuration().contains(out[1]);
        },
        50));
    // The leader no longer tracks them (it drops them one election timeout
    // after their removal committed, having told them).
    c.run_ticks(11);
    CHECK_FALSE(c.peer_status(out[0]));
    CHECK_FALSE(c.peer_status(out[1]));
    // The removed servers stop; one of the three crashes: the two left are
    // a majority of the new configuration (not of the old one).
    c.stop(out[0]);
    c.stop(out[1]);
    const node_id victim = stay[0] == *c.leader() ? stay[1] : stay[0];
    c.crash(victim);
    REQUIRE(c.one("after-shrink", 2, 600));
    c.restart(victim);
    ld.run(20);
    REQUIRE(c.converge_members());
    CHECK(c.hist().reads_ok() > 0);
    CHECK(c.hist().writes_ok() > 0);
  }
}

// -------------------------------------------------- replacing a dead server

TEST_CASE("membership: replace a crashed server (add learner, catch up by snapshot, promote, remove the dead one) "
          "while clients write",
          "[sim][membership]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    // Compaction is on, so the newcomer catches up through a snapshot, which
    // carries the membership.
    cluster c({.nodes = 3, .seed = seed, .snapshot_every = 15, .snapshot_padding = 100});
    load ld{c};
    REQUIRE(c.one(cmd(0), 3));
    ld.run(30);
    node_id dead = *c.leader() % 3 + 1;
    c.stop(dead);  // gone for good
    ld.run(30);
    REQUIRE(c.node(*c.leader()).log().snapshot_index() > index_t{});
    c.add_node(4);
    REQUIRE(change_under_load(ld, cc({add_learner(4)})).ok());
    std::vector<node_id> voters = {1, 2, 3};
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf(voters, {4}); }, 200));
    REQUIRE(ld.until([&] { return caught_up(c, 4, 2); }, 300));
    CHECK(c.node(4).log().snapshot_index() > index_t{});  // it got a snapshot
    CHECK(c.node(4).configuration() == conf(voters, {4}));
    // Promote: 4 voters, 3 of them alive, quorum 3.
    REQUIRE(change_under_load(ld, cc({add_voter(4)})).ok());
    voters.push_back(4);
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf(voters); }, 200));
    // Remove the dead one.
    REQUIRE(change_under_load(ld, cc({remove(dead)})).ok());
    voters.erase(std::find(voters.begin(), voters.end(), dead));
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf(voters); }, 200));
    REQUIRE(c.wait_applied_everywhere(conf(voters)));
    // Any one of the three may now fail.
    const node_id victim = voters[c.rand(3)];
    c.crash(victim);
    REQUIRE(c.one("after-replace", 2, 600));
    c.restart(victim);
    REQUIRE(c.converge_members());
    CHECK(c.applied(4).size() == c.committed().size());
    CHECK(c.hist().reads_ok() > 0);
  }
}

// ------------------------------------------------------- removing the leader

TEST_CASE("membership: the leader removes itself; it leads until the change commits, then steps down and one "
          "of the rest leads; nothing committed is lost",
          "[sim][membership]") {
  for (auto seed : sim::seeds(8)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = seed % 2 == 0 ? 5u : 3u, .seed = seed});
    const auto n = c.size();
    load ld{c};
    REQUIRE(c.one(cmd(0), static_cast<int>(n)));
    ld.run(10);
    const node_id old = *c.leader();
    const term_t t = c.node(old).term();
    const auto r = change_under_load(ld, cc({remove(old)}));
    REQUIRE(r.ok());
    REQUIRE(c.leader() == old);
    // Thesis §4.2.2: the leader manages the cluster (without counting itself)
    // until the entry that removes it commits.
    REQUIRE(c.node(old).configuration_index() == r.index);
    CHECK_FALSE(c.node(old).configuration().contains(old));
    // When it steps down (at its first tick once the entry is committed) it
    // hands over with TimeoutNow to a remaining voter that holds its whole
    // log (thesis §3.10, §4.2.2).
    std::optional<node_id> heir;
    c.on_send = [&](const sim::message_type& m) {
      if (m.from == old && std::holds_alternative<raft::timeout_now>(m.body)) heir = m.to;
    };
    bool led_until_commit = true;
    REQUIRE(c.run_units_until(
        [&] {
          if (c.node(old).commit_index() >= r.index) return true;
          led_until_commit = led_until_commit && c.node(old).is_leader() && c.node(old).term() == t;
          return false;
        },
        400));
    CHECK(led_until_commit);
    REQUIRE(c.run_until([&] { return !c.node(old).is_leader(); }, 2));
    c.on_send = nullptr;
    REQUIRE(heir);
    CHECK(*heir != old);
    CHECK(c.node(*heir).configuration().is_voter(*heir));
    std::vector<node_id> rest;
    for (node_id i = 1; i <= n; ++i)
      if (i != old) rest.push_back(i);
    const auto t0 = c.ticks();
    const auto nl = c.wait_leader_among(rest, 100);
    REQUIRE(nl);
    INFO("new leader " << *nl << " after " << (c.ticks() - t0) << " ticks");
    CHECK(c.ticks() - t0 <= 5);  // TimeoutNow: no election timeout to wait for
    CHECK(c.node(*nl).term() > t);
    // The old leader is out and stays out (it never campaigns: the checker
    // fails any non-member that does).
    ld.run(40);
    CHECK_FALSE(c.node(old).is_leader());
    CHECK_FALSE(c.node(old).configuration().contains(old));
    REQUIRE(c.one("after-remove-leader", static_cast<int>(n) - 1, 400));
    // Every entry committed before is on the new leader (Leader Completeness
    // is checked all along; here: the first command too).
    const auto idx = c.n_committed(cmd(0)).second;
    REQUIRE(c.node(*c.leader()).log().first_index() <= idx);
    CHECK(c.node(*c.leader()).log().entry_at(idx).data.str() == cmd(0));
    CHECK(c.hist().writes_ok() > 0);
  }
}

// ------------------------------------------- a removed server that campaigns

namespace {
/// Node x is cut off, then removed (it never hears of it); after a while it
/// comes back and campaigns (its configuration still lists it as a voter).
/// With CheckQuorum's leader stickiness (thesis §4.2.3) and PreVote (thesis
/// §9.6) the cluster's leader and term are not disturbed, and x never leads.
void removed_server_campaigns(std::uint64_t seed, bool pre_vote) {
  cluster c({.nodes = 5, .seed = seed, .pre_vote = pre_vote});
  load ld{c};
  REQUIRE(c.one(cmd(0), 5));
  const node_id l = *c.leader();
  const node_id x = l % 5 + 1;
  c.isolate(x);
  REQUIRE(change_under_load(ld, cc({remove(x)})).ok());
  std::vector<node_id> rest;
  for (node_id i = 1; i <= 5; ++i)
    if (i != x) rest.push_back(i);
  REQUIRE(ld.until([&] { return c.committed_configuration() == conf(rest); }, 200));
  CHECK(c.node(x).configuration().contains(x));  // it never learned
  ld.run(60);  // several election timeouts cut off: it campaigns in vain
  const node_id leader = *c.leader();
  const term_t term = c.node(leader).term();
  c.connect(x);
  bool steady = true;
  for (int t = 0; t < 150; ++t) {
    ld.run(1);
    steady = steady && c.leader() == leader && c.node(leader).term() == term && c.node(leader).is_leader();
    REQUIRE_FALSE(c.node(x).is_leader());
  }
  INFO("x = " << x << ", its term " << c.node(x).term().value << ", cluster term " << term.value);
  CHECK(steady);
  CHECK(c.leader() == leader);
  CHECK(c.node(leader).term() == term);
  for (auto i : rest) CHECK(c.node(i).term() == term);
  // The cluster carries on with its writes and reads.
  REQUIRE(c.one_members("after-rejoin"));
  CHECK(c.hist().reads_ok() > 0);
}
}  // namespace

TEST_CASE("membership: a removed server that never learned it keeps campaigning; the leader and term of the rest "
          "are not disturbed (PreVote and CheckQuorum, the defaults)",
          "[sim][membership]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    removed_server_campaigns(seed, true);
  }
}

TEST_CASE("membership: a removed server campaigning with higher terms (no PreVote) is ignored thanks to "
          "CheckQuorum's leader stickiness",
          "[sim][membership]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    removed_server_campaigns(seed, false);
  }
}

// -------------------------------------------------- joint consensus, faults

namespace {
/// 1,2,3 voters; 4,5 caught-up learners. Returns the cluster ready for the
/// joint change {1,2,3} -> {3,4,5}.
void setup_learners(cluster& c, load& ld) {
  REQUIRE(c.one(cmd(0), 3));
  c.add_node(4);
  c.add_node(5);
  REQUIRE(change_under_load(ld, cc({add_learner(4), add_learner(5)})).ok());
  REQUIRE(ld.until([&] { return c.committed_configuration() == conf({1, 2, 3}, {4, 5}); }, 200));
  REQUIRE(ld.until([&] { return caught_up(c, 4, 1) && caught_up(c, 5, 1); }, 300));
}

/// The change replacing two of {1,2,3} by 4 and 5, keeping `keep`.
conf_change swap_change(node_id keep, transition how) {
  std::vector<change> ch;
  for (node_id i = 1; i <= 3; ++i)
    if (i != keep) ch.push_back(remove(i));
  ch.push_back(add_voter(4));
  ch.push_back(add_voter(5));
  return cc(ch, how);
}

/// Heals, restarts everyone, leaves a joint configuration if one is left
/// (explicit), and checks that every node ends in one non-joint
/// configuration, which is `a` or `b`.
membership finish(cluster& c, const membership& a, const membership& b) {
  c.heal();
  for (node_id i = 1; i <= c.size(); ++i) c.restart(i);
  membership final_conf;
  const bool ok = c.run_until(
      [&] {
        const auto l = c.leader();
        if (!l) return false;
        const auto& m = c.node(*l).configuration();
        if (m.joint() && !m.auto_leave && c.node(*l).configuration_index() <= c.node(*l).commit_index())
          (void)c.leave_joint_at(*l);
        const auto cm = c.committed_configuration();
        if (!cm || cm->joint()) return false;
        final_conf = *cm;
        return true;
      },
      1500);
  REQUIRE(ok);
  CHECK((final_conf == a || final_conf == b));
  // Every member ends in that configuration and applied it. (A removed node
  // that was down when its removal committed may never learn it.)
  REQUIRE(c.one_members("finish-" + std::to_string(c.now())));
  REQUIRE(c.wait_applied_everywhere(final_conf, 600));
  CHECK(c.run_until([&] { return everyone_uses(c, final_conf, final_conf.members()); }, 100));
  return final_conf;
}
}  // namespace

TEST_CASE("membership: the leader crashes right after appending a joint entry; the cluster ends in one non-joint "
          "configuration, old or new",
          "[sim][membership][joint]") {
  int old_kept = 0, new_reached = 0;
  for (auto seed : sim::seeds(12)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 3, .seed = seed});
    load ld{c};
    setup_learners(c, ld);
    ld.run(5);
    const node_id l = *c.leader();
    const node_id keep = l % 3 + 1;  // a follower stays in the new configuration
    const auto how = seed % 3 == 0 ? transition::joint_explicit : transition::joint;
    const auto r = c.change_at(l, swap_change(keep, how));
    REQUIRE(r.ok());
    REQUIRE(c.node(l).configuration().joint());
    // The joint entry reaches nobody (l is cut off at once: its messages in
    // flight are lost), or l crashes after 0..5 units: some or all.
    if (seed % 3 == 1) c.isolate(l);
    else c.run_units_until([] { return false; }, c.rand(6));
    c.crash(l);
    ld.run(40);
    c.restart(l);
    c.connect(l);
    const membership old_conf = conf({1, 2, 3}, {4, 5});
    const membership new_conf = conf({keep, 4, 5});
    const auto m = finish(c, old_conf, new_conf);
    (m == old_conf ? old_kept : new_reached) += 1;
    REQUIRE(c.converge_members());
  }
  WARN("leader crashed after the joint entry: " << old_kept << " seeds kept the old configuration, " << new_reached
                                                << " reached the new one");
  if (!std::getenv("RAFT_SIM_SEED")) CHECK(old_kept + new_reached == 12);
}

TEST_CASE("membership: a partition between the old and the new majority during a joint change lets neither side "
          "commit or elect; after healing one non-joint configuration wins",
          "[sim][membership][joint]") {
  for (auto seed : sim::seeds(8)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 3, .seed = seed});
    load ld{c};
    setup_learners(c, ld);
    const node_id l = *c.leader();
    const node_id keep = l % 3 + 1;
    node_id other = 1;
    while (other == l || other == keep) ++other;
    // Joint {1,2,3} & {keep,4,5}. The partition splits it at once, before any
    // message leaves: {l, other} is a majority of the old voters only,
    // {keep, 4, 5} one of the new voters only.
    REQUIRE(c.change_at(l, swap_change(keep, transition::joint)).ok());
    const index_t joint_at = c.node(l).configuration_index();
    c.partition({{l, other}, {keep, 4, 5}});
    const std::vector<node_id> all = {1, 2, 3, 4, 5};
    const index_t commit_before = max_commit(c, all);
    const term_t term_before = c.node(l).term();
    std::set<node_id> leaders;
    for (int t = 0; t < 100; ++t) {
      ld.run(1);
      for (node_id i : all)
        if (c.node(i).is_leader() && c.node(i).term() > term_before) leaders.insert(i);
    }
    // Thesis §4.3: in C_old,new every decision needs both majorities.
    CHECK(max_commit(c, all) == commit_before);
    CHECK(leaders.empty());
    CHECK(c.node(l).commit_index() < joint_at);
    // Heal: the joint entry commits, then the leader leaves it.
    const auto m = finish(c, conf({1, 2, 3}, {4, 5}), conf({keep, 4, 5}));
    CHECK(m == conf({keep, 4, 5}));  // the entry survived on l (the only copy), and l holds the longest log
    REQUIRE(c.converge_members());
  }
}

TEST_CASE("membership: partitions and crashes at random moments of a joint change (both transitions): safety "
          "holds and one non-joint configuration wins",
          "[sim][membership][joint]") {
  for (auto seed : sim::seeds(20)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 3, .seed = seed, .max_delay = 6, .drop = 0.05});
    load ld{c};
    setup_learners(c, ld);
    const node_id l = *c.leader();
    const node_id keep = 1 + c.rand(3);
    const auto how = c.rand(2) ? transition::joint_explicit : transition::joint;
    REQUIRE(c.change_at(l, swap_change(keep, how)).ok());
    for (int round = 0; round < 6; ++round) {
      ld.run(c.rand(12));
      switch (c.rand(5)) {
        case 0: c.partition({{1, 2}, {3, 4, 5}}); break;
        case 1: c.partition({{1, 4}, {2, 3, 5}}); break;
        case 2: if (auto x = c.leader()) c.crash(*x); break;
        case 3: c.crash(1 + c.rand(5)); break;
        default: c.heal(); for (node_id i = 1; i <= 5; ++i) c.restart(i);
      }
      // An explicit joint configuration is left on request, sometimes mid-faults.
      if (auto x = c.leader(); x && c.rand(3) == 0) (void)c.leave_joint_at(*x);
    }
    c.calm_network();
    const auto m = finish(c, conf({1, 2, 3}, {4, 5}), conf({keep, 4, 5}));
    INFO("final voters " << m.voters.size());
    REQUIRE(c.converge_members());
  }
}

TEST_CASE("membership: an explicit joint configuration survives a leader crash and stays joint until the new "
          "leader is asked to leave it",
          "[sim][membership][joint]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 3, .seed = seed});
    load ld{c};
    setup_learners(c, ld);
    const node_id l = *c.leader();
    const node_id keep = l % 3 + 1;
    const auto r = c.change_at(l, swap_change(keep, transition::joint_explicit));
    REQUIRE(r.ok());
    REQUIRE(ld.until([&] { return c.node(l).commit_index() >= r.index; }, 100));
    const membership joint = c.node(l).configuration();
    REQUIRE(joint.joint());
    CHECK_FALSE(joint.auto_leave);
    c.crash(l);  // l is leaving; it may not even come back
    // A new leader needs both majorities: keep plus the other old voter, and
    // two of {keep, 4, 5}.
    const auto nl = c.wait_leader(200);
    REQUIRE(nl);
    CHECK(*nl != l);
    ld.run(30);
    // Nobody leaves on its own.
    CHECK(c.node(*c.leader()).configuration() == joint);
    // Misuse while joint: a further change is refused.
    CHECK(c.change_at(*c.leader(), cc({remove(4)})).status == change_status::in_joint);
    REQUIRE(ld.until(
        [&] {
          const auto x = c.leader();
          return x && c.leave_joint_at(*x).ok();
        },
        100));
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf({keep, 4, 5}); }, 200));
    CHECK(c.leave_joint_at(*c.leader()).status == change_status::not_joint);
    // l comes back with the joint configuration in its log (it was down
    // when its removal committed, so nobody sends it the log any more): it
    // still thinks it votes, and may campaign, without disturbing anyone.
    const node_id leader = *c.leader();
    const term_t term = c.node(leader).term();
    c.restart(l);
    ld.run(60);
    CHECK(c.leader() == leader);
    CHECK(c.node(leader).term() == term);
    CHECK_FALSE(c.node(l).is_leader());
    REQUIRE(c.converge_members());
  }
}

// ------------------------------------------------------------------ witnesses

TEST_CASE("membership: witnesses in a 3-node cluster: either full node may crash and the other with the witness "
          "commits; the witness holds no payloads and never leads",
          "[sim][membership][witness]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 3, .seed = seed, .snapshot_every = 12, .witnesses = {3}});
    load ld{c};
    // What reaches the witness: entries without payloads, snapshots without data.
    std::uint64_t stripped = 0, full = 0, snapshot_chunks = 0;
    c.on_deliver = [&](const sim::message_type& m) {
      if (m.to != 3) return;
      if (const auto* a = std::get_if<raft::append_request<raft::bytes>>(&m.body)) {
        for (const auto& e : a->entries)
          if (e.kind == raft::entry_kind::command) ++(e.data.empty() ? stripped : full);
      } else if (const auto* s = std::get_if<raft::install_snapshot>(&m.body)) {
        ++snapshot_chunks;
        CHECK(s->data.empty());
        CHECK(s->total_size == 0);
        CHECK_FALSE(s->membership.empty());
      }
    };
    REQUIRE(c.one(cmd(0), 3));
    REQUIRE(c.witness(3));
    CHECK(c.node(3).configuration().is_witness(3));
    for (node_id f : {1, 2}) {
      c.crash(f);
      REQUIRE(c.one("without-" + std::to_string(f), 2, 600));
      const auto l = c.leader();
      REQUIRE(l);
      CHECK(*l != 3);
      CHECK(*l != f);
      ld.run(20);
      c.restart(f);
      REQUIRE(c.one("with-" + std::to_string(f), 3, 600));
    }
    // The witness holds terms and indexes, no payloads (the checker verifies
    // every entry and snapshot it holds); the leader marks it a witness.
    const auto p = c.peer_status(3);
    REQUIRE(p);
    CHECK(p->witness);
    CHECK_FALSE(p->learner);
    // The witness falls behind the leader's compaction: it gets a snapshot.
    c.crash(3);
    ld.run(40);
    c.restart(3);
    REQUIRE(ld.until([&] { return caught_up(c, 3, 1); }, 200));
    CHECK(snapshot_chunks > 0);
    CHECK(stripped > 0);
    CHECK(full == 0);
    CHECK(c.node(3).log().snapshot_data().empty());
    // A witness never campaigns, even when asked to.
    c.campaign(3);
    CHECK_FALSE(c.node(3).is_leader());
    CHECK(c.node(3).role() == raft::role::follower);
    REQUIRE(c.converge_members());
  }
}

TEST_CASE("membership: witness, entries committed by the leader and the witness alone survive the leader's crash; "
          "the other full node cannot be elected without them",
          "[sim][membership][witness]") {
  for (auto seed : sim::seeds(8)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 3, .seed = seed, .witnesses = {3}});
    REQUIRE(c.one(cmd(0), 3));
    const node_id l = *c.leader();
    const node_id f = l == 1 ? 2 : 1;
    c.crash(f);
    // Committed by l + the witness only.
    std::vector<index_t> at;
    for (int k = 1; k <= 5; ++k) {
      const auto idx = c.one(cmd(k), 2);
      REQUIRE(idx);
      at.push_back(*idx);
    }
    REQUIRE(c.leader() == l);
    CHECK(c.node(3).commit_index() >= at.back());  // the witness knows they are committed...
    CHECK(c.node(3).log().entry_at(at.back()).data.empty());  // ...without holding them
    // l, the only full copy, crashes. f comes back: it lacks the entries, and
    // the witness (which holds their terms and indexes) refuses it its vote
    // (paper §5.4.1): no leader.
    c.crash(l);
    c.run_ticks(1);  // what l had in flight is lost (f is still down)
    c.restart(f);
    for (int t = 0; t < 100; ++t) {
      c.run_ticks(1);
      REQUIRE_FALSE(c.node(f).is_leader());
    }
    CHECK(c.node(f).last_index() < at.back());
    CHECK_FALSE(c.leader());
    // l returns: it is elected (the witness votes for it) and f gets everything.
    c.restart(l);
    REQUIRE(c.one("after-return", 3, 600));
    REQUIRE(c.run_until([&] { return c.applied(f).size() >= at.back().value; }, 100));
    for (int k = 1; k <= 5; ++k) {
      const auto& e = c.applied(f)[at[static_cast<std::size_t>(k - 1)].value - 1];
      CHECK(e.data.str() == cmd(static_cast<std::uint64_t>(k)));
    }
    CHECK(c.leader() != node_id{3});
  }
}

TEST_CASE("membership: 5 nodes with 2 witnesses under crashes: whatever 3 voters are up with a full node among them "
          "commit, nothing committed is lost",
          "[sim][membership][witness]") {
  for (auto seed : sim::seeds(6)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 5, .seed = seed, .snapshot_every = seed % 2 == 0 ? 20u : 0u, .witnesses = {4, 5}});
    load ld{c};
    REQUIRE(c.one(cmd(0), 5));
    int progressed = 0;
    for (int round = 0; round < 12; ++round) {
      // Crash two random nodes, keeping at least one full node up.
      std::vector<node_id> down;
      while (down.size() < 2) {
        const node_id x = 1 + c.rand(5);
        if (std::find(down.begin(), down.end(), x) == down.end()) down.push_back(x);
      }
      bool full_up = false;
      for (node_id i = 1; i <= 3; ++i) full_up = full_up || std::find(down.begin(), down.end(), i) == down.end();
      if (!full_up) continue;
      // Everyone holds the same log first: a full node that lacks entries the
      // witnesses hold cannot be elected (paper §5.4.1), rightly.
      c.run_ticks(5);
      REQUIRE(c.run_until([&] { return c.all_applied_everything(); }, 200));
      for (auto x : down) c.crash(x);
      const auto idx = c.one("round-" + std::to_string(round), 3, 600);
      REQUIRE(idx);  // three voters, one of them full: a leader and a quorum
      ++progressed;
      ld.run(c.rand(10));
      for (auto x : down) c.restart(x);
      ld.run(c.rand(10));
    }
    CHECK(progressed > 0);
    REQUIRE(c.converge_members());
    for (node_id i = 1; i <= 5; ++i) CHECK(c.applied(i).size() == c.committed().size());
  }
}

TEST_CASE("membership: a witness added at run time gets payload-free entries and snapshots, votes, and is removed "
          "again",
          "[sim][membership][witness]") {
  for (auto seed : sim::seeds(5)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    cluster c({.nodes = 2, .seed = seed, .snapshot_every = 10, .snapshot_padding = 50});
    load ld{c};
    REQUIRE(c.one(cmd(0), 2));
    ld.run(40);  // compacted: the witness starts from a (payload-free) snapshot
    c.add_node(3);
    REQUIRE(change_under_load(ld, cc({add_witness(3)})).ok());
    REQUIRE(c.witness(3));
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf({1, 2, 3}, {}, {3}); }, 200));
    REQUIRE(ld.until([&] { return caught_up(c, 3, 1); }, 200));
    CHECK(c.node(3).log().snapshot_index() > index_t{});
    CHECK(c.node(3).log().snapshot_data().empty());
    // Now one full node may crash.
    const node_id f = *c.leader() == 1 ? 2 : 1;
    c.crash(f);
    REQUIRE(c.one("witness-votes", 2, 600));
    c.restart(f);
    REQUIRE(c.one_members("all-back"));
    // Removing the witness: back to two full voters.
    REQUIRE(change_under_load(ld, cc({remove(3)})).ok());
    REQUIRE(ld.until([&] { return c.committed_configuration() == conf({1, 2}); }, 200));
    c.stop(3);
    REQUIRE(c.converge_members());
  }
}

// ---------------------------------------------------------------------- misuse

TEST_CASE("membership misuse at the cluster level: change at a follower, a second change while one is pending, "
          "transfer to a witness, invalid changes",
          "[sim][membership][misuse]") {
  cluster c({.nodes = 4, .seed = 77, .witnesses = {4}});
  REQUIRE(c.one(cmd(0), 4));
  const node_id l = *c.leader();
  const node_id f = l % 3 + 1;
  // A follower refuses and names the leader.
  auto r = c.change_at(f, cc({remove(4)}));
  CHECK(r.status == change_status::not_leader);
  REQUIRE(r.leader);
  CHECK(*r.leader == l);
  CHECK(c.leave_joint_at(f).status == change_status::not_leader);
  // One change at a time (thesis §4.1): the second waits for the first.
  c.add_node(5);
  c.add_node(6);
  r = c.change_at(l, cc({add_learner(5)}));
  REQUIRE(r.ok());
  const auto second = c.change_at(l, cc({add_learner(6)}));
  CHECK(second.status == change_status::change_pending);
  CHECK(c.node(l).last_index() == r.index);  // nothing appended for it
  REQUIRE(c.wait_committed(conf({1, 2, 3, 4}, {5}, {4})));
  CHECK(c.change_at(*c.leader(), cc({add_learner(6)})).ok());
  REQUIRE(c.wait_committed(conf({1, 2, 3, 4}, {5, 6}, {4})));
  c.run_ticks(3);  // every follower learns that it committed
  // Leadership cannot go to a witness (it never leads) nor to a learner.
  CHECK(c.transfer_at(*c.leader(), 4) == raft::transfer_status::witness);
  CHECK(c.transfer_at(*c.leader(), 5) == raft::transfer_status::not_voter);
  CHECK(c.leader() == l);
  // Refused changes append nothing.
  const auto last = c.node(l).last_index();
  CHECK(c.change_at(l, cc({})).status == change_status::empty_change);
  CHECK(c.change_at(l, cc({remove(9)})).status == change_status::unknown_node);
  CHECK(c.change_at(l, cc({add_voter(1)})).status == change_status::already_member);
  CHECK(c.change_at(l, cc({add_voter(4)})).status == change_status::witness_conversion);
  CHECK(c.change_at(l, cc({add_witness(5)})).status == change_status::witness_conversion);
  CHECK(c.change_at(l, cc({add_learner(5), remove(5)})).status == change_status::duplicate_id);
  CHECK(c.change_at(l, cc({remove(1), remove(2), remove(3)})).status == change_status::no_voters);
  CHECK(c.leave_joint_at(l).status == change_status::not_joint);
  CHECK(c.node(l).last_index() == last);
  // During a transfer no change is taken.
  const node_id target = l % 3 + 1;
  REQUIRE(c.transfer_at(l, target) == raft::transfer_status::started);
  if (c.node(l).is_leader()) CHECK(c.change_at(l, cc({remove(6)})).status == change_status::transferring);
  // A new leader first commits an entry of its term (thesis §4.1's fix).
  REQUIRE(c.run_units_until([&] { return c.node(target).is_leader(); }, 200));
  const auto early = c.change_at(target, cc({remove(6)}));
  CHECK(early.status == change_status::not_ready);
  CHECK(c.node(target).commit_index() < c.node(target).last_index());  // its no-op is not committed yet
  REQUIRE(c.one_members("misuse-done"));
}

// ------------------------------------------------------------------- the soak

namespace {
struct member_soak_stats {
  std::uint64_t accepted = 0;    // changes the leaders took (change_at / leave_joint_at ok)
  std::uint64_t committed = 0;   // configuration entries committed (auto-leaves included)
  std::uint64_t joint = 0;       // changes that entered a joint configuration
  std::uint64_t leaves = 0;      // explicit leave_joint calls taken
  std::uint64_t witnesses = 0;   // witnesses added at run time
  std::uint64_t nodes_added = 0; // brand-new nodes started
  std::uint64_t readded = 0;     // removed nodes added back as learners (with their old storage)
  std::uint64_t stopped = 0;     // removed nodes stopped for good
  std::uint64_t reads_ok = 0, writes_ok = 0;
};

/// Non-witness voters of a (non-joint) membership.
std::size_t full_voters(const membership& m) {
  std::size_t n = 0;
  for (auto id : m.voters)
    if (!m.is_witness(id)) ++n;
  return n;
}

/// One random change against the leader's configuration `m` (non-joint), or
/// nothing. Never leaves fewer than 3 non-witness voters in either set, never
/// names a stopped node, adds witnesses only as fresh nodes and never turns a
/// (former) witness into anything else.
std::optional<conf_change> random_change(cluster& c, const membership& m, node_id& next_id, node_id max_id,
                                         member_soak_stats& st) {
  std::vector<node_id> learners = m.learners, full, wits;
  for (auto id : m.voters) (m.is_witness(id) ? wits : full).push_back(id);
  std::vector<node_id> outsiders;  // started, not stopped, not members, never witnesses
  for (node_id i = 1; i <= c.size(); ++i)
    if (c.started(i) && !c.stopped(i) && !m.contains(i) && !c.witness(i)) outsiders.push_back(i);
  auto pick = [&](const std::vector<node_id>& v) { return v[c.rand(v.size())]; };
  auto fresh = [&]() -> std::optional<node_id> {
    if (next_id > max_id) return std::nullopt;
    c.add_node(next_id);
    ++st.nodes_added;
    return next_id++;
  };
  std::vector<change> ch;
  const auto what = c.rand(100);
  if (what < 20) {  // a learner: a brand-new node, or a removed one back with its old log
    if (!outsiders.empty() && c.rand(2) == 0) {
      ch.push_back(add_learner(pick(outsiders)));
      ++st.readded;
    } else if (auto id = fresh()) {
      ch.push_back(add_learner(*id));
    }
  } else if (what < 40) {  // promote a learner
    if (!learners.empty()) ch.push_back(add_voter(pick(learners)));
  } else if (what < 50) {  // demote a voter
    if (full.size() > 3) ch.push_back(add_learner(pick(full)));
  } else if (what < 65) {  // remove a member
    std::vector<node_id> removable = learners;
    for (auto id : wits) removable.push_back(id);
    if (full.size() > 3)
      for (auto id : full) removable.push_back(id);
    if (!removable.empty()) ch.push_back(remove(pick(removable)));
  } else if (what < 75) {  // a witness (fresh node), while witnesses stay fewer than full voters
    if (wits.size() < 2 && wits.size() + 1 < full.size())
      if (auto id = fresh()) {
        ch.push_back(add_witness(*id));
        ++st.witnesses;
      }
  } else {  // several at once: promote / add and remove or demote voters
    if (!learners.empty()) ch.push_back(add_voter(pick(learners)));
    if (auto id = fresh(); id && c.rand(2) == 0) ch.push_back(add_voter(*id));
    std::size_t full_left = full.size() + ch.size();
    std::vector<node_id> cand = full;
    for (int k = static_cast<int>(c.rand(3)); k > 0 && !cand.empty() && full_left > 3; --k) {
      const auto idx = c.rand(cand.size());
      const node_id id = cand[idx];
      cand.erase(cand.begin() + static_cast<std::ptrdiff_t>(idx));
      ch.push_back(c.rand(2) ? remove(id) : add_learner(id));
      --full_left;
    }
    if (!wits.empty() && c.rand(3) == 0) ch.push_back(remove(pick(wits)));
  }
  if (ch.empty()) return std::nullopt;
  const transition hows[] = {transition::automatic, transition::joint, transition::joint_explicit};
  conf_change change = cc(ch, hows[c.rand(3)]);
  // The generator keeps its promises; apply_change is the library's rule.
  auto next = raft::apply_change(m, change);
  if (const auto* why = std::get_if<change_status>(&next))
    throw sim::violation(std::string("soak generator built a change the library refuses: ") + raft::to_string(*why));
  const auto& nm = std::get<membership>(next);
  if (full_voters(raft::leave_joint(nm)) < 3) throw sim::violation("soak generator would leave fewer than 3 full voters");
  return change;
}

/// Random membership changes mixed with crashes, restarts, partitions,
/// message loss, snapshots, transfers, reads and writes. Returns the counts.
member_soak_stats membership_churn(std::uint64_t seed, int iterations) {
  sim::options o{.nodes = seed % 4 == 0 ? 5u : 3u, .seed = seed};
  if (seed % 8 == 0) o.witnesses = {5};  // 4 full voters and a bootstrap witness
  if (seed % 2 == 0) {
    o.max_delay = 25;
    o.drop = 0.1;
    o.duplicate = 0.05;
  }
  if (seed % 3 == 0) {
    o.snapshot_every = 10;
    o.snapshot_padding = 200;
  }
  if (seed % 5 == 1) {
    o.disk = sim::durability::async;
    o.max_disk_delay = 30;
    o.torn_crashes = true;
  }
  o.lease_reads = (seed / 3) % 4 == 0;
  cluster c(o);
  member_soak_stats st;
  node_id next_id = static_cast<node_id>(o.nodes) + 1;
  const node_id max_id = 10;
  std::uint64_t cmds = 0;
  for (int iter = 0; iter < iterations; ++iter) {
    // Clients.
    for (int r = static_cast<int>(c.rand(3)); r > 0; --r) {
      const node_id at = 1 + c.rand(c.size());
      if (c.up(at)) (void)c.read_at(at, o.lease_reads && c.rand(2) ? raft::read_mode::lease : raft::read_mode::read_index);
    }
    if (auto l = c.leader())
      for (int p = 0; p < 3; ++p) (void)c.propose_at(*l, "m-" + std::to_string(cmds++));
    // A membership change, or leaving an explicit joint configuration.
    if (auto l = c.leader(); l && c.rand(100) < 35) {
      const membership m = c.node(*l).configuration();
      if (m.joint()) {
        if (!m.auto_leave && c.rand(2) == 0) {
          const auto r = c.leave_joint_at(*l);
          if (r.ok()) ++st.leaves;
        }
      } else if (auto change = random_change(c, m, next_id, max_id, st)) {
        const auto r = c.change_at(*l, *change);
        if (r.ok()) {
          if (c.node(*l).configuration().joint()) ++st.joint;
        } else if (r.status != change_status::change_pending && r.status != change_status::not_ready &&
                   r.status != change_status::transferring) {
          throw sim::violation(std::string("the leader refused a valid change: ") + raft::to_string(r.status));
        }
      }
    }
    if (c.rand(100) < 3)
      if (auto l = c.leader()) (void)c.transfer_at(*l, 1 + c.rand(c.size()));
    // Faults, over every node started and not stopped (removed ones too).
    const auto what = c.rand(100);
    const node_id n = 1 + c.rand(c.size());
    if (c.started(n) && !c.stopped(n)) {
      if (what < 12) c.crash(n);
      else if (what < 32) c.restart(n);
      else if (what < 42) c.isolate(n);
      else if (what < 57) c.connect(n);
      else if (what < 60) {
        // A removed node whose removal committed is switched off for good.
        const auto cm = c.committed_configuration();
        if (cm && !cm->contains(n)) {
          c.stop(n);
          ++st.stopped;
        }
      }
    }
    c.run_ticks(1 + c.rand(8));
  }
  // Heal, bring everyone back, leave an explicit joint configuration, and
  // make every member apply everything. (A leader found first may be a
  // stale one, and the next may hold an explicit joint configuration: then
  // leave it and try again.)
  c.calm_network();
  c.heal();
  for (node_id i = 1; i <= c.size(); ++i) c.restart(i);
  bool converged = false;
  for (int attempt = 0; attempt < 4 && !converged; ++attempt) {
    const bool settled = c.run_until(
        [&] {
          const auto l = c.leader();
          if (!l) return false;
          const auto& m = c.node(*l).configuration();
          if (m.joint() && !m.auto_leave && c.node(*l).configuration_index() <= c.node(*l).commit_index())
            if (c.leave_joint_at(*l).ok()) ++st.leaves;
          const auto cm = c.committed_configuration();
          return cm && !cm->joint();
        },
        3000);
    if (!settled)
      throw sim::violation("liveness: no leader with a committed, non-joint configuration after healing:\n" +
                           c.describe());
    converged = c.converge_members(attempt == 3 ? 3000 : 600);
  }
  if (!converged) throw sim::violation("liveness: the members did not converge after healing:\n" + c.describe());
  const membership final_conf = *c.committed_configuration();
  if (full_voters(final_conf) < 3) throw sim::violation("the final configuration has fewer than 3 full voters");
  for (auto id : final_conf.members()) {
    if (!c.run_until([&] { return c.node(id).configuration() == final_conf; }, 200))
      throw sim::violation("member " + std::to_string(id) + " does not use the final configuration:\n" +
                           c.describe());
    CHECK(c.applied(id).size() == c.node(*c.leader()).applied_index().value);
  }
  st.accepted = c.changes_accepted();
  st.committed = c.configs_committed();
  st.reads_ok = c.hist().reads_ok();
  st.writes_ok = c.hist().writes_ok();
  return st;
}
}  // namespace

TEST_CASE("randomized soak with membership changes: learners, promotions, demotions, removals, witnesses and joint "
          "changes amid crashes, partitions, message loss and snapshots",
          "[sim][soak][membership]") {
  const auto n = sim::env_u64("RAFT_SOAK_SEEDS", 500);
  const auto first = sim::env_u64("RAFT_SOAK_FIRST_SEED", 1000);
  // Rounds of churn per seed (longer runs for exploration).
  const int rounds = static_cast<int>(sim::env_u64("RAFT_MEMBERSHIP_SOAK_ROUNDS", 60));
  std::uint64_t ran = 0, failed = 0;
  member_soak_stats total;
  for (auto seed : sim::seeds(n, first)) {
    INFO("replay with RAFT_SIM_SEED=" << seed);
    try {
      const auto st = membership_churn(seed, rounds);
      total.accepted += st.accepted;
      total.committed += st.committed;
      total.joint += st.joint;
      total.leaves += st.leaves;
      total.witnesses += st.witnesses;
      total.nodes_added += st.nodes_added;
      total.readded += st.readded;
      total.stopped += st.stopped;
      total.reads_ok += st.reads_ok;
      total.writes_ok += st.writes_ok;
    } catch (const sim::violation& v) {
      // Every failing seed is reported (the run goes on with the next one).
      FAIL_CHECK(v.what() << " (replay with RAFT_SIM_SEED=" << seed << ")");
      ++failed;
    }
    ++ran;
  }
  WARN("membership soak ran " << ran << " seeds: " << total.accepted << " changes taken by leaders, "
                              << total.committed << " configuration entries committed (" << total.joint
                              << " joint changes, " << total.leaves << " explicit leaves), " << total.nodes_added
                              << " nodes added, " << total.witnesses << " of them witnesses, " << total.readded
                              << " removed nodes re-added, " << total.stopped << " stopped; " << total.reads_ok
                              << " linearizable reads, " << total.writes_ok << " writes completed");
  CHECK(ran == (std::getenv("RAFT_SIM_SEED") ? 1 : n));
  CHECK(failed == 0);
  if (ran > 20) {
    CHECK(total.committed > ran);  // the changes are really exercised
    CHECK(total.joint > 0);
    CHECK(total.witnesses > 0);
  }
}

// ------------------------------------------------------ regressions (defects found here, fixed)

// Found by the membership soak (seed 1056): a node that joins an existing
// cluster (config.voters empty) and gets the log from index 1 does not know
// the membership before the first configuration entry it holds (the
// founders' bootstrap one is in no entry). Compacting there must work and
// record no membership ("none known": a restart reads config.voters, empty),
// not an empty one that does not decode.
TEST_CASE("membership: a node that joined compacts its log below the entry that added it",
          "[sim][membership][regression]") {
  cluster c({.nodes = 3, .seed = 21});
  for (int k = 0; k < 6; ++k) REQUIRE(c.one(cmd(static_cast<std::uint64_t>(k)), 3));
  c.add_node(4);
  const auto r = c.change_at(*c.leader(), cc({add_learner(4)}));
  REQUIRE(r.ok());
  REQUIRE(r.index > index_t{6});  // six commands and the first leader's no-op come first
  REQUIRE(c.run_until([&] { return c.applied(4).size() >= r.index.value; }, 100));
  REQUIRE(c.node(4).log().snapshot_index() == index_t{});  // it got the log from index 1
  // Its application compacts at an index before the configuration entry.
  raft::compact_status st = raft::compact_status::ok;
  REQUIRE_NOTHROW(st = c.compact_at(4, index_t{5}));
  CHECK(st == raft::compact_status::ok);
  CHECK(c.node(4).log().snapshot_membership().empty());
  CHECK(c.node(4).configuration().is_learner(4));  // the entry after the snapshot still says so
  // And the cluster goes on.
  REQUIRE(c.one("after-compaction", 4));
}

// A witness removed and added back with the same id would keep a log whose
// command entries have no payloads; as a full member it could be elected and
// miss committed data. The leader refuses it (witness_conversion) while its
// log shows the id was a witness; the way back is add_witness, or a new node.
TEST_CASE("membership: a witness removed cannot come back as a voter; it may come back as a witness",
          "[sim][membership][witness][regression]") {
  cluster c({.nodes = 3, .seed = 5, .witnesses = {3}});
  for (int k = 0; k < 5; ++k) REQUIRE(c.one(cmd(static_cast<std::uint64_t>(k)), 3));
  REQUIRE(c.change_at(*c.leader(), cc({remove(3)})).ok());
  REQUIRE(c.wait_committed(conf({1, 2})));
  CHECK(c.change_at(*c.leader(), cc({add_voter(3)})).status == raft::change_status::witness_conversion);
  CHECK(c.change_at(*c.leader(), cc({add_learner(3)})).status == raft::change_status::witness_conversion);
  const auto r = c.change_at(*c.leader(), cc({add_witness(3)}));
  REQUIRE(r.ok());
  REQUIRE(c.run_until([&] { return c.node(*c.leader()).commit_index() >= r.index; }, 100));
  REQUIRE(c.one("after-readd", 3));
  CHECK(c.transfer_at(*c.leader(), 3) == raft::transfer_status::witness);
}

// Found by the membership soak (RAFT_MEMBERSHIP_SOAK_ROUNDS=250
// RAFT_SIM_SEED=6155; liveness): leaving a joint configuration where the old voters
// that are demoted (or removed) form a majority of the old set. The leader
// appends C_new; only old voters that C_new makes learners receive it; then
// the leader loses its quorum. Those nodes hold the longest log, and their
// newest configuration (C_new, uncommitted) says they are learners, so they
// never campaign (promotable_ looks at the newest configuration only). The
// nodes that are voters in C_new still use C_old,new (thesis §4.3: both
// majorities) and need votes from the old set, whose members that hold C_new
// refuse them: their logs are longer (paper §5.4.1). No leader, ever, with
// every node up and the network healed. The fix (thesis §4.2.2: until C_new
// commits, a server of C_old that is not in C_new may still time out and
// lead): a node may campaign while it is a full voter in the configuration
// before its newest one and that newest one is not committed; once elected
// it commits C_new and steps down.
TEST_CASE("membership: old voters demoted by an uncommitted leave-joint entry still campaign, so a leader emerges "
          "and the change commits",
          "[sim][membership][joint][regression]") {
  cluster c({.nodes = 3, .seed = 3});
  REQUIRE(c.one(cmd(0), 3));
  const node_id l = *c.leader(), a = l % 3 + 1, b = a % 3 + 1;
  c.add_node(4);
  c.add_node(5);
  REQUIRE(c.change_at(l, cc({add_learner(4), add_learner(5)})).ok());
  REQUIRE(c.wait_committed(conf({1, 2, 3}, {4, 5})));
  // Joint {b,4,5} & {l,a,b}; l and a become learners when it is left.
  const auto j =
      c.change_at(l, cc({add_learner(l), add_learner(a), add_voter(4), add_voter(5)}, transition::joint_explicit));
  REQUIRE(j.ok());
  REQUIRE(c.run_until([&] { return c.node(b).commit_index() >= j.index && c.node(5).commit_index() >= j.index; }, 50));
  // C_new reaches a only: {l, a} is cut off from {b, 4, 5}.
  c.partition({{l, a}, {b, 4, 5}});
  const auto leave = c.leave_joint_at(l);
  REQUIRE(leave.ok());
  REQUIRE(c.run_until([&] { return c.node(a).last_index() >= leave.index; }, 20));
  c.run_ticks(50);  // l loses its quorum and steps down
  CHECK_FALSE(c.node(l).is_leader());
  c.heal();
  // With every node up and connected, a leader must emerge and C_new commit.
  const auto nl = c.wait_leader(500);
  INFO(c.describe());
  REQUIRE(nl);
  CHECK(c.wait_committed(conf({b, 4, 5}, {l, a}), 200));
}
