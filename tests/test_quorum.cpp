// Unit and property tests for raft/quorum.hpp: majority_config and
// quorum_config (single and joint configurations, thesis §4.3).
//
// Known cases first, then property tests that compare every rule with a
// brute-force model of its definition over random configurations.
// Randomized tests print their seed; RAFT_TEST_SEED=<n> replays one.

#include <catch2/catch.hpp>

#include <raft/quorum.hpp>
#include <raft/random.hpp>
#include <raft/types.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using raft::index_t;
using raft::majority_config;
using raft::vote_result;
using config = majority_config<int>;
using qconfig = raft::quorum_config<int>;

static_assert(raft::quorum_size(0) == 1);
static_assert(raft::quorum_size(5) == 3);
static_assert(raft::to_string(vote_result::won)[0] == 'w');

std::uint64_t test_seed(std::uint64_t fallback) {
  if (const char* s = std::getenv("RAFT_TEST_SEED"); s != nullptr && *s != '\0') return std::strtoull(s, nullptr, 0);
  return fallback;
}

/// Voter ids are small ints; the per-id state of a test lives in arrays indexed
/// by id (ids are at most max_id).
constexpr int max_id = 64;

template <class V>
using per_id = std::array<V, max_id + 1>;

/// ack(id) from a table, counting calls per id.
template <class V>
struct ack_table {
  per_id<V> value{};
  per_id<int> calls{};
  auto fn() {
    return [this](const int& id) {
      ++calls[static_cast<std::size_t>(id)];
      return value[static_cast<std::size_t>(id)];
    };
  }
};

/// majority_config<int>::committed<index_t> with acks given per voter, in
/// the order of `ids`.
std::optional<index_t> committed_of(const std::vector<int>& ids, const std::vector<std::uint64_t>& acks) {
  REQUIRE(ids.size() == acks.size());
  std::map<int, index_t> m;
  for (std::size_t i = 0; i < ids.size(); ++i) m[ids[i]] = index_t{acks[i]};
  return config(ids).committed<index_t>([&](const int& id) { return m.at(id); });
}

/// 'y' granted, 'n' rejected, '?' unknown: one char per voter 1..n.
vote_result vote_of(const std::string& votes) {
  std::vector<int> ids;
  for (std::size_t i = 0; i < votes.size(); ++i) ids.push_back(static_cast<int>(i) + 1);
  return config(ids).vote([&](const int& id) -> std::optional<bool> {
    const char c = votes[static_cast<std::size_t>(id) - 1];
    if (c == '?') return std::nullopt;
    return c == 'y';
  });
}

/// '1' active, '0' not: one char per voter 1..n.
bool quorum_of(const std::string& active) {
  std::vector<int> ids;
  for (std::size_t i = 0; i < active.size(); ++i) ids.push_back(static_cast<int>(i) + 1);
  return config(ids).has_quorum([&](const int& id) { return active[static_cast<std::size_t>(id) - 1] == '1'; });
}

}  // namespace

// ============================================================ known cases

TEST_CASE("quorum_size is a strict majority", "[quorum]") {
  CHECK(raft::quorum_size(1) == 1);
  CHECK(raft::quorum_size(2) == 2);
  CHECK(raft::quorum_size(3) == 2);
  CHECK(raft::quorum_size(4) == 3);
  CHECK(raft::quorum_size(5) == 3);
  CHECK(raft::quorum_size(6) == 4);
  CHECK(raft::quorum_size(7) == 4);
}

TEST_CASE("Every vote_result has a name", "[quorum]") {
  CHECK(std::string(raft::to_string(vote_result::pending)) == "pending");
  CHECK(std::string(raft::to_string(vote_result::won)) == "won");
  CHECK(std::string(raft::to_string(vote_result::lost)) == "lost");
}

