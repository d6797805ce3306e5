// Unit and property tests for raft/membership.hpp, the pure functions behind
// membership changes: apply_change (etcd ConfChangeV2 semantics: single
// server changes, joint configurations, learners, witnesses), leave_joint,
// valid(), membership::quorum(), and the versioned configuration-entry
// encoding (encode_config_entry / decode_config_entry).
//
// Known cases first, then randomized tests. Randomized tests print their
// seed; RAFT_TEST_SEED=<n> replays one.

#include <catch2/catch.hpp>

#include <raft/bytes.hpp>
#include <raft/membership.hpp>
#include <raft/quorum.hpp>
#include <raft/random.hpp>
#include <raft/transport.hpp>
#include <raft/wire.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace {

using id = std::uint64_t;
using M = raft::membership<id>;
using raft::change_status;
using raft::change_type;
using raft::transition;
using transport = raft::default_transport;
using ids = std::vector<id>;

std::uint64_t test_seed(std::uint64_t fallback) {
  if (const char* s = std::getenv("RAFT_TEST_SEED"); s != nullptr && *s != '\0') return std::strtoull(s, nullptr, 0);
  return fallback;
}

/// A membership from its five lists.
M mk(ids voters, ids outgoing = {}, ids learners = {}, ids learners_next = {}, ids witnesses = {},
     bool auto_leave = false) {
  M m;
  m.voters = std::move(voters);
  m.voters_outgoing = std::move(outgoing);
  m.learners = std::move(learners);
  m.learners_next = std::move(learners_next);
  m.witnesses = std::move(witnesses);
  m.auto_leave = auto_leave;
  return m;
}

raft::conf_change<id> change(std::initializer_list<raft::member_change<id>> items,
                             transition how = transition::automatic) {
  raft::conf_change<id> c;
  c.changes = items;
  c.how = how;
  return c;
}

raft::member_change<id> add_voter(id n) { return {change_type::add_voter, n}; }
raft::member_change<id> add_learner(id n) { return {change_type::add_learner, n}; }
raft::member_change<id> add_witness(id n) { return {change_type::add_witness, n}; }
raft::member_change<id> remove(id n) { return {change_type::remove, n}; }

// Strings are built by appending (not "lit" + string): g++ 12 -O3 warns falsely on the latter.
std::string show(const ids& v) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i != 0) s += ' ';
    s += std::to_string(v[i]);
  }
  s += '}';
  return s;
}
std::string show(const M& m) {
  std::string s = "voters ";
  s += show(m.voters);
  s += " outgoing ";
  s += show(m.voters_outgoing);
  s += " learners ";
  s += show(m.learners);
  s += " learners_next ";
  s += show(m.learners_next);
  s += " witnesses ";
  s += show(m.witnesses);
  if (m.auto_leave) s += " auto_leave";
  return s;
}

/// apply_change's membership; fails the test if it refused.
M applied(const M& current, const raft::conf_change<id>& c) {
  INFO("current: " << show(current));
  auto r = raft::apply_change(current, c);
  if (const auto* why = std::get_if<change_status>(&r)) FAIL("refused: " << raft::to_string(*why));
  M next = std::get<M>(r);
  INFO("next: " << show(next));
  CHECK(raft::valid(next));
  return next;
}

/// apply_change's refusal; fails the test if it applied the change.
change_status refusal(const M& current, const raft::conf_change<id>& c) {
  INFO("current: " << show(current));
  auto r = raft::apply_change(current, c);
  if (const auto* next = std::get_if<M>(&r)) FAIL("applied: " << show(*next));
  return std::get<change_status>(r);
}

bool same_set(ids a, ids b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

std::optional<raft::config_entry<id>> decode(const std::vector<std::byte>& b) {
  return raft::decode_config_entry<transport>(raft::bytes(b.data(), b.size()));
}
std::vector<std::byte> encode(const M& m, const raft::bytes& context = {}) {
  const raft::bytes b = raft::encode_config_entry<transport>(m, context);
  return {b.data(), b.data() + b.size()};
}

}  // namespace

// ======================================================= apply_change: kinds

TEST_CASE("apply_change: adding a voter is a single-server change", "[membership]") {
  const M next = applied(mk({1, 2, 3}), change({add_voter(4)}));
  CHECK(same_set(next.voters, {1, 2, 3, 4}));
  CHECK_FALSE(next.joint());
  CHECK(next.voters_outgoing.empty());
  CHECK(next.learners.empty());
  CHECK(next.witnesses.empty());
  CHECK_FALSE(next.auto_leave);
  CHECK(next.is_voter(4));
}

TEST_CASE("apply_change: add_voter of a learner promotes it", "[membership]") {
  const M next = applied(mk({1, 2, 3}, {}, {4, 5}), change({add_voter(4)}));
  CHECK(same_set(next.voters, {1, 2, 3, 4}));
  CHECK(same_set(next.learners, {5}));
  CHECK_FALSE(next.joint());
  CHECK(next.is_voter(4));
  CHECK_FALSE(next.is_learner(4));
}

