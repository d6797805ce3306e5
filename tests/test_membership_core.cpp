// Membership changes in the core, message by message (thesis chapter 4):
// configuration entries in force as soon as they are in a log, single-server
// and joint changes, learners, witnesses, removal of the leader, restart and
// snapshots carrying the membership, and the refusals for misuse.
#include <catch2/catch.hpp>

#include <raft/raft.hpp>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using raft::index_t;
using raft::term_t;
using nid = std::uint64_t;
using raft::change_status;
using raft::change_type;

namespace {

using node = raft::node<>;
using out_t = node::output_type;
using msg = node::message_type;
using members = raft::membership<nid>;
using change = raft::conf_change<nid>;

raft::config<nid> cfg_of(nid id, std::vector<nid> voters, std::vector<nid> witnesses = {}) {
  raft::config<nid> c{.id = id, .voters = std::move(voters), .election_ticks = 10, .heartbeat_ticks = 1};
  c.witnesses = std::move(witnesses);
  c.random_seed = 11;
  return c;
}

change one(change_type t, nid id, raft::transition how = raft::transition::automatic) {
  change c;
  c.changes.push_back({t, id});
  c.how = how;
  return c;
}

bool same_set(std::vector<nid> a, std::vector<nid> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

/// Nodes by id, added at will (a joining node has no voters), messages
/// queued and delivered on request, links cut one way or both.
struct net {
  std::map<nid, std::unique_ptr<node>> nodes;
  std::map<nid, out_t> outs;
  std::deque<msg> wire;
  std::set<std::pair<nid, nid>> cut;
  std::map<nid, std::vector<raft::entry<raft::bytes>>> applied;
  std::vector<msg> sent;  // every message that went on the wire

  explicit net(std::vector<nid> ids, std::vector<nid> witnesses = {}) {
    for (nid i : ids) add(cfg_of(i, ids, witnesses));
  }
  void add(const raft::config<nid>& c, raft::memory_log<> log = {}) {
    nodes[c.id] = std::make_unique<node>(c, std::move(log));
    outs[c.id];
  }
  /// A brand-new node that joins an existing cluster: no voters, empty log.
  void join(nid id) { add(cfg_of(id, {})); }
  node& at(nid i) { return *nodes.at(i); }
  out_t& out(nid i) { return outs[i]; }
  void collect(nid i) {
    auto& o = out(i);
    for (const auto& e : o.committed) applied[i].push_back(e);
    for (auto& m : o.messages) {
      sent.push_back(m);
      wire.push_back(m);
    }
    o.clear();
  }
  void deliver(std::size_t limit = 100000) {
    for (auto& [i, n] : nodes) collect(i);
    while (!wire.empty() && limit-- > 0) {
      msg m = std::move(wire.front());
      wire.pop_front();
      if (cut.count({m.from, m.to}) || !nodes.count(m.to)) continue;
      const nid to = m.to;
      (void)at(to).step(std::move(m), out(to));
      collect(to);
    }
  }
  void tick_all(int n = 1) {
    for (int k = 0; k < n; ++k) {
      for (auto& [i, nd] : nodes) {
        nd->tick(out(i));
        collect(i);
      }
      deliver();
    }
  }
  void isolate(nid i) {
    for (auto& [j, n] : nodes)
      if (j != i) cut.insert({i, j}), cut.insert({j, i});
  }
  void heal() { cut.clear(); }
  void elect(nid i) {
    at(i).campaign(out(i));
    deliver();
    REQUIRE(at(i).is_leader());
    tick_all(1);  // the no-op commits everywhere
  }
  /// Crash and restart from what the Log holds (memory_log: all of it).
  void restart(nid i, std::vector<nid> voters) {
    raft::memory_log<> log = at(i).log();
    nodes.erase(i);
    outs.erase(i);
    add(cfg_of(i, std::move(voters)), std::move(log));
  }
  std::optional<nid> leader() const {
    for (const auto& [i, n] : nodes)
      if (n->is_leader()) return i;
    return std::nullopt;
  }
  /// Messages of one kind sent since `from` (an index into `sent`).
  template <class Body>
  std::vector<msg> sent_of(std::size_t from = 0) const {
    std::vector<msg> r;
    for (std::size_t k = from; k < sent.size(); ++k)
      if (std::holds_alternative<Body>(sent[k].body)) r.push_back(sent[k]);
    return r;
  }
};

using areq = raft::append_request<raft::bytes>;

}  // namespace

// --------------------------------------------------------- single-server changes

TEST_CASE("membership: an added learner is in force on the leader at once, receives the log, never counts",
          "[membership][learner]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  auto r = n.at(1).change_membership(one(change_type::add_learner, 4), n.out(1));
  REQUIRE(r.status == change_status::ok);
  CHECK(r.index == n.at(1).last_index());
  CHECK(n.at(1).configuration().is_learner(4));  // thesis 4.1: in force once in the log
  CHECK(n.at(1).configuration_index() == r.index);
  REQUIRE(n.at(1).progress_of(4) != nullptr);
  CHECK(n.at(1).progress_of(4)->learner);
  n.deliver();
  n.tick_all(3);
  // The joining node learnt the membership from the entry that added it.
  CHECK(n.at(4).configuration() == n.at(1).configuration());
  CHECK(n.at(4).commit_index() == n.at(1).commit_index());
  // A learner's acknowledgement does not count: with 2 and 3 cut off, a
  // new entry reaches 4 but does not commit.
  n.isolate(2);
  n.isolate(3);
  n.cut.erase({1, 4});
  n.cut.erase({4, 1});
  const index_t before = n.at(1).commit_index();
  REQUIRE(n.at(1).propose(raft::bytes("x"), n.out(1)).status == raft::propose_status::ok);
  n.deliver();
  CHECK(n.at(4).last_index() == n.at(1).last_index());
  CHECK(n.at(1).commit_index() == before);
}

TEST_CASE("membership: a learner never campaigns, however long it hears nothing", "[membership][learner]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  REQUIRE(n.at(1).change_membership(one(change_type::add_learner, 4), n.out(1)).ok());
  n.deliver();
  n.tick_all(2);
  n.isolate(4);
  const std::size_t mark = n.sent.size();
  for (int k = 0; k < 200; ++k) n.tick_all();
  CHECK(n.at(4).role() == raft::role::follower);
  CHECK(n.at(4).term() == n.at(1).term());
  for (const auto& m : n.sent_of<raft::pre_vote_request>(mark)) CHECK(m.from != 4);
  for (const auto& m : n.sent_of<raft::vote_request>(mark)) CHECK(m.from != 4);
  // campaign() on a learner does nothing either.
  n.at(4).campaign(n.out(4));
  CHECK(n.out(4).messages.empty());
}

TEST_CASE("membership: a caught-up learner is promoted; the leader shows its lag first", "[membership][learner]") {
  net n({1, 2, 3});
  n.elect(1);
  for (int k = 0; k < 20; ++k) (void)n.at(1).propose(raft::bytes(std::to_string(k)), n.out(1));
  n.deliver();
  n.join(4);
  n.isolate(4);
  REQUIRE(n.at(1).change_membership(one(change_type::add_learner, 4), n.out(1)).ok());
  n.deliver();
  n.tick_all(2);
  auto lag_of_4 = [&] {
    for (const auto& p : n.at(1).status().peers)
      if (p.id == 4) return p.lag;
    return std::uint64_t{999999};
  };
  CHECK(lag_of_4() == n.at(1).last_index().value);  // nothing replicated yet
  n.heal();
  n.tick_all(3);
  CHECK(lag_of_4() == 0);
  auto r = n.at(1).change_membership(one(change_type::add_voter, 4), n.out(1));
  REQUIRE(r.status == change_status::ok);
  CHECK(n.at(1).configuration().is_voter(4));
  CHECK_FALSE(n.at(1).configuration().is_learner(4));
  CHECK(n.at(1).voters().incoming.size() == 4);
  n.deliver();
  n.tick_all(2);
  CHECK(n.at(1).commit_index() >= r.index);
  // Four voters: 1 and 2 alone are not a majority any more.
  n.isolate(3);
  n.isolate(4);
  const index_t before = n.at(1).commit_index();
  (void)n.at(1).propose(raft::bytes("y"), n.out(1));
  n.deliver();
  CHECK(n.at(1).commit_index() == before);
}

TEST_CASE("membership: one change at a time, and only after the leader committed an entry of its term "
          "(thesis 4.1)", "[membership][misuse]") {
  net n({1, 2, 3});
  n.elect(1);
  // (a fresh leader whose no-op is uncommitted)
  net m({1, 2, 3});
  m.at(1).campaign(m.out(1));
  m.collect(1);
  while (!m.wire.empty()) {  // deliver only vote traffic
    msg x = m.wire.front();
    m.wire.pop_front();
    if (std::holds_alternative<areq>(x.body)) continue;
    (void)m.at(x.to).step(std::move(x), m.out(x.to));
    m.collect(x.to);
    m.wire.erase(std::remove_if(m.wire.begin(), m.wire.end(),
                                [](const msg& y) { return std::holds_alternative<areq>(y.body); }),
                 m.wire.end());
  }
  REQUIRE(m.at(1).is_leader());
  REQUIRE(m.at(1).commit_index() < m.at(1).last_index());
  const index_t last = m.at(1).last_index();
  CHECK(m.at(1).change_membership(one(change_type::add_learner, 4), m.out(1)).status == change_status::not_ready);
  CHECK(m.at(1).last_index() == last);  // nothing appended
  // Once an entry of its term commits, a change goes; a second one waits.
  const nid l = 1;
  REQUIRE(n.at(l).change_membership(one(change_type::add_learner, 4), n.out(l)).ok());
  const index_t after_first = n.at(l).last_index();
  auto second = n.at(l).change_membership(one(change_type::add_learner, 5), n.out(l));
  CHECK(second.status == change_status::change_pending);
  CHECK(n.at(l).last_index() == after_first);
  n.deliver();
  n.tick_all(1);
  CHECK(n.at(l).change_membership(one(change_type::add_learner, 5), n.out(l)).ok());
}

TEST_CASE("membership: misuse is refused with a clear status and appends nothing", "[membership][misuse]") {
  net n({1, 2, 3});
  n.elect(1);
  node& l = n.at(1);
  const index_t last = l.last_index();
  auto status_of = [&](const change& c) {
    out_t o;
    auto r = l.change_membership(c, o);
    CHECK_FALSE(o.persist.has_value());
    CHECK(l.last_index() == last);
    return r.status;
  };
  change dup;
  dup.changes = {{change_type::add_learner, 4}, {change_type::add_voter, 4}};
  CHECK(status_of(dup) == change_status::duplicate_id);
  CHECK(status_of(one(change_type::remove, 9)) == change_status::unknown_node);
  CHECK(status_of(one(change_type::add_voter, 2)) == change_status::already_member);
  change none;
  CHECK(status_of(none) == change_status::empty_change);
  change all;
  all.changes = {{change_type::remove, 1}, {change_type::remove, 2}, {change_type::remove, 3}};
  CHECK(status_of(all) == change_status::no_voters);
  CHECK(status_of(one(change_type::add_witness, 2)) == change_status::witness_conversion);
  CHECK(l.configuration() == members{{1, 2, 3}, {}, {}, {}, {}, false});
  // On a follower: not the leader, and the result names it.
  out_t o;
  auto f = n.at(2).change_membership(one(change_type::add_learner, 4), o);
  CHECK(f.status == change_status::not_leader);
  CHECK(f.leader == std::optional<nid>(1));
  CHECK(n.at(2).leave_joint(o).status == change_status::not_leader);
  CHECK(l.leave_joint(o).status == change_status::not_joint);
  CHECK(std::string(raft::to_string(change_status::witness_conversion)).find("witness") != std::string::npos);
}

// ------------------------------------------------------------- joint consensus

TEST_CASE("membership: a joint change needs both majorities to commit, then is left automatically (thesis 4.3)",
          "[membership][joint]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  n.join(5);
  change c;
  c.changes = {{change_type::add_voter, 4}, {change_type::add_voter, 5}, {change_type::remove, 2},
               {change_type::remove, 3}};
  // New majority {1, 4, 5} up, old majority {1, 2, 3} down but for 1.
  n.isolate(2);
  n.isolate(3);
  auto r = n.at(1).change_membership(c, n.out(1));
  REQUIRE(r.status == change_status::ok);
  const members& j = n.at(1).configuration();
  CHECK(j.joint());
  CHECK(j.auto_leave);
  CHECK(same_set(j.voters, {1, 4, 5}));
  CHECK(same_set(j.voters_outgoing, {1, 2, 3}));
  n.deliver();
  n.tick_all(5);
  CHECK(n.at(1).commit_index() < r.index);  // the old set has no majority
  CHECK(n.at(4).last_index() >= r.index);
  // The old majority comes back: the joint entry commits, and the leader
  // leaves the joint configuration on its own.
  n.heal();
  n.tick_all(5);
  CHECK(n.at(1).commit_index() > r.index);
  CHECK_FALSE(n.at(1).configuration().joint());
  CHECK(same_set(n.at(1).configuration().voters, {1, 4, 5}));
  for (nid i : {4, 5}) CHECK(n.at(i).configuration() == n.at(1).configuration());
  // Removed nodes learn their removal, and that it committed, before the
  // leader stops sending to them (one election timeout after the commit).
  CHECK(n.at(1).progress_of(2) != nullptr);
  n.tick_all(12);
  CHECK(n.at(1).progress_of(2) == nullptr);
  CHECK(n.at(2).configuration() == n.at(1).configuration());
  CHECK(n.at(2).commit_index() >= n.at(2).configuration_index());
}

TEST_CASE("membership: joint_explicit stays joint until leave_joint()", "[membership][joint]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  auto r = n.at(1).change_membership(one(change_type::add_voter, 4, raft::transition::joint_explicit), n.out(1));
  REQUIRE(r.ok());
  n.deliver();
  n.tick_all(5);
  CHECK(n.at(1).commit_index() >= r.index);
  CHECK(n.at(1).configuration().joint());
  CHECK_FALSE(n.at(1).configuration().auto_leave);
  CHECK(n.at(1).change_membership(one(change_type::add_learner, 5), n.out(1)).status == change_status::in_joint);
  auto leave = n.at(1).leave_joint(n.out(1));
  REQUIRE(leave.ok());
  CHECK_FALSE(n.at(1).configuration().joint());
  n.deliver();
  n.tick_all(2);
  CHECK(n.at(1).commit_index() >= leave.index);
  for (nid i : {2, 3, 4}) CHECK(n.at(i).configuration() == n.at(1).configuration());
}

TEST_CASE("membership: while joint, an election needs a majority of both sets (thesis 4.3)", "[membership][joint]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  n.join(5);
  change c;
  c.changes = {{change_type::add_voter, 4}, {change_type::add_voter, 5}, {change_type::remove, 3}};
  c.how = raft::transition::joint_explicit;
  REQUIRE(n.at(1).change_membership(c, n.out(1)).ok());
  n.deliver();
  n.tick_all(3);
  REQUIRE(n.at(2).configuration().joint());
  // Leader 1 gone. 2 with 3 is a majority of the old set {1,2,3}, but of
  // the new set {1,2,4,5} it has only itself: it cannot win.
  n.isolate(1);
  n.isolate(4);
  n.isolate(5);
  n.cut.erase({2, 3});
  n.cut.erase({3, 2});
  for (int k = 0; k < 60; ++k) n.tick_all();
  CHECK_FALSE(n.at(2).is_leader());
  CHECK_FALSE(n.at(3).is_leader());
  // With 4 back, 2 has {2,3} of the old set and {2,4} of the new: not yet
  // (2 of 4 is no majority); with 5 too it wins.
  n.heal();
  n.isolate(1);
  for (int k = 0; k < 60 && !n.leader(); ++k) n.tick_all();
  REQUIRE(n.leader().has_value());
  CHECK(*n.leader() != 1);
}

// ----------------------------------------------------------------- removal

TEST_CASE("membership: a removed leader leads until its removal commits, then steps down and hands over "
          "(thesis 4.2.2)", "[membership][removal]") {
  net n({1, 2, 3});
  n.elect(1);
  const term_t t = n.at(1).term();
  auto r = n.at(1).change_membership(one(change_type::remove, 1), n.out(1));
  REQUIRE(r.ok());
  CHECK(n.at(1).is_leader());
  CHECK_FALSE(n.at(1).voters().contains(1));
  // It does not count itself: with both followers cut off, nothing commits.
  n.isolate(1);
  n.deliver();
  n.tick_all(1);
  CHECK(n.at(1).commit_index() < r.index);
  CHECK(n.at(1).is_leader());
  n.heal();
  const std::size_t mark = n.sent.size();
  n.tick_all(3);
  CHECK_FALSE(n.at(1).is_leader());
  CHECK(n.sent_of<raft::timeout_now>(mark).size() == 1);
  const auto l = n.leader();
  REQUIRE(l.has_value());
  CHECK((*l == 2 || *l == 3));
  CHECK(n.at(*l).term() == t.next());  // handed over: one election, no timeout
  // The removed node never campaigns again.
  const std::size_t mark2 = n.sent.size();
  n.isolate(1);
  for (int k = 0; k < 100; ++k) n.tick_all();
  for (const auto& m : n.sent_of<raft::pre_vote_request>(mark2)) CHECK(m.from != 1);
  for (const auto& m : n.sent_of<raft::vote_request>(mark2)) CHECK(m.from != 1);
}

TEST_CASE("membership: a removed server that never learnt its removal cannot disrupt the cluster (thesis 4.2.3)",
          "[membership][removal]") {
  net n({1, 2, 3, 4});
  n.elect(1);
  n.isolate(4);  // 4 misses its own removal
  auto r = n.at(1).change_membership(one(change_type::remove, 4), n.out(1));
  REQUIRE(r.ok());
  n.deliver();
  n.tick_all(12);
  REQUIRE(n.at(1).commit_index() >= r.index);
  CHECK(n.at(1).progress_of(4) == nullptr);
  const term_t t = n.at(1).term();
  n.heal();
  for (int k = 0; k < 200; ++k) n.tick_all();
  CHECK(n.at(1).is_leader());
  CHECK(n.at(1).term() == t);
  CHECK_FALSE(n.at(4).is_leader());
}

// ------------------------------------------------------- durability of membership

TEST_CASE("membership: a restart takes the membership from the log, not from config.voters", "[membership][restart]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  REQUIRE(n.at(1).change_membership(one(change_type::add_voter, 4), n.out(1)).ok());
  n.deliver();
  n.tick_all(2);
  const members want = n.at(1).configuration();
  n.restart(2, {1, 2, 3});  // stale bootstrap list: ignored
  CHECK(n.at(2).configuration() == want);
  n.restart(4, {});  // a joined node restarts without any voter list
  CHECK(n.at(4).configuration() == want);
  CHECK(n.at(4).voters().contains(4));
}

TEST_CASE("membership: a snapshot carries the membership as of its index; restart and InstallSnapshot restore it",
          "[membership][snapshot]") {
  net n({1, 2, 3});
  n.elect(1);
  REQUIRE(n.at(1).change_membership(one(change_type::add_learner, 7), n.out(1)).ok());
  n.deliver();
  n.tick_all(2);
  for (int k = 0; k < 5; ++k) (void)n.at(1).propose(raft::bytes("v"), n.out(1));
  n.deliver();
  n.tick_all(1);
  const members want = n.at(1).configuration();
  const index_t upto = n.at(1).applied_index();
  REQUIRE(n.at(1).compact(upto, raft::bytes("state"), n.out(1)) == raft::compact_status::ok);
  n.collect(1);
  auto decoded = raft::decode_config_entry<raft::default_transport>(n.at(1).log().snapshot_membership());
  REQUIRE(decoded.has_value());
  CHECK(decoded->members == want);
  // A joining node that needs the snapshot gets the membership with it.
  n.join(7);
  n.tick_all(5);
  CHECK(n.at(7).configuration() == want);
  CHECK(n.at(7).log().snapshot_index() == upto);
  // Both restart with it.
  n.restart(1, {1, 2, 3});
  CHECK(n.at(1).configuration() == want);
  n.restart(7, {});
  CHECK(n.at(7).configuration() == want);
}

TEST_CASE("membership: a configuration entry overwritten by a new leader gives back the previous membership",
          "[membership][truncation]") {
  net n({1, 2, 3});
  n.elect(1);
  const members before = n.at(2).configuration();
  // 1 appends a change that only 2 receives, then 1 dies; 3 (with 2's
  // vote impossible: 2's log is longer) ... use 2 isolated instead:
  n.isolate(3);
  auto r = n.at(1).change_membership(one(change_type::add_learner, 9), n.out(1));
  REQUIRE(r.ok());
  n.cut.erase({1, 2});
  n.cut.erase({2, 1});
  n.cut.insert({2, 1});  // 2 gets it but cannot answer
  n.deliver();
  CHECK(n.at(2).configuration().is_learner(9));  // in force on receipt
  // 1 dies; 3 becomes leader with 2's help? 2's log is longer, so 2 would
  // refuse 3. Make 3 leader in a partition with ... 2 truncates only if a
  // leader without the entry wins: let 3 win with 1's vote.
  n.heal();
  n.isolate(2);
  n.wire.clear();
  // 1 forgets the change: restart it from a log truncated before it.
  raft::memory_log<> log = n.at(1).log();
  log.truncate_after(r.index.prev());
  n.nodes.erase(1);
  n.add(cfg_of(1, {1, 2, 3}), std::move(log));
  n.at(3).campaign(n.out(3));
  n.deliver();
  REQUIRE(n.at(3).is_leader());
  n.tick_all(1);
  n.heal();
  n.tick_all(3);
  CHECK(n.at(2).configuration() == before);
  CHECK(n.at(2).log().term_at(r.index) == n.at(3).term());
}

TEST_CASE("membership: a vote stored for a node since removed does not stop a restart", "[membership][restart]") {
  raft::memory_log<> log;
  log.save_hard_state({term_t{4}, nid{9}});
  node n(cfg_of(1, {1, 2, 3}), std::move(log));
  CHECK(n.voted_for() == std::optional<nid>(9));
  CHECK(n.term() == term_t{4});
}

TEST_CASE("membership: a damaged configuration entry or snapshot membership in the Log is refused at start",
          "[membership][restart]") {
  raft::memory_log<> log;
  log.save_hard_state({term_t{1}, std::nullopt});
  log.append(raft::entry<raft::bytes>{term_t{1}, index_t{1}, raft::entry_kind::config, {}, raft::bytes("junk")});
  CHECK_THROWS_WITH(node(cfg_of(1, {1, 2, 3}), log), Catch::Contains("configuration entry at index 1 is damaged"));
  raft::memory_log<> snap;
  snap.install_snapshot(raft::snapshot{index_t{5}, term_t{1}, raft::bytes("s"), raft::bytes("\x07")});
  CHECK_THROWS_WITH(node(cfg_of(1, {1, 2, 3}), snap), Catch::Contains("snapshot membership is damaged"));
}

TEST_CASE("membership: a configuration entry that does not decode is refused as malformed and changes nothing",
          "[membership][hostile]") {
  net n({1, 2, 3});
  n.elect(1);
  const members before = n.at(2).configuration();
  const index_t last = n.at(2).last_index();
  areq a{last, n.at(2).log().term_at(last), n.at(1).commit_index(), {}};
  a.entries.push_back({n.at(1).term(), last.next(), raft::entry_kind::config, {}, raft::bytes("\x01\x00\x05")});
  out_t o;
  CHECK(n.at(2).step(msg{1, 2, n.at(1).term(), a}, o) == raft::step_status::malformed);
  CHECK(n.at(2).configuration() == before);
  CHECK(n.at(2).last_index() == last);
  // A conf blob on a command entry is refused too.
  a.entries[0] = {n.at(1).term(), last.next(), raft::entry_kind::command, raft::bytes("x"), raft::bytes("y")};
  CHECK(n.at(2).step(msg{1, 2, n.at(1).term(), a}, o) == raft::step_status::malformed);
}

// ----------------------------------------------------------------- witnesses

TEST_CASE("membership: a witness gets entries without payloads, votes, counts, never campaigns", "[membership][witness]") {
  net n({1, 2, 3}, {3});
  CHECK(n.at(3).configuration().is_witness(3));
  n.elect(1);
  const std::size_t mark = n.sent.size();
  REQUIRE(n.at(1).propose(raft::bytes("payload"), n.out(1)).status == raft::propose_status::ok);
  n.deliver();
  bool saw_witness = false, saw_full = false;
  for (const auto& m : n.sent_of<areq>(mark)) {
    for (const auto& e : std::get<areq>(m.body).entries) {
      if (e.kind != raft::entry_kind::command) continue;
      if (m.to == 3) {
        saw_witness = true;
        CHECK(e.data.empty());
      } else {
        saw_full = true;
        CHECK(e.data == raft::bytes("payload"));
      }
    }
  }
  CHECK(saw_witness);
  CHECK(saw_full);
  // Leader + witness commit without 2.
  n.isolate(2);
  const index_t before = n.at(1).commit_index();
  (void)n.at(1).propose(raft::bytes("p2"), n.out(1));
  n.deliver();
  CHECK(n.at(1).commit_index() > before);
  // The witness never campaigns, and is no transfer target.
  out_t o;
  CHECK(n.at(1).transfer_leadership(3, o) == raft::transfer_status::witness);
  n.heal();
  n.isolate(1);
  n.isolate(3);
  const std::size_t mark2 = n.sent.size();
  for (int k = 0; k < 100; ++k) n.tick_all();
  for (const auto& m : n.sent_of<raft::pre_vote_request>(mark2)) CHECK(m.from != 3);
  CHECK_FALSE(n.at(3).is_leader());
}

TEST_CASE("membership: entries committed by the leader and a witness alone cannot be lost: the other full "
          "replica cannot win without them", "[membership][witness]") {
  net n({1, 2, 3}, {3});
  n.elect(1);
  n.isolate(2);
  (void)n.at(1).propose(raft::bytes("only-on-1"), n.out(1));
  n.deliver();
  const index_t committed = n.at(1).commit_index();
  REQUIRE(n.at(1).log().entry_at(committed).data == raft::bytes("only-on-1"));
  // 1 dies; 2 comes back: the witness refuses it (its log is behind).
  n.heal();
  n.isolate(1);
  for (int k = 0; k < 100; ++k) n.tick_all();
  CHECK_FALSE(n.at(2).is_leader());
  // 1 returns: the entry survives and reaches 2 in full.
  n.heal();
  for (int k = 0; k < 60 && !(n.leader() && n.at(2).commit_index() >= committed); ++k) n.tick_all();
  REQUIRE(n.at(2).commit_index() >= committed);
  CHECK(n.at(2).log().entry_at(committed).data == raft::bytes("only-on-1"));
}

TEST_CASE("membership: a witness added by a change gets a snapshot without data", "[membership][witness]") {
  net n({1, 2, 3});
  n.elect(1);
  for (int k = 0; k < 5; ++k) (void)n.at(1).propose(raft::bytes("v"), n.out(1));
  n.deliver();
  n.tick_all(1);
  REQUIRE(n.at(1).compact(n.at(1).applied_index(), raft::bytes("big state"), n.out(1)) == raft::compact_status::ok);
  n.join(4);
  const std::size_t mark = n.sent.size();
  REQUIRE(n.at(1).change_membership(one(change_type::add_witness, 4), n.out(1)).ok());
  n.deliver();
  n.tick_all(4);
  const auto chunks = n.sent_of<raft::install_snapshot>(mark);
  REQUIRE_FALSE(chunks.empty());
  for (const auto& c : chunks) {
    CHECK(c.to == 4);
    CHECK(std::get<raft::install_snapshot>(c.body).data.empty());
    CHECK(std::get<raft::install_snapshot>(c.body).total_size == 0);
  }
  CHECK(n.at(4).configuration().is_witness(4));
  CHECK(n.at(4).commit_index() == n.at(1).commit_index());
  // Witness + 1 now a quorum of {1,2,3,4}? No: 4 voters need 3.
  CHECK(n.at(1).voters().incoming.size() == 4);
}

TEST_CASE("membership: a single voter with a learner commits alone", "[membership][learner]") {
  net n({1});
  n.elect(1);
  n.join(2);
  REQUIRE(n.at(1).change_membership(one(change_type::add_learner, 2), n.out(1)).ok());
  n.isolate(2);
  n.tick_all(1);
  const index_t before = n.at(1).commit_index();
  (void)n.at(1).propose(raft::bytes("solo"), n.out(1));
  n.collect(1);
  CHECK(n.at(1).commit_index() == before.next());
}

TEST_CASE("membership: a leader that a joint change removes leads through the joint configuration, leaves it, "
          "then steps down", "[membership][removal][joint]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  change c;
  c.changes = {{change_type::remove, 1}, {change_type::add_voter, 4}};
  auto r = n.at(1).change_membership(c, n.out(1));
  REQUIRE(r.ok());
  CHECK(n.at(1).configuration().joint());
  CHECK(n.at(1).voters().contains(1));  // still a voter of the old set
  n.deliver();
  for (int k = 0; k < 10 && n.at(1).is_leader(); ++k) n.tick_all();
  CHECK_FALSE(n.at(1).is_leader());
  CHECK_FALSE(n.at(1).configuration().joint());
  CHECK(same_set(n.at(1).configuration().voters, {2, 3, 4}));
  for (int k = 0; k < 40 && !n.leader(); ++k) n.tick_all();
  REQUIRE(n.leader().has_value());
  CHECK(*n.leader() != 1);
  // The new leader goes on committing.
  const nid l = *n.leader();
  const index_t before = n.at(l).commit_index();
  (void)n.at(l).propose(raft::bytes("after"), n.out(l));
  n.deliver();
  n.tick_all(1);
  CHECK(n.at(l).commit_index() > before);
}

TEST_CASE("membership: a leader demoted to learner steps down once the change commits and keeps the log",
          "[membership][removal][learner]") {
  net n({1, 2, 3});
  n.elect(1);
  auto r = n.at(1).change_membership(one(change_type::add_learner, 1), n.out(1));
  REQUIRE(r.ok());
  CHECK(n.at(1).configuration().is_learner(1));
  n.deliver();
  n.tick_all(3);
  CHECK_FALSE(n.at(1).is_leader());
  const auto l = n.leader();
  REQUIRE(l.has_value());
  CHECK(n.at(*l).progress_of(1) != nullptr);  // still a member: it receives the log
  (void)n.at(*l).propose(raft::bytes("for the learner"), n.out(*l));
  n.deliver();
  n.tick_all(1);
  CHECK(n.at(1).commit_index() == n.at(*l).commit_index());
}

TEST_CASE("membership: a node restarted while joint keeps the joint configuration and needs both majorities",
          "[membership][joint][restart]") {
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  n.join(5);
  change c;
  c.changes = {{change_type::add_voter, 4}, {change_type::add_voter, 5}};
  c.how = raft::transition::joint_explicit;
  REQUIRE(n.at(1).change_membership(c, n.out(1)).ok());
  n.deliver();
  n.tick_all(2);
  n.restart(2, {1, 2, 3});
  CHECK(n.at(2).configuration().joint());
  CHECK(same_set(n.at(2).configuration().voters_outgoing, {1, 2, 3}));
  CHECK(n.at(2).voters().joint());
}

TEST_CASE("membership: a joining node that compacts before the entry that added it can still restart",
          "[membership][snapshot][regression]") {
  // Found by the KV service: the joiner gets the log from index 1 in small
  // batches, applies entries older than its own addition, and compacts them.
  auto c1 = cfg_of(1, {1});
  c1.max_append_entries = 4;
  node n1(c1);
  node n2(cfg_of(2, {}));
  out_t o1, o2;
  n1.campaign(o1);
  for (int i = 0; i < 10; ++i) REQUIRE(n1.propose(raft::bytes("x"), o1).ok());
  o1.clear();
  const auto r = n1.change_membership(one(change_type::add_learner, 2), o1);
  REQUIRE(r.ok());
  for (int round = 0; round < 50 && n2.applied_index() < index_t{4}; ++round) {
    std::vector<msg> q(o1.messages.begin(), o1.messages.end());
    o1.clear();
    if (q.empty()) n1.tick(o1);
    for (auto& m : q)
      if (m.to == 2) (void)n2.step(m, o2);
    for (auto& m : o2.messages)
      if (m.to == 1) (void)n1.step(m, o1);
    o2.messages.clear();
  }
  REQUIRE(n2.applied_index() >= index_t{4});
  REQUIRE(n2.applied_index() < r.index);
  CHECK(n2.configuration().voters.empty());
  o2.committed.clear();
  const index_t upto = n2.applied_index();
  REQUIRE(n2.compact(upto, raft::bytes("state"), o2) == raft::compact_status::ok);
  CHECK(n2.log().snapshot_membership().empty());  // nothing known to record
  node again(cfg_of(2, {}), n2.log());
  CHECK(again.configuration().voters.empty());
  CHECK(again.log().snapshot_index() == upto);
}

TEST_CASE("membership: a snapshot chunk whose membership does not decode is malformed, first chunk or last",
          "[membership][hostile]") {
  net n({1, 2, 3});
  n.elect(1);
  for (bool done : {false, true}) {
    raft::install_snapshot chunk{index_t{50}, n.at(1).term(), 10, 0, done, raft::bytes(done ? "0123456789" : "01234"),
                                 raft::bytes("garbage")};
    out_t o;
    CHECK(n.at(2).step(msg{1, 2, n.at(1).term(), chunk}, o) == raft::step_status::malformed);
    CHECK(n.at(2).log().snapshot_index() == index_t{});
  }
}

TEST_CASE("membership: old voters that an uncommitted leave-joint entry demotes still campaign until it commits "
          "(thesis 4.2.2)", "[membership][joint][regression]") {
  // Found by the simulator's membership soak. Joint {1,2,3} & {3,4,5}; the
  // leave entry (1 and 2 become learners) reaches 2 only, then leader 1 is
  // gone. 2 holds the longest log, so 3, 4 and 5 (still joint: they need 2
  // of {1,2,3}) cannot win without it; 2's newest configuration says it is a
  // learner. A server of the old configuration may still lead until the new
  // one commits: 2 campaigns, counting votes of {3,4,5} only, commits the
  // leave entry and steps down.
  net n({1, 2, 3});
  n.elect(1);
  n.join(4);
  n.join(5);
  change learners;
  learners.changes = {{change_type::add_learner, 4}, {change_type::add_learner, 5}};
  REQUIRE(n.at(1).change_membership(learners, n.out(1)).ok());
  n.deliver();
  n.tick_all(2);
  change swap;
  swap.changes = {{change_type::add_learner, 1}, {change_type::add_learner, 2}, {change_type::add_voter, 4},
                  {change_type::add_voter, 5}};
  swap.how = raft::transition::joint_explicit;
  const auto j = n.at(1).change_membership(swap, n.out(1));
  REQUIRE(j.ok());
  n.deliver();
  n.tick_all(2);
  REQUIRE(n.at(1).commit_index() >= j.index);
  for (nid i : {3, 4, 5}) n.cut.insert({1, i}), n.cut.insert({i, 1});
  const auto leave = n.at(1).leave_joint(n.out(1));
  REQUIRE(leave.ok());
  n.deliver();
  REQUIRE(n.at(2).last_index() >= leave.index);
  REQUIRE(n.at(3).last_index() < leave.index);
  n.heal();
  n.isolate(1);  // the old leader is gone for good
  for (int k = 0; k < 300 && !(n.leader() && n.at(*n.leader()).commit_index() >= leave.index &&
                               n.at(*n.leader()).configuration().voters.size() == 3 &&
                               n.at(*n.leader()).voters().contains(*n.leader()));
       ++k)
    n.tick_all();
  const auto l = n.leader();
  REQUIRE(l.has_value());
  CHECK(n.at(*l).commit_index() >= leave.index);
  CHECK_FALSE(n.at(*l).configuration().joint());
  CHECK(same_set(n.at(*l).configuration().voters, {3, 4, 5}));
  CHECK(n.at(*l).voters().contains(*l));  // 2 led only to commit the change, then handed over
  CHECK_FALSE(n.at(2).is_leader());
}

TEST_CASE("membership: a removed witness cannot come back as a voter or learner while the log shows it was one",
          "[membership][witness][misuse]") {
  // Its log holds entries without payloads: as a full member it could lead
  // and miss committed data. It must come back as a new node, empty.
  net n({1, 2, 3}, {3});
  n.elect(1);
  REQUIRE(n.at(1).change_membership(one(change_type::remove, 3), n.out(1)).ok());
  n.deliver();
  n.tick_all(2);
  const index_t last = n.at(1).last_index();
  CHECK(n.at(1).change_membership(one(change_type::add_voter, 3), n.out(1)).status ==
        change_status::witness_conversion);
  CHECK(n.at(1).change_membership(one(change_type::add_learner, 3), n.out(1)).status ==
        change_status::witness_conversion);
  CHECK(n.at(1).last_index() == last);
  CHECK(n.at(1).change_membership(one(change_type::add_witness, 3), n.out(1)).ok());
}