TEST_CASE("majority_config is a set of voters keyed by id", "[quorum]") {
  const config empty;
  CHECK(empty.empty());
  CHECK(empty.size() == 0);
  CHECK_FALSE(empty.contains(1));
  CHECK(empty.begin() == empty.end());

  const config c({5, 2, 9});
  CHECK_FALSE(c.empty());
  CHECK(c.size() == 3);
  CHECK(c.contains(5));
  CHECK(c.contains(9));
  CHECK_FALSE(c.contains(3));
  CHECK(c.ids() == std::vector<int>{5, 2, 9});  // order kept
  std::vector<int> walked(c.begin(), c.end());
  CHECK(walked == std::vector<int>{5, 2, 9});

  // Equality is order-insensitive: a configuration is a set.
  CHECK(c == config({9, 5, 2}));
  CHECK_FALSE(c == config({5, 2}));
  CHECK_FALSE(c == config({5, 2, 8}));
  CHECK(config() == config(std::vector<int>{}));

  // Any regular id type works, not just integers.
  const majority_config<std::string> named({"a", "b", "c"});
  CHECK(named.contains("b"));
  CHECK(named.vote([](const std::string& id) -> std::optional<bool> { return id != "c"; }) == vote_result::won);
  CHECK(named.committed<std::uint64_t>([](const std::string& id) { return id == "a" ? 7u : 3u; }) == 3u);
}

TEST_CASE("majority_config refuses a voter listed twice", "[quorum]") {
  CHECK_THROWS_AS(config({1, 2, 1}), raft::invariant_error);
  CHECK_THROWS_AS(config({4, 4}), raft::invariant_error);
  CHECK_NOTHROW(config({1, 2, 3}));
}

TEST_CASE("majority_config::committed on known cases", "[quorum]") {
  using acks = std::vector<std::uint64_t>;
  // Empty: no constraint.
  CHECK(committed_of({}, {}) == std::nullopt);
  // 1 voter: its own ack.
  CHECK(committed_of({1}, {5}) == index_t{5});
  CHECK(committed_of({1}, {0}) == index_t{0});
  // 2 voters: both must have it.
  CHECK(committed_of({1, 2}, {5, 3}) == index_t{3});
  CHECK(committed_of({1, 2}, {0, 9}) == index_t{0});
  // 3 voters: the median.
  CHECK(committed_of({1, 2, 3}, {5, 3, 1}) == index_t{3});
  CHECK(committed_of({1, 2, 3}, {1, 3, 5}) == index_t{3});
  CHECK(committed_of({1, 2, 3}, {7, 7, 0}) == index_t{7});
  CHECK(committed_of({1, 2, 3}, {UINT64_MAX, UINT64_MAX, 0}) == index_t{UINT64_MAX});
  // 4 voters: 3 needed, so 2 of 4 is no majority.
  CHECK(committed_of({1, 2, 3, 4}, {9, 9, 0, 0}) == index_t{0});
  CHECK(committed_of({1, 2, 3, 4}, {9, 9, 9, 0}) == index_t{9});
  CHECK(committed_of({1, 2, 3, 4}, {4, 8, 6, 2}) == index_t{4});
  // 5 voters: the third highest.
  CHECK(committed_of({1, 2, 3, 4, 5}, {2, 8, 4, 6, 10}) == index_t{6});
  CHECK(committed_of({1, 2, 3, 4, 5}, {0, 0, 0, 9, 9}) == index_t{0});
  CHECK(committed_of({1, 2, 3, 4, 5}, {5, 5, 5, 5, 5}) == index_t{5});
  // Keyed by id, not by position: ids out of order, acks follow their ids.
  CHECK(committed_of({30, 10, 20}, {1, 9, 8}) == index_t{8});

  // Beyond the inline capacity (std::vector fallback): 17 and 33 voters.
  for (const int n : {16, 17, 33}) {
    CAPTURE(n);
    std::vector<int> ids;
    acks a;
    for (int i = 1; i <= n; ++i) {
      ids.push_back(i);
      a.push_back(static_cast<std::uint64_t>(i * 10));
    }
    // quorum_size(n) voters have >= this value: ids n, n-1, ..., n - q + 1.
    const auto q = static_cast<int>(raft::quorum_size(static_cast<std::size_t>(n)));
    CHECK(committed_of(ids, a) == index_t{static_cast<std::uint64_t>((n - q + 1) * 10)});
  }
}

TEST_CASE("majority_config::committed asks each voter exactly once", "[quorum]") {
  for (const int n : {1, 3, 16, 17, 40}) {
    CAPTURE(n);
    std::vector<int> ids;
    for (int i = 1; i <= n; ++i) ids.push_back(i);
    ack_table<index_t> t;
    (void)config(ids).committed<index_t>(t.fn());
    for (int i = 0; i <= max_id; ++i) CHECK(t.calls[static_cast<std::size_t>(i)] == (i >= 1 && i <= n ? 1 : 0));
  }
}