TEST_CASE("apply_change: add_learner of a voter demotes it; of a new node adds a learner", "[membership]") {
  const M demoted = applied(mk({1, 2, 3}), change({add_learner(3)}));
  CHECK(same_set(demoted.voters, {1, 2}));
  CHECK(same_set(demoted.learners, {3}));
  CHECK_FALSE(demoted.joint());  // one voter changed: applied directly
  CHECK(demoted.learners_next.empty());
  CHECK_FALSE(demoted.is_voter(3));

  const M added = applied(mk({1, 2, 3}), change({add_learner(7)}));
  CHECK(same_set(added.voters, {1, 2, 3}));
  CHECK(same_set(added.learners, {7}));
  CHECK_FALSE(added.joint());
  CHECK(added.contains(7));
}

TEST_CASE("apply_change: add_witness adds a voter that is a witness", "[membership]") {
  const M next = applied(mk({1, 2}), change({add_witness(3)}));
  CHECK(same_set(next.voters, {1, 2, 3}));
  CHECK(same_set(next.witnesses, {3}));
  CHECK(next.is_witness(3));
  CHECK(next.is_voter(3));
  CHECK_FALSE(next.joint());
  // It counts toward the quorum like any voter: {1, 3} is a majority of three.
  CHECK(next.quorum().has_quorum([](const id& n) { return n == 1 || n == 3; }));
}

TEST_CASE("apply_change: remove takes out a voter, a learner or a witness", "[membership]") {
  const M current = mk({1, 2, 3, 4}, {}, {5, 6}, {}, {4});
  SECTION("a voter") {
    const M next = applied(current, change({remove(2)}));
    CHECK(same_set(next.voters, {1, 3, 4}));
    CHECK(same_set(next.learners, {5, 6}));
    CHECK(same_set(next.witnesses, {4}));
    CHECK_FALSE(next.contains(2));
    CHECK_FALSE(next.joint());
  }
  SECTION("a learner") {
    const M next = applied(current, change({remove(6)}));
    CHECK(same_set(next.voters, {1, 2, 3, 4}));
    CHECK(same_set(next.learners, {5}));
    CHECK_FALSE(next.contains(6));
    CHECK_FALSE(next.joint());
  }
  SECTION("a witness") {
    const M next = applied(current, change({remove(4)}));
    CHECK(same_set(next.voters, {1, 2, 3}));
    CHECK(next.witnesses.empty());
    CHECK_FALSE(next.contains(4));
    CHECK_FALSE(next.joint());
  }
  SECTION("learners only: any number of them at once, still directly") {
    const M next = applied(current, change({remove(5), remove(6), add_learner(7), add_learner(8)}));
    CHECK(same_set(next.learners, {7, 8}));
    CHECK_FALSE(next.joint());
  }
}

// ================================================== apply_change: refusals

TEST_CASE("apply_change refuses a change while the configuration is joint", "[membership]") {
  const M joint = mk({1, 2, 4}, {1, 2, 3}, {}, {}, {}, true);
  REQUIRE(raft::valid(joint));
  CHECK(refusal(joint, change({add_learner(9)})) == change_status::in_joint);
  CHECK(refusal(joint, change({remove(4)})) == change_status::in_joint);
  CHECK(refusal(joint, change({})) == change_status::in_joint);  // checked first
}

TEST_CASE("apply_change refuses an empty change", "[membership]") {
  CHECK(refusal(mk({1, 2, 3}), change({})) == change_status::empty_change);
  CHECK(refusal(mk({1, 2, 3}), change({}, transition::joint)) == change_status::empty_change);
  // A change_type no enumerator names (decoded garbage) is refused the same way.
  CHECK(refusal(mk({1, 2, 3}), change({{static_cast<change_type>(raft::change_type_count), 4}})) ==
        change_status::empty_change);
}

TEST_CASE("apply_change refuses a change that lists a node twice", "[membership]") {
  CHECK(refusal(mk({1, 2, 3}), change({add_voter(4), add_voter(4)})) == change_status::duplicate_id);
  CHECK(refusal(mk({1, 2, 3}), change({add_voter(4), remove(4)})) == change_status::duplicate_id);
  CHECK(refusal(mk({1, 2, 3}), change({remove(3), add_learner(5), add_learner(3)})) == change_status::duplicate_id);
}

TEST_CASE("apply_change refuses to remove a node that is not a member", "[membership]") {
  CHECK(refusal(mk({1, 2, 3}), change({remove(4)})) == change_status::unknown_node);
  CHECK(refusal(mk({1, 2, 3}, {}, {4}), change({add_voter(5), remove(6)})) == change_status::unknown_node);
}

TEST_CASE("apply_change refuses to give a node the role it already has", "[membership]") {
  const M current = mk({1, 2, 3}, {}, {4}, {}, {3});
  CHECK(refusal(current, change({add_voter(1)})) == change_status::already_member);
  CHECK(refusal(current, change({add_learner(4)})) == change_status::already_member);
  CHECK(refusal(current, change({add_witness(3)})) == change_status::already_member);
}

TEST_CASE("apply_change refuses to turn a witness into a voter or learner, or the reverse", "[membership]") {
  const M current = mk({1, 2, 3}, {}, {4}, {}, {3});
  // From a witness ...
  CHECK(refusal(current, change({add_voter(3)})) == change_status::witness_conversion);
  CHECK(refusal(current, change({add_learner(3)})) == change_status::witness_conversion);
  // ... and to a witness, from a voter or a learner.
  CHECK(refusal(current, change({add_witness(1)})) == change_status::witness_conversion);
  CHECK(refusal(current, change({add_witness(4)})) == change_status::witness_conversion);
}

TEST_CASE("apply_change refuses a result without a voter able to lead", "[membership]") {
  CHECK(refusal(mk({1}), change({remove(1)})) == change_status::no_voters);
  CHECK(refusal(mk({1, 2}), change({remove(1), remove(2)})) == change_status::no_voters);
  CHECK(refusal(mk({1}, {}, {2}), change({add_learner(1)})) == change_status::no_voters);
  // Only witnesses left: they vote but never lead.
  CHECK(refusal(mk({1, 2, 3}, {}, {}, {}, {2, 3}), change({remove(1)})) == change_status::no_voters);
  CHECK(refusal(mk({1, 2, 3}, {}, {}, {}, {2, 3}), change({add_learner(1)})) == change_status::no_voters);
  CHECK(refusal(mk({1}), change({remove(1), add_witness(2)}, transition::joint)) == change_status::no_voters);
  // One voter able to lead is enough.
  CHECK(applied(mk({1, 2, 3}, {}, {}, {}, {2, 3}), change({remove(2)})).voters.size() == 2);
}

TEST_CASE("apply_change refuses more than max_members voters and learners", "[membership]") {
  M big = mk({1, 2, 3});
  for (id n = 4; n <= raft::max_members; ++n) big.learners.push_back(n);
  REQUIRE(big.members().size() == raft::max_members);
  REQUIRE(raft::valid(big));
  CHECK(refusal(big, change({add_learner(5000)})) == change_status::too_large);
  CHECK(refusal(big, change({add_voter(5000)})) == change_status::too_large);
  CHECK(refusal(big, change({add_witness(5000)})) == change_status::too_large);
  // At the limit: a swap keeps the size.
  const M swapped = applied(big, change({remove(4), add_learner(5000)}));
  CHECK(swapped.members().size() == raft::max_members);
  CHECK(swapped.is_learner(5000));
}

TEST_CASE("Every change_status has a distinct description", "[membership]") {
  std::vector<std::string> seen;
  for (int s = 0; s <= static_cast<int>(change_status::too_large); ++s) {
    const std::string d = raft::to_string(static_cast<change_status>(s));
    CAPTURE(s, d);
    CHECK(d != "?");
    CHECK(std::find(seen.begin(), seen.end(), d) == seen.end());
    seen.push_back(d);
  }
}

// ================================================= apply_change: transitions

TEST_CASE("transition::automatic: one voter changed is simple, two or more go through a joint configuration",
          "[membership]") {
  SECTION("one voter") {
    const M next = applied(mk({1, 2, 3}), change({add_voter(4), add_learner(5)}));
    CHECK_FALSE(next.joint());
    CHECK_FALSE(next.auto_leave);
  }
  SECTION("two voters added") {
    const M next = applied(mk({1, 2, 3}), change({add_voter(4), add_voter(5)}));
    REQUIRE(next.joint());
    CHECK(same_set(next.voters, {1, 2, 3, 4, 5}));
    CHECK(same_set(next.voters_outgoing, {1, 2, 3}));
    CHECK(next.auto_leave);
  }
  SECTION("one voter replaced by another (two voters differ)") {
    const M next = applied(mk({1, 2, 3}), change({remove(3), add_voter(4)}));
    REQUIRE(next.joint());
    CHECK(same_set(next.voters, {1, 2, 4}));
    CHECK(same_set(next.voters_outgoing, {1, 2, 3}));
    CHECK(next.auto_leave);
    // Until the joint configuration is left, 3 still votes in the old set.
    CHECK(next.is_voter(3));
    CHECK(next.contains(3));
  }
}

TEST_CASE("transition::joint and joint_explicit always go through a joint configuration", "[membership]") {
  const M a = applied(mk({1, 2, 3}), change({add_voter(4)}, transition::joint));
  REQUIRE(a.joint());
  CHECK(same_set(a.voters, {1, 2, 3, 4}));
  CHECK(same_set(a.voters_outgoing, {1, 2, 3}));
  CHECK(a.auto_leave);

  const M e = applied(mk({1, 2, 3}), change({add_voter(4)}, transition::joint_explicit));
  REQUIRE(e.joint());
  CHECK(same_set(e.voters, {1, 2, 3, 4}));
  CHECK(same_set(e.voters_outgoing, {1, 2, 3}));
  CHECK_FALSE(e.auto_leave);

  // Even a change of learners only: the two voter sets are then equal.
  const M l = applied(mk({1, 2, 3}), change({add_learner(9)}, transition::joint_explicit));
  REQUIRE(l.joint());
  CHECK(same_set(l.voters, l.voters_outgoing));
  CHECK(same_set(l.learners, {9}));
}