TEST_CASE("majority_config::vote decides an election as soon as the outcome is certain", "[quorum]") {
  CHECK(config().vote([](const int&) -> std::optional<bool> { return false; }) == vote_result::won);  // empty
  // 1 voter
  CHECK(vote_of("y") == vote_result::won);
  CHECK(vote_of("n") == vote_result::lost);
  CHECK(vote_of("?") == vote_result::pending);
  // 2 voters: both needed
  CHECK(vote_of("yy") == vote_result::won);
  CHECK(vote_of("y?") == vote_result::pending);
  CHECK(vote_of("yn") == vote_result::lost);
  CHECK(vote_of("??") == vote_result::pending);
  // 3 voters
  CHECK(vote_of("y??") == vote_result::pending);
  CHECK(vote_of("yy?") == vote_result::won);
  CHECK(vote_of("yn?") == vote_result::pending);
  CHECK(vote_of("ynn") == vote_result::lost);
  CHECK(vote_of("?nn") == vote_result::lost);
  // 4 voters: 3 needed
  CHECK(vote_of("yyn?") == vote_result::pending);
  CHECK(vote_of("yynn") == vote_result::lost);
  CHECK(vote_of("yyy?") == vote_result::won);
  // 5 voters
  CHECK(vote_of("yyynn") == vote_result::won);
  CHECK(vote_of("yynnn") == vote_result::lost);
  CHECK(vote_of("yy?nn") == vote_result::pending);
  CHECK(vote_of("yyy??") == vote_result::won);
  CHECK(vote_of("??nnn") == vote_result::lost);

  // Exhaustively over the counts, against the definition.
  for (std::size_t voters = 1; voters <= 9; ++voters)
    for (std::size_t yes = 0; yes <= voters; ++yes)
      for (std::size_t no = 0; yes + no <= voters; ++no) {
        CAPTURE(voters, yes, no);
        const std::string votes = std::string(yes, 'y') + std::string(no, 'n') + std::string(voters - yes - no, '?');
        const std::size_t q = voters / 2 + 1;
        const std::size_t undecided = voters - yes - no;
        const auto expected = yes >= q               ? vote_result::won
                              : yes + undecided < q  ? vote_result::lost
                                                     : vote_result::pending;
        REQUIRE(vote_of(votes) == expected);
      }
}

TEST_CASE("majority_config::has_quorum on known cases", "[quorum]") {
  CHECK(config().has_quorum([](const int&) { return false; }));  // empty
  CHECK(quorum_of("1"));
  CHECK_FALSE(quorum_of("0"));
  CHECK(quorum_of("11"));
  CHECK_FALSE(quorum_of("10"));
  CHECK(quorum_of("110"));
  CHECK_FALSE(quorum_of("100"));
  CHECK(quorum_of("1101"));
  CHECK_FALSE(quorum_of("1100"));
  CHECK(quorum_of("10101"));
  CHECK_FALSE(quorum_of("10001"));
}

TEST_CASE("quorum_config: a non-joint configuration is its incoming set", "[quorum]") {
  const qconfig q{config({1, 2, 3}), {}};
  CHECK_FALSE(q.joint());
  CHECK(q.contains(2));
  CHECK_FALSE(q.contains(4));
  CHECK(q.voters() == std::vector<int>{1, 2, 3});
  const std::vector<std::uint64_t> acks{0, 5, 7, 3};
  CHECK(q.committed<index_t>([&](const int& id) { return index_t{acks[static_cast<std::size_t>(id)]}; }) ==
        index_t{5});
  CHECK(q.vote([](const int& id) -> std::optional<bool> { return id != 1; }) == vote_result::won);
  CHECK(q.vote([](const int& id) -> std::optional<bool> { return id == 1; }) == vote_result::lost);
  CHECK(q.vote([](const int& id) -> std::optional<bool> {
          if (id == 1) return true;
          return std::nullopt;
        }) == vote_result::pending);
  CHECK(q.has_quorum([](const int& id) { return id >= 2; }));
  CHECK_FALSE(q.has_quorum([](const int& id) { return id >= 3; }));

  // Both sets empty: no constraint.
  const qconfig none;
  CHECK_FALSE(none.joint());
  CHECK(none.voters().empty());
  CHECK(none.committed<index_t>([](const int&) { return index_t{1}; }) == std::nullopt);
  CHECK(none.vote([](const int&) -> std::optional<bool> { return false; }) == vote_result::won);
  CHECK(none.has_quorum([](const int&) { return false; }));
}