TEST_CASE("A voter demoted in a joint change waits in learners_next, still voting in the old set", "[membership]") {
  const M next = applied(mk({1, 2, 3}), change({add_learner(3), add_voter(4)}));
  REQUIRE(next.joint());
  CHECK(same_set(next.voters, {1, 2, 4}));
  CHECK(same_set(next.voters_outgoing, {1, 2, 3}));
  CHECK(same_set(next.learners_next, {3}));
  CHECK(next.learners.empty());  // not a learner yet: a node is never both
  CHECK(next.is_learner(3));
  CHECK(next.is_voter(3));
  // 3's vote still counts in the outgoing majority.
  CHECK(next.quorum().outgoing.contains(3));
  CHECK_FALSE(next.quorum().incoming.contains(3));
  // A demotion with joint_explicit too.
  const M e = applied(mk({1, 2, 3}), change({add_learner(1)}, transition::joint_explicit));
  CHECK(same_set(e.learners_next, {1}));
  CHECK(same_set(e.voters, {2, 3}));
}

// ============================================================== leave_joint

TEST_CASE("leave_joint keeps the incoming voters, makes learners_next learners, drops outgoing witnesses",
          "[membership]") {
  // 1 2 3 4 with witness 4 and learner 5; then: demote 3, remove witness 4,
  // add voter 6 and witness 7.
  const M start = mk({1, 2, 3, 4}, {}, {5}, {}, {4});
  const M joint = applied(start, change({add_learner(3), remove(4), add_voter(6), add_witness(7)}));
  REQUIRE(joint.joint());
  CHECK(same_set(joint.voters, {1, 2, 6, 7}));
  CHECK(same_set(joint.voters_outgoing, {1, 2, 3, 4}));
  CHECK(same_set(joint.learners, {5}));
  CHECK(same_set(joint.learners_next, {3}));
  // The removed witness stays a witness while it votes in the old set.
  CHECK(same_set(joint.witnesses, {4, 7}));

  const M left = raft::leave_joint(joint);
  CHECK(raft::valid(left));
  CHECK_FALSE(left.joint());
  CHECK(left.voters_outgoing.empty());
  CHECK(same_set(left.voters, {1, 2, 6, 7}));
  CHECK(same_set(left.learners, {5, 3}));
  CHECK(left.learners_next.empty());
  CHECK(same_set(left.witnesses, {7}));
  CHECK_FALSE(left.auto_leave);
  CHECK_FALSE(left.contains(4));
  // The simple configuration it leaves to accepts changes again.
  CHECK(applied(left, change({remove(3)})).learners == ids{5});
}

// ======================================================== membership::quorum

TEST_CASE("The quorum of a joint membership needs a majority of both voter sets", "[membership]") {
  const M joint = mk({1, 2, 3}, {1, 4, 5}, {}, {}, {}, true);
  REQUIRE(raft::valid(joint));
  const auto q = joint.quorum();
  REQUIRE(q.joint());
  auto votes_of = [&](std::map<id, bool> given) {
    return q.vote([&](const id& n) -> std::optional<bool> {
      auto it = given.find(n);
      if (it == given.end()) return std::nullopt;
      return it->second;
    });
  };
  // A majority of the new voters alone, or of the old alone, is not enough.
  CHECK(votes_of({{1, true}, {2, true}, {3, true}}) == raft::vote_result::pending);
  CHECK(votes_of({{1, true}, {4, true}, {5, true}}) == raft::vote_result::pending);
  CHECK(votes_of({{1, true}, {2, true}, {3, true}, {4, false}, {5, false}}) == raft::vote_result::lost);
  // One of each majority, sharing node 1.
  CHECK(votes_of({{1, true}, {2, true}, {4, true}}) == raft::vote_result::won);
  // has_quorum and committed follow the same rule.
  CHECK_FALSE(q.has_quorum([](const id& n) { return n <= 3; }));
  CHECK(q.has_quorum([](const id& n) { return n == 1 || n == 3 || n == 5; }));
  const std::map<id, std::uint64_t> acks = {{1, 10}, {2, 10}, {3, 10}, {4, 1}, {5, 7}};
  CHECK(q.committed<std::uint64_t>([&](const id& n) { return acks.at(n); }) == std::uint64_t{7});
  // A simple membership's quorum is its voters' majority alone.
  const auto s = mk({1, 2, 3}).quorum();
  CHECK_FALSE(s.joint());
  CHECK(s.has_quorum([](const id& n) { return n <= 2; }));
  CHECK(s.voters().size() == 3);
  // Learners and learners_next never count; witnesses do.
  const M mixed = mk({1, 2, 3}, {1, 2, 6}, {7}, {6}, {3}, true);
  REQUIRE(raft::valid(mixed));
  CHECK(same_set(mixed.quorum().voters(), {1, 2, 3, 6}));
}

// ==================================================================== valid()