TEST_CASE("quorum_config: a joint configuration needs both majorities (thesis 4.3)", "[quorum]") {
  SECTION("overlapping sets {1,2,3} -> {3,4,5}") {
    const qconfig q{config({3, 4, 5}), config({1, 2, 3})};
    CHECK(q.joint());
    CHECK(q.voters() == std::vector<int>{3, 4, 5, 1, 2});
    for (int id = 1; id <= 5; ++id) CHECK(q.contains(id));
    CHECK_FALSE(q.contains(6));

    // acks: 1:9 2:8 3:7 4:2 5:1 -> old majority has 8, new majority only 2.
    const std::array<std::uint64_t, 6> acks{0, 9, 8, 7, 2, 1};
    ack_table<index_t> t;
    for (int id = 1; id <= 5; ++id) t.value[static_cast<std::size_t>(id)] = index_t{acks[static_cast<std::size_t>(id)]};
    CHECK(q.committed<index_t>(t.fn()) == index_t{2});
    CHECK(t.calls[3] == 2);  // in both sets: asked once per set
    CHECK(t.calls[1] == 1);
    CHECK(t.calls[4] == 1);

    // Voter 3 alone swings both sets.
    auto votes = [](std::string s) {  // one char per id 1..5
      return [s](const int& id) -> std::optional<bool> {
        const char c = s[static_cast<std::size_t>(id) - 1];
        if (c == '?') return std::nullopt;
        return c == 'y';
      };
    };
    CHECK(q.vote(votes("yyyyy")) == vote_result::won);
    CHECK(q.vote(votes("yy?yy")) == vote_result::won);       // majority of each without 3
    CHECK(q.vote(votes("y?y?n")) == vote_result::pending);   // old won, new pending
    CHECK(q.vote(votes("nny??")) == vote_result::lost);      // old lost
    CHECK(q.vote(votes("yyynn")) == vote_result::lost);      // new lost although 3 of 5 granted
    CHECK(q.vote(votes("???yy")) == vote_result::pending);   // new won, old pending
    CHECK(q.vote(votes("??y??")) == vote_result::pending);

    auto active = [](std::string s) {  // one char per id 1..5
      return [s](const int& id) { return s[static_cast<std::size_t>(id) - 1] == '1'; };
    };
    CHECK(q.has_quorum(active("01110")));
    CHECK(q.has_quorum(active("10110")));
    CHECK_FALSE(q.has_quorum(active("11100")));  // 3 of 5 overall, but not a new majority
    CHECK_FALSE(q.has_quorum(active("00011")));
  }

  SECTION("disjoint sets {1,2,3} -> {4,5}") {
    const qconfig q{config({4, 5}), config({1, 2, 3})};
    CHECK(q.joint());
    CHECK(q.voters() == std::vector<int>{4, 5, 1, 2, 3});
    const std::array<std::uint64_t, 6> acks{0, 10, 10, 10, 6, 4};
    CHECK(q.committed<index_t>([&](const int& id) { return index_t{acks[static_cast<std::size_t>(id)]}; }) ==
          index_t{4});
    const std::array<std::uint64_t, 6> acks2{0, 1, 2, 3, 6, 9};
    CHECK(q.committed<index_t>([&](const int& id) { return index_t{acks2[static_cast<std::size_t>(id)]}; }) ==
          index_t{2});
    CHECK(q.vote([](const int& id) -> std::optional<bool> { return id != 5; }) == vote_result::lost);
    CHECK(q.vote([](const int& id) -> std::optional<bool> { return id != 3; }) == vote_result::won);
    CHECK(q.has_quorum([](const int& id) { return id == 1 || id == 2 || id >= 4; }));
    CHECK_FALSE(q.has_quorum([](const int& id) { return id <= 4; }));
  }

  SECTION("removing a node: {1,2,3} -> {1,2}") {
    const qconfig q{config({1, 2}), config({1, 2, 3})};
    CHECK(q.voters() == std::vector<int>{1, 2, 3});
    // 3 acked nothing: both new voters must hold an entry.
    const std::array<std::uint64_t, 4> acks{0, 8, 5, 0};
    CHECK(q.committed<index_t>([&](const int& id) { return index_t{acks[static_cast<std::size_t>(id)]}; }) ==
          index_t{5});
  }

  SECTION("equality compares each half as a set") {
    CHECK(qconfig{config({1, 2}), config({3})} == qconfig{config({2, 1}), config({3})});
    CHECK_FALSE(qconfig{config({1, 2}), config({3})} == qconfig{config({3}), config({1, 2})});
    CHECK_FALSE(qconfig{config({1, 2}), {}} == qconfig{config({1, 2}), config({1, 2})});
  }
}