TEST_CASE("valid() accepts what apply_change builds and refuses broken memberships", "[membership]") {
  SECTION("valid ones") {
    CHECK(raft::valid(mk({1})));
    CHECK(raft::valid(mk({1, 2, 3}, {}, {4, 5})));
    CHECK(raft::valid(mk({1, 2, 3}, {}, {}, {}, {2, 3})));
    CHECK(raft::valid(mk({1, 2, 4}, {1, 2, 3}, {5}, {3}, {2}, true)));
    CHECK(raft::valid(mk({1, 2}, {1, 2}, {}, {}, {}, false)));  // joint, left by request
  }
  SECTION("duplicates in any list") {
    CHECK_FALSE(raft::valid(mk({1, 2, 1})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {3, 3})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {4, 4})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {1, 3}, {}, {3, 3})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {}, {}, {2, 2})));
  }
  SECTION("a learner that is a voter, in either set, or also in learners_next") {
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {2})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {1, 3}, {3}, {}, {}, true)));
    CHECK_FALSE(raft::valid(mk({1, 2}, {1, 3}, {3}, {3}, {}, true)));
  }
  SECTION("learners_next outside the outgoing voters, or still an incoming voter") {
    CHECK_FALSE(raft::valid(mk({1, 2}, {1, 3}, {}, {4}, {}, true)));
    CHECK_FALSE(raft::valid(mk({1, 2, 3}, {1, 3}, {}, {3}, {}, true)));
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {}, {2})));  // not joint at all
  }
  SECTION("a witness that is not a voter") {
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {}, {}, {3})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {3}, {}, {3})));
  }
  SECTION("auto_leave without a joint configuration") {
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {}, {}, {}, true)));
  }
  SECTION("no voter able to lead: none at all, or only witnesses, in either set") {
    CHECK_FALSE(raft::valid(M{}));
    CHECK_FALSE(raft::valid(mk({}, {}, {1})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {}, {}, {}, {1, 2})));
    CHECK_FALSE(raft::valid(mk({1, 2}, {3, 4}, {}, {}, {3, 4}, true)));
    CHECK_FALSE(raft::valid(mk({3, 4}, {1, 2}, {}, {}, {3, 4}, true)));
    CHECK_FALSE(raft::valid(mk({}, {1, 2}, {}, {}, {}, true)));
  }
  SECTION("more than max_members members") {
    M m = mk({1});
    for (id n = 2; n <= raft::max_members; ++n) m.learners.push_back(n);
    CHECK(raft::valid(m));
    m.learners.push_back(raft::max_members + 1);
    CHECK_FALSE(raft::valid(m));
  }
}

// ======================================================= configuration entry

TEST_CASE("A configuration entry has a pinned encoding", "[membership]") {
  STATIC_REQUIRE(raft::config_entry_format == 1);
  // format 1, flags (auto_leave) 1, voters (3: 1 2 4), outgoing (3: 1 2 3),
  // learners (1: 300), learners_next (1: 3), witnesses (1: 2), context (2: "ab")
  const M m = mk({1, 2, 4}, {1, 2, 3}, {300}, {3}, {2}, true);
  REQUIRE(raft::valid(m));
  const std::vector<std::byte> expected = [] {
    std::vector<std::byte> v;
    for (unsigned b : {1u, 1u, 3u, 1u, 2u, 4u, 3u, 1u, 2u, 3u, 1u, 0xacu, 0x02u, 1u, 3u, 1u, 2u, 2u, unsigned{'a'},
                       unsigned{'b'}})
      v.push_back(static_cast<std::byte>(b));
    return v;
  }();
  CHECK(encode(m, raft::bytes("ab")) == expected);
  const auto e = decode(expected);
  REQUIRE(e.has_value());
  CHECK(e->members == m);
  CHECK(e->context.str() == "ab");
  // The membership alone (a snapshot's): an empty context, one byte.
  CHECK(encode(mk({5})) == std::vector<std::byte>{std::byte{1}, std::byte{0}, std::byte{1}, std::byte{5},
                                                  std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                                                  std::byte{0}});
}

namespace {

/// A random valid membership. Ids come from a pool of `pool` ids (small
/// numbers, or ids around varint boundaries); sometimes joint, with
/// learners_next, witnesses in either set and auto_leave.
M random_valid(raft::splitmix64& g, std::size_t pool) {
  auto below = [&](std::uint64_t n) { return n == 0 ? 0 : g.next() % n; };
  std::vector<id> p;
  const bool wide = below(3) == 0;
  // (Every draw is its own statement: the order in which operands are
  // evaluated differs between compilers, and a seed must replay the same
  // run on all of them.)
  while (p.size() < pool) {
    // Wide ids: near 2^0, 2^7, ..., 2^63 (where varints grow a byte), or near 2^64.
    id n = 0;
    if (!wide) {
      n = 1 + below(3 * pool);
    } else if (below(10) == 0) {
      n = UINT64_MAX - below(4 * pool);
    } else {
      const std::uint64_t base = std::uint64_t{1} << (7 * below(10));
      n = base - 1 + below(4 * pool);
    }
    if (std::find(p.begin(), p.end(), n) == p.end()) p.push_back(n);
  }
  M m;
  // Each id: incoming voter, outgoing voter, both, learner, or nothing.
  const bool joint = below(3) == 0;
  for (id n : p) {
    switch (below(joint ? 6 : 4)) {
      case 0:
      case 1: m.voters.push_back(n); break;
      case 2: m.learners.push_back(n); break;
      case 3: break;
      case 4: m.voters_outgoing.push_back(n); break;
      default:
        m.voters.push_back(n);
        m.voters_outgoing.push_back(n);
    }
  }
  if (m.voters.empty()) m.voters.push_back(p[0]), std::erase(m.learners, p[0]);
  if (joint && m.voters_outgoing.empty()) m.voters_outgoing.push_back(m.voters[0]);
  for (id n : m.voters_outgoing)
    if (!M::has(m.voters, n) && below(2) == 0) m.learners_next.push_back(n);
  // Witnesses: any voter but one able to lead in each set.
  for (id n : p)
    if (m.is_voter(n) && n != m.voters[0] && (m.voters_outgoing.empty() || n != m.voters_outgoing[0]) &&
        !M::has(m.learners_next, n) && below(4) == 0)
      m.witnesses.push_back(n);
  m.auto_leave = m.joint() && below(2) == 0;
  // Lists in a random order: membership equality ignores it, the encoding keeps it.
  for (auto* list : {&m.voters, &m.voters_outgoing, &m.learners, &m.learners_next, &m.witnesses})
    for (std::size_t i = list->size(); i > 1; --i) std::swap((*list)[i - 1], (*list)[below(i)]);
  return m;
}

}  // namespace

TEST_CASE("Random valid memberships survive an encode/decode round trip", "[membership][property]") {
  const std::uint64_t seed = test_seed(0xC0F16);
  INFO("seed " << seed << " (replay: RAFT_TEST_SEED=" << seed << ")");
  raft::splitmix64 g;
  g.seed(seed);
  std::size_t joint = 0, with_witnesses = 0, with_next = 0;
  for (int it = 0; it < 2000; ++it) {
    CAPTURE(it);
    const std::size_t pool = it % 100 == 99 ? raft::max_members : 1 + g.next() % 12;
    const M m = random_valid(g, pool);
    INFO(show(m));
    REQUIRE(raft::valid(m));
    std::string ctx(static_cast<std::size_t>(g.next() % (it % 10 == 0 ? 2000 : 8)), '\0');
    for (auto& c : ctx) c = static_cast<char>(g.next());
    const auto enc = encode(m, raft::bytes(ctx));
    const auto e = decode(enc);
    REQUIRE(e.has_value());
    CHECK(e->members == m);
    CHECK(e->context.str() == ctx);
    // The lists come back in their order: re-encoding gives the same bytes.
    CHECK(e->members.voters == m.voters);
    CHECK(encode(e->members, e->context) == enc);
    joint += m.joint() ? 1 : 0;
    with_witnesses += m.witnesses.empty() ? 0 : 1;
    with_next += m.learners_next.empty() ? 0 : 1;
  }
  CAPTURE(joint, with_witnesses, with_next);
  CHECK(joint > 200);
  CHECK(with_witnesses > 200);
  CHECK(with_next > 50);
}

TEST_CASE("decode_config_entry refuses every truncation, an unknown format or flags byte, and trailing bytes",
          "[membership]") {
  std::vector<std::vector<std::byte>> samples = {
      encode(mk({1})),
      encode(mk({1, 2, 3}, {}, {4, 5}), raft::bytes("context")),
      encode(mk({1, 2, 4}, {1, 2, 3}, {300}, {3}, {2}, true), raft::bytes("ab")),
      encode(mk({UINT64_MAX, 128, 127}, {}, {}, {}, {128})),
  };
  for (const auto& enc : samples) {
    REQUIRE(decode(enc).has_value());
    for (std::size_t len = 0; len < enc.size(); ++len) {
      CAPTURE(len);
      CHECK_FALSE(decode(std::vector<std::byte>(enc.begin(), enc.begin() + static_cast<std::ptrdiff_t>(len))));
    }
    for (unsigned format = 0; format < 256; ++format) {
      if (format == raft::config_entry_format) continue;
      auto bad = enc;
      bad[0] = static_cast<std::byte>(format);
      CAPTURE(format);
      CHECK_FALSE(decode(bad));
    }
    for (unsigned flags = 2; flags < 256; ++flags) {
      auto bad = enc;
      bad[1] = static_cast<std::byte>(flags);
      CAPTURE(flags);
      CHECK_FALSE(decode(bad));
    }
    for (unsigned extra : {0u, 1u, 0x80u, 0xffu}) {
      auto longer = enc;
      longer.push_back(static_cast<std::byte>(extra));
      CAPTURE(extra);
      CHECK_FALSE(decode(longer));
    }
  }
  // The empty blob (a configuration entry without conf) is no configuration.
  CHECK_FALSE(decode({}));
  CHECK_FALSE(raft::decode_config_entry<transport>(raft::bytes{}));
}