TEST_CASE("quorum_config works with a read-request id as the acknowledged value", "[quorum]") {
  // ReadIndex-style: each voter echoes the newest read-request id it has seen.
  const qconfig q{config({1, 2, 3, 4, 5}), config({1, 2, 3})};
  const std::array<std::uint64_t, 6> seen{0, 1001, 1000, 998, 1001, 990};
  const auto got = q.committed<std::uint64_t>([&](const int& id) { return seen[static_cast<std::size_t>(id)]; });
  static_assert(std::is_same_v<decltype(got), const std::optional<std::uint64_t>>);
  // incoming: sorted 1001 1001 1000 998 990 -> 1000; outgoing: 1001 1000 998 -> 1000.
  CHECK(got == std::uint64_t{1000});
}

// ======================================================== property tests

namespace {

/// Random test configurations: voter sets of 0..max_size distinct ids drawn
/// from 1..id_range.
struct gen {
  raft::splitmix64 rng;
  explicit gen(std::uint64_t seed) { rng.seed(seed); }
  std::uint64_t below(std::uint64_t n) { return rng.next() % n; }

  std::vector<int> voters(int id_range, std::size_t min_size, std::size_t max_size) {
    std::vector<int> all;
    for (int i = 1; i <= id_range; ++i) all.push_back(i);
    for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[below(i)]);
    all.resize(min_size + below(max_size - min_size + 1));
    return all;
  }

  /// A random quorum_config: about one in three is not joint.
  qconfig quorum(int id_range, std::size_t max_size) {
    qconfig q{config(voters(id_range, 0, max_size)), {}};
    if (below(3) != 0) q.outgoing = config(voters(id_range, 0, max_size));
    return q;
  }
};

/// The sets of `q` that constrain a decision.
std::vector<const config*> nonempty_sets(const qconfig& q) {
  std::vector<const config*> sets;
  for (const config* s : {&q.incoming, &q.outgoing})
    if (!s->empty()) sets.push_back(s);
  return sets;
}

/// Model of committed: the largest v such that every non-empty set has a
/// majority with ack >= v; nullopt when no set constrains.
template <class V>
std::optional<V> model_committed(const qconfig& q, const per_id<V>& ack) {
  const auto sets = nonempty_sets(q);
  if (sets.empty()) return std::nullopt;
  std::optional<V> best;
  for (const int cand_id : q.voters()) {
    const V v = ack[static_cast<std::size_t>(cand_id)];
    const bool ok = std::all_of(sets.begin(), sets.end(), [&](const config* s) {
      std::size_t n = 0;
      for (const int id : s->ids()) n += !(ack[static_cast<std::size_t>(id)] < v);
      return n >= s->size() / 2 + 1;
    });
    if (ok && (!best || *best < v)) best = v;
  }
  REQUIRE(best.has_value());  // the smallest ack always qualifies
  return best;
}