TEST_CASE("decode_config_entry refuses encodings of invalid memberships", "[membership]") {
  // encode_config_entry writes whatever it is given; the decoder checks valid().
  const M invalid[] = {
      M{},                                      // no voters
      mk({1, 1}),                               // duplicate
      mk({1, 2}, {}, {2}),                      // learner that votes
      mk({1, 2}, {}, {}, {}, {3}),              // witness that does not vote
      mk({1, 2}, {}, {}, {}, {1, 2}),           // only witnesses
      mk({1, 2}, {}, {}, {}, {}, true),         // auto_leave, not joint
      mk({1, 2}, {1, 3}, {}, {4}, {}, true),    // learners_next outside the outgoing set
  };
  for (const M& m : invalid) {
    INFO(show(m));
    REQUIRE_FALSE(raft::valid(m));
    CHECK_FALSE(decode(encode(m)));
  }
}

TEST_CASE("decode_config_entry never crashes on random or mutated bytes, and accepts only canonical valid ones",
          "[membership][property]") {
  const std::uint64_t seed = test_seed(0x6A2BA6E);
  INFO("seed " << seed << " (replay: RAFT_TEST_SEED=" << seed << ")");
  raft::splitmix64 g;
  g.seed(seed);
  std::size_t refused = 0, accepted = 0, random_inputs = 0, refused_random = 0;
  for (int it = 0; it < 20000; ++it) {
    CAPTURE(it);
    std::vector<std::byte> in;
    const auto shape = g.next() % 4;
    if (shape == 0) {  // random bytes
      ++random_inputs;
      in.resize(static_cast<std::size_t>(g.next() % 40));
      for (auto& b : in) b = static_cast<std::byte>(g.next());
    } else if (shape == 1) {  // random bytes behind a plausible header
      in = {std::byte{1}, static_cast<std::byte>(g.next() % 2)};
      for (auto n = g.next() % 30; n > 0; --n) in.push_back(static_cast<std::byte>(g.next() % 8));
    } else {  // a valid encoding, mutated
      const M m = random_valid(g, 1 + g.next() % 8);
      in = encode(m, raft::bytes(std::string(g.next() % 4, 'c')));
      for (auto n = 1 + g.next() % 3; n > 0; --n) {
        const std::size_t pos = static_cast<std::size_t>(g.next() % in.size());
        switch (g.next() % 4) {
          case 0: in[pos] = static_cast<std::byte>(g.next()); break;
          case 1: in.erase(in.begin() + static_cast<std::ptrdiff_t>(pos)); break;
          case 2: in.insert(in.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<std::byte>(g.next())); break;
          default: in.resize(pos); break;
        }
        if (in.empty()) break;
      }
    }
    const auto e = decode(in);
    if (!e) {
      ++refused;
      if (shape == 0) ++refused_random;
      continue;
    }
    // Whatever decodes is a valid membership, and its only encoding.
    ++accepted;
    INFO(show(e->members));
    REQUIRE(raft::valid(e->members));
    REQUIRE(encode(e->members, e->context) == in);
    if (shape == 0) REQUIRE(in.at(0) == std::byte{raft::config_entry_format});
  }
  CAPTURE(refused, accepted, random_inputs, refused_random);
  CHECK(refused > 10000);
  CHECK(refused_random * 100 >= random_inputs * 99);  // random bytes essentially never form a configuration
  CHECK(accepted > 0);           // some mutations keep it valid (e.g. a changed id)
}

// ======================================================= randomized changes

namespace {

/// A random change of one to four items over ids 1..8 (so that items meet
/// members, non-members, and each other), any transition.
raft::conf_change<id> random_change(raft::splitmix64& g) {
  raft::conf_change<id> c;
  for (auto n = 1 + g.next() % 4; n > 0; --n)
    c.changes.push_back({static_cast<change_type>(g.next() % raft::change_type_count), 1 + g.next() % 8});
  c.how = static_cast<transition>(g.next() % 3);
  return c;
}

std::string show(const raft::conf_change<id>& c) {
  static constexpr const char* names[] = {"add_voter", "add_learner", "add_witness", "remove"};
  std::string s;
  for (const auto& item : c.changes)
    s += std::string(names[static_cast<int>(item.type)]) + "(" + std::to_string(item.id) + ") ";
  return s + "how " + std::to_string(static_cast<int>(c.how));
}

}  // namespace