/// Model of vote: try every completion of the unknown votes (each voter has
/// one vote, shared by both sets); won iff every completion wins, lost iff
/// none does.
vote_result model_vote(const qconfig& q, const per_id<std::optional<bool>>& vote) {
  std::vector<int> unknown;  // bit b of a completion is the vote of unknown[b]
  for (const int id : q.voters())
    if (!vote[static_cast<std::size_t>(id)]) unknown.push_back(id);
  struct set_votes {
    std::size_t size = 0, granted = 0;  // granted: known grants
    std::uint32_t unknown_mask = 0;     // this set's unknown voters
  };
  std::vector<set_votes> sets;
  for (const config* s : nonempty_sets(q)) {
    set_votes sv{s->size(), 0, 0};
    for (const int id : s->ids()) {
      const auto& v = vote[static_cast<std::size_t>(id)];
      if (v) {
        sv.granted += *v ? 1 : 0;
      } else {
        const auto b = std::find(unknown.begin(), unknown.end(), id) - unknown.begin();
        sv.unknown_mask |= 1u << b;
      }
    }
    sets.push_back(sv);
  }
  bool some_win = false, some_loss = false;
  for (std::uint32_t mask = 0; mask < (1u << unknown.size()); ++mask) {
    const bool wins = std::all_of(sets.begin(), sets.end(), [&](const set_votes& sv) {
      std::size_t n = sv.granted;
      for (std::uint32_t m = mask & sv.unknown_mask; m != 0; m &= m - 1) ++n;  // grants among the unknown
      return 2 * n > sv.size;
    });
    (wins ? some_win : some_loss) = true;
  }
  if (!some_loss) return vote_result::won;
  if (!some_win) return vote_result::lost;
  return vote_result::pending;
}

/// Model of has_quorum: more than half of each non-empty set is active.
bool model_has_quorum(const qconfig& q, const per_id<bool>& active) {
  const auto sets = nonempty_sets(q);
  return std::all_of(sets.begin(), sets.end(), [&](const config* s) {
    std::size_t n = 0;
    for (const int id : s->ids()) n += active[static_cast<std::size_t>(id)];
    return 2 * n > s->size();
  });
}

/// How many times a callback must have been asked about each id: once per
/// set the id votes in.
per_id<int> expected_calls(const qconfig& q) {
  per_id<int> calls{};
  for (const int id : q.incoming) ++calls[static_cast<std::size_t>(id)];
  for (const int id : q.outgoing) ++calls[static_cast<std::size_t>(id)];
  return calls;
}

/// Also: the quorum_config's voters() are the union, each once.
void check_voters(const qconfig& q) {
  per_id<int> listed{}, want{};
  for (const int id : q.voters()) ++listed[static_cast<std::size_t>(id)];
  for (int id = 1; id <= max_id; ++id) want[static_cast<std::size_t>(id)] = q.contains(id) ? 1 : 0;
  REQUIRE(listed == want);
  REQUIRE(q.joint() == !q.outgoing.empty());
}

constexpr int property_rounds = 20000;

template <class V>
void committed_property(std::uint64_t seed, int id_range, std::size_t max_size, int rounds, V (*draw)(gen&)) {
  gen g(seed);
  for (int round = 0; round < rounds; ++round) {
    const qconfig q = g.quorum(id_range, max_size);
    ack_table<V> t;
    for (auto& v : t.value) v = draw(g);
    CAPTURE(round, q.incoming.ids(), q.outgoing.ids());
    check_voters(q);

    REQUIRE(q.template committed<V>(t.fn()) == model_committed(q, t.value));
    REQUIRE(t.calls == expected_calls(q));

    // The incoming set alone is the non-joint rule.
    REQUIRE(q.incoming.template committed<V>(t.fn()) == model_committed(qconfig{q.incoming, {}}, t.value));
  }
}

}  // namespace

TEST_CASE("committed agrees with its definition on random configurations", "[quorum][property]") {
  const std::uint64_t seed = test_seed(0xC0FFEE);
  INFO("seed " << seed << " (replay: RAFT_TEST_SEED=" << seed << ")");
  SECTION("index_t, few distinct values (many ties)") {
    committed_property<index_t>(seed, 12, 9, property_rounds, [](gen& g) { return index_t{g.below(5)}; });
  }
  SECTION("index_t, many distinct values") {
    committed_property<index_t>(seed + 1, 12, 9, property_rounds, [](gen& g) { return index_t{g.below(1000)}; });
  }
  SECTION("std::uint64_t read-request ids, full range") {
    committed_property<std::uint64_t>(seed + 2, 12, 9, property_rounds, [](gen& g) {
      const std::uint64_t x = g.rng.next();
      return g.below(4) == 0 ? std::uint64_t{0} : x;  // some voters acknowledged nothing
    });
  }
  SECTION("large configurations (std::vector fallback past 16 voters)") {
    committed_property<index_t>(seed + 3, max_id, 40, 2000, [](gen& g) { return index_t{g.below(50)}; });
  }
}

TEST_CASE("vote agrees with enumerating every completion of the unknown votes", "[quorum][property]") {
  const std::uint64_t seed = test_seed(0xBA110);
  INFO("seed " << seed << " (replay: RAFT_TEST_SEED=" << seed << ")");
  gen g(seed);
  std::array<std::array<int, 3>, 2> seen{};  // [joint][result]: the generator reaches every outcome
  for (int round = 0; round < property_rounds; ++round) {
    const qconfig q = g.quorum(12, 9);
    per_id<std::optional<bool>> votes{};
    // Vary how much is known, so elections early and late are both covered.
    const std::uint64_t unknown_share = 1 + g.below(4);
    for (auto& v : votes) {
      if (g.below(4) < unknown_share) continue;
      v = g.below(5) < 3;  // granted 3 times in 5: joint elections win often enough
    }
    per_id<int> calls{};
    auto fn = [&](const int& id) {
      ++calls[static_cast<std::size_t>(id)];
      return votes[static_cast<std::size_t>(id)];
    };
    CAPTURE(round, q.incoming.ids(), q.outgoing.ids());
    check_voters(q);
    const vote_result got = q.vote(fn);
    const vote_result want = model_vote(q, votes);
    CAPTURE(raft::to_string(got), raft::to_string(want));
    REQUIRE(got == want);
    REQUIRE(calls == expected_calls(q));
    REQUIRE(q.incoming.vote(fn) == model_vote(qconfig{q.incoming, {}}, votes));
    ++seen[q.joint() ? 1 : 0][static_cast<std::size_t>(got)];
  }
  CAPTURE(seen);  // [joint][result]
  for (const auto& by_result : seen)
    for (const int n : by_result) CHECK(n >= property_rounds / 100);
}

TEST_CASE("has_quorum agrees with its definition on random configurations", "[quorum][property]") {
  const std::uint64_t seed = test_seed(0xAC71E);
  INFO("seed " << seed << " (replay: RAFT_TEST_SEED=" << seed << ")");
  gen g(seed);
  std::array<std::array<int, 2>, 2> seen{};  // [joint][result]
  for (int round = 0; round < property_rounds; ++round) {
    const bool large = round % 10 == 0;
    const qconfig q = large ? g.quorum(max_id, 40) : g.quorum(12, 9);
    per_id<bool> active{};
    const std::uint64_t share = 1 + g.below(3);
    for (auto& a : active) a = g.below(4) < share;
    per_id<int> calls{};
    auto fn = [&](const int& id) {
      ++calls[static_cast<std::size_t>(id)];
      return active[static_cast<std::size_t>(id)];
    };
    CAPTURE(round, q.incoming.ids(), q.outgoing.ids());
    const bool got = q.has_quorum(fn);
    REQUIRE(got == model_has_quorum(q, active));
    REQUIRE(calls == expected_calls(q));
    REQUIRE(q.incoming.has_quorum(fn) == model_has_quorum(qconfig{q.incoming, {}}, active));
    ++seen[q.joint() ? 1 : 0][got ? 1 : 0];
  }
  CAPTURE(seen);  // [joint][result]
  for (const auto& by_result : seen)
    for (const int n : by_result) CHECK(n >= property_rounds / 100);
}

TEST_CASE("majority_config equality is set equality on random configurations", "[quorum][property]") {
  const std::uint64_t seed = test_seed(0x5E7);
  INFO("seed " << seed << " (replay: RAFT_TEST_SEED=" << seed << ")");
  gen g(seed);
  for (int round = 0; round < property_rounds; ++round) {
    const auto a = g.voters(6, 0, 4);
    const auto b = g.voters(6, 0, 4);
    auto sa = a, sb = b;
    std::sort(sa.begin(), sa.end());
    std::sort(sb.begin(), sb.end());
    CAPTURE(round, a, b);
    REQUIRE((config(a) == config(b)) == (sa == sb));
    auto shuffled = a;
    std::reverse(shuffled.begin(), shuffled.end());
    REQUIRE(config(a) == config(shuffled));
  }
}