TEST_CASE("Random changes of random memberships: every result is valid, and so is leaving its joint configuration",
          "[membership][property]") {
  const std::uint64_t seed = test_seed(0xC4A76E);
  INFO("seed " << seed << " (replay: RAFT_TEST_SEED=" << seed << ")");
  raft::splitmix64 g;
  g.seed(seed);
  std::map<change_status, std::size_t> outcomes;
  std::size_t joints = 0, simple = 0;
  for (int walk = 0; walk < 300; ++walk) {
    CAPTURE(walk);
    M current = random_valid(g, 1 + g.next() % 8);
    if (current.joint()) current = raft::leave_joint(current);
    REQUIRE(raft::valid(current));
    // A walk of changes: each applied one (left, if joint) is the next start.
    for (int step = 0; step < 20; ++step) {
      CAPTURE(step);
      const auto c = random_change(g);
      INFO("current " << show(current) << "; change " << show(c));
      const auto r = raft::apply_change(current, c);
      if (const auto* why = std::get_if<change_status>(&r)) {
        ++outcomes[*why];
        continue;
      }
      ++outcomes[change_status::ok];
      const M& next = std::get<M>(r);
      INFO("next " << show(next));
      REQUIRE(raft::valid(next));
      // Every item took effect in the incoming configuration.
      for (const auto& item : c.changes) {
        CAPTURE(item.id);
        switch (item.type) {
          case change_type::add_voter:
            CHECK(M::has(next.voters, item.id));
            CHECK_FALSE(next.is_witness(item.id));
            break;
          case change_type::add_learner:
            CHECK((M::has(next.learners, item.id) || M::has(next.learners_next, item.id)));
            CHECK_FALSE(M::has(next.voters, item.id));
            break;
          case change_type::add_witness:
            CHECK(M::has(next.voters, item.id));
            CHECK(next.is_witness(item.id));
            break;
          case change_type::remove:
            CHECK_FALSE(M::has(next.voters, item.id));
            CHECK_FALSE(M::has(next.learners, item.id));
            break;
        }
      }
      // Members the change did not name keep their role.
      for (id n = 1; n <= 8; ++n) {
        if (std::any_of(c.changes.begin(), c.changes.end(), [&](const auto& item) { return item.id == n; })) continue;
        CAPTURE(n);
        CHECK(M::has(next.voters, n) == M::has(current.voters, n));
        CHECK(M::has(next.learners, n) == M::has(current.learners, n));
        CHECK(next.is_witness(n) == current.is_witness(n));
      }
      if (next.joint()) {
        ++joints;
        CHECK(same_set(next.voters_outgoing, current.voters));
        CHECK(next.auto_leave == (c.how != transition::joint_explicit));
        const M left = raft::leave_joint(next);
        INFO("left " << show(left));
        REQUIRE(raft::valid(left));
        CHECK_FALSE(left.joint());
        CHECK(same_set(left.voters, next.voters));
        // A joint result refuses further changes until it is left.
        CHECK(std::get<change_status>(raft::apply_change(next, c)) == change_status::in_joint);
        current = left;
      } else {
        ++simple;
        // Applied directly only when asked to and at most one voter differs.
        CHECK(c.how == transition::automatic);
        std::size_t differ = 0;
        for (id n : next.voters) differ += M::has(current.voters, n) ? 0 : 1;
        for (id n : current.voters) differ += M::has(next.voters, n) ? 0 : 1;
        CHECK(differ <= 1);
        CHECK_FALSE(next.auto_leave);
        current = next;
      }
      // The encoding of every membership reached decodes to it.
      const auto e = decode(encode(current));
      REQUIRE(e.has_value());
      CHECK(e->members == current);
    }
  }
  CAPTURE(joints, simple, outcomes.size());
  CHECK(joints > 100);
  CHECK(simple > 100);
  // The walks meet the ordinary refusals too.
  for (auto s : {change_status::duplicate_id, change_status::unknown_node, change_status::already_member,
                 change_status::witness_conversion}) {
    CAPTURE(raft::to_string(s));
    CHECK(outcomes[s] > 0);
  }
}

// ================================================================ regressions

TEST_CASE("apply_change counts the outgoing voters toward max_members (joint results stay valid)",
          "[membership][regression]") {
  // 3 voters and 1021 learners: 1024 members, the most a membership may have.
  // Replacing two voters at once goes through a joint configuration in
  // which the two removed voters still vote in the outgoing set: 1026
  // members. apply_change checks only voters + learners (1024) and returns
  // it; valid() refuses it, so decode_config_entry refuses the entry the
  // leader appended - followers drop every AppendEntries carrying it as
  // malformed, and the leader's own Log no longer loads after a restart.
  M big = mk({1, 2, 3});
  for (id n = 4; n <= raft::max_members; ++n) big.learners.push_back(n);
  REQUIRE(raft::valid(big));
  const auto r = raft::apply_change(big, change({remove(1), remove(2), add_voter(2001), add_voter(2002)}));
  if (const auto* next = std::get_if<M>(&r)) {
    CHECK(next->members().size() <= raft::max_members);
    CHECK(raft::valid(*next));
    CHECK(decode(encode(*next)).has_value());
  } else {
    CHECK(std::get<change_status>(r) == change_status::too_large);
  }
}

TEST_CASE("valid() refuses a witness waiting in learners_next (a witness never becomes a learner)",
          "[membership][regression]") {
  CHECK(raft::valid(mk({1}, {1, 2}, {}, {2}, {}, true)));
  CHECK_FALSE(raft::valid(mk({1}, {1, 2}, {}, {2}, {2}, true)));
}
