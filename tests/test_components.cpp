// Unit tests for the pieces raft::node is built from: strong types,
// replication progress, the in-memory Log, config validation and
// the default Clock and Random policies, plus compile-time checks that the
// default policies satisfy the policy concepts.
//
// Randomized tests print their seed; RAFT_TEST_SEED=<n> replays one.

#include <catch2/catch.hpp>

#include <raft/raft.hpp>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

namespace {

using raft::index_t;
using raft::term_t;

std::uint64_t test_seed(std::uint64_t fallback) {
  if (const char* s = std::getenv("RAFT_TEST_SEED"); s != nullptr && *s != '\0') return std::strtoull(s, nullptr, 0);
  return fallback;
}

// ------------------------------------------------------------------ types
//
// A requires-expression outside a template is checked eagerly: an invalid
// expression in it is a hard error, not `false`. Wrapping it in a variable
// template makes the expressions dependent, so the static_asserts below can
// say "this does not compile".

template <class A, class B>
constexpr bool less_comparable = requires(const A& a, const B& b) { a < b; };
template <class A, class B>
constexpr bool equality_comparable = requires(const A& a, const B& b) { a == b; };
template <class A, class B>
constexpr bool three_way_comparable = requires(const A& a, const B& b) { a <=> b; };
template <class A, class B>
constexpr bool addable = requires(const A& a, const B& b) { a + b; };
template <class A, class B>
constexpr bool subtractable = requires(const A& a, const B& b) { a - b; };

// Terms and indexes do not mix.
static_assert(!less_comparable<term_t, index_t>);
static_assert(!less_comparable<index_t, term_t>);
static_assert(!equality_comparable<term_t, index_t>);
static_assert(!equality_comparable<index_t, term_t>);
static_assert(!three_way_comparable<term_t, index_t>);
static_assert(!std::is_convertible_v<term_t, index_t>);
static_assert(!std::is_convertible_v<index_t, term_t>);
static_assert(!std::is_constructible_v<index_t, term_t>);
static_assert(!std::is_constructible_v<term_t, index_t>);
static_assert(!std::is_assignable_v<index_t&, term_t>);

// Neither compares with plain integers, nor converts from or to one implicitly.
static_assert(!less_comparable<term_t, int>);
static_assert(!less_comparable<index_t, std::uint64_t>);
static_assert(!less_comparable<std::uint64_t, index_t>);
static_assert(!equality_comparable<term_t, std::uint64_t>);
static_assert(!equality_comparable<index_t, int>);
static_assert(!equality_comparable<int, index_t>);
static_assert(!std::is_convertible_v<std::uint64_t, index_t>);
static_assert(!std::is_convertible_v<int, term_t>);
static_assert(!std::is_convertible_v<index_t, std::uint64_t>);
static_assert(!std::is_convertible_v<term_t, std::uint64_t>);
static_assert(!std::is_assignable_v<index_t&, int>);
static_assert(std::is_constructible_v<index_t, std::uint64_t>);  // explicitly: index_t{5}

// Each compares with itself.
static_assert(less_comparable<term_t, term_t> && equality_comparable<term_t, term_t>);
static_assert(less_comparable<index_t, index_t> && three_way_comparable<index_t, index_t>);

// Arithmetic is only what the algorithm needs: index + count.
static_assert(addable<index_t, std::uint64_t>);
static_assert(!addable<term_t, std::uint64_t>);
static_assert(!addable<index_t, index_t>);
static_assert(!addable<index_t, term_t>);
static_assert(!subtractable<index_t, index_t>);
static_assert(!subtractable<index_t, std::uint64_t>);

// Usable in constant expressions.
static_assert(index_t{3}.next() == index_t{4});
static_assert(index_t{0}.prev() == index_t{0});
static_assert(term_t{1} < term_t{2});
static_assert(distance(index_t{2}, index_t{7}) == 5);
static_assert(raft::quorum_size(5) == 3);

// ------------------------------------------------------------- concepts

static_assert(raft::transport<raft::default_transport>);
static_assert(raft::log_store<raft::memory_log<>>);
static_assert(raft::log_store<raft::memory_log<raft::default_transport>>);
static_assert(raft::clock_source<raft::tick_clock>);
static_assert(raft::random_source<raft::splitmix64>);
static_assert(raft::random_source<raft::default_random>);
static_assert(raft::check_transport<raft::default_transport>());
static_assert(raft::check_log<raft::memory_log<>, raft::default_transport>());
static_assert(raft::check_clock<raft::tick_clock>());
static_assert(raft::check_random<raft::splitmix64>());
static_assert(std::same_as<raft::node<>, raft::node<raft::default_transport, raft::memory_log<raft::default_transport>,
                                                     raft::tick_clock, raft::splitmix64>>);

// The concepts reject what is plainly not a policy.
static_assert(!raft::transport<int>);
static_assert(!raft::log_store<std::vector<int>>);
static_assert(!raft::clock_source<int>);
static_assert(!raft::random_source<raft::tick_clock>);
static_assert(!raft::clock_source<raft::splitmix64>);

}  // namespace

TEST_CASE("term_t and index_t behave as ordered counters", "[types]") {
  CHECK(term_t{}.value == 0);
  CHECK(index_t{}.value == 0);
  CHECK(term_t{7}.next() == term_t{8});
  CHECK(index_t{7}.next() == index_t{8});
  CHECK(index_t{7}.prev() == index_t{6});
  CHECK(index_t{0}.prev() == index_t{0});
  CHECK(index_t{10} + 5 == index_t{15});
  CHECK(distance(index_t{3}, index_t{10}) == 7);
  CHECK(distance(index_t{10}, index_t{3}) == 0);  // saturates
  CHECK(distance(index_t{4}, index_t{4}) == 0);
  CHECK(raft::min(index_t{3}, index_t{9}) == index_t{3});
  CHECK(raft::max(index_t{3}, index_t{9}) == index_t{9});
  CHECK(index_t{UINT64_MAX}.prev() == index_t{UINT64_MAX - 1});
  CHECK((term_t{2} <=> term_t{3}) == std::strong_ordering::less);
  CHECK(term_t{3} != term_t{4});
}

TEST_CASE("term_t and index_t print as numbers and hash like their value", "[types]") {
  std::ostringstream os;
  os << term_t{42} << '/' << index_t{7};
  CHECK(os.str() == "42/7");
  CHECK(std::hash<term_t>{}(term_t{9}) == std::hash<std::uint64_t>{}(9));
  CHECK(std::hash<index_t>{}(index_t{9}) == std::hash<std::uint64_t>{}(9));
  std::unordered_set<index_t> s{index_t{1}, index_t{2}, index_t{1}};
  CHECK(s.size() == 2);
}

TEST_CASE("Every role, step status and propose status has a name", "[types]") {
  CHECK(std::string(raft::to_string(raft::role::follower)) == "follower");
  CHECK(std::string(raft::to_string(raft::role::candidate)) == "candidate");
  CHECK(std::string(raft::to_string(raft::role::leader)) == "leader");
  CHECK(std::string(raft::to_string(raft::propose_status::ok)) == "ok");
  CHECK(std::string(raft::to_string(raft::propose_status::not_leader)) == "not leader");
  for (auto s : {raft::step_status::ok, raft::step_status::stale_term, raft::step_status::not_for_me,
                 raft::step_status::unknown_sender, raft::step_status::malformed, raft::step_status::unexpected})
    CHECK(std::string(raft::to_string(s)) != "?");
}

// ================================================================ progress

TEST_CASE("inflight_window fills up, frees acknowledged messages in order and wraps around", "[progress]") {
  raft::inflight_window w(3);
  CHECK(w.capacity() == 3);
  CHECK(w.count() == 0);
  CHECK_FALSE(w.full());
  w.add(index_t{5});
  w.add(index_t{8});
  w.add(index_t{12});
  CHECK(w.full());
  CHECK(w.count() == 3);

  w.free_upto(index_t{4});  // acknowledges nothing in flight
  CHECK(w.count() == 3);
  w.free_upto(index_t{7});  // frees the message ending at 5
  CHECK(w.count() == 2);
  CHECK_FALSE(w.full());

  // Wrap around the ring several times.
  std::uint64_t last = 12;
  for (int round = 0; round < 10; ++round) {
    w.add(index_t{++last});
    CHECK(w.full());
    w.free_upto(index_t{last - 2});
    REQUIRE(w.count() == 2);
  }
  w.free_upto(index_t{last});
  CHECK(w.count() == 0);
  w.free_upto(index_t{last + 100});  // on an empty window: nothing happens
  CHECK(w.count() == 0);
}

TEST_CASE("inflight_window frees only a prefix: a later ack covers earlier messages", "[progress]") {
  raft::inflight_window w(4);
  w.add(index_t{2});
  w.add(index_t{4});
  w.add(index_t{6});
  w.free_upto(index_t{5});
  CHECK(w.count() == 1);
  w.free_upto(index_t{100});
  CHECK(w.count() == 0);
}

TEST_CASE("inflight_window refuses to grow past its capacity", "[progress]") {
  raft::inflight_window w(2);
  w.add(index_t{1});
  w.add(index_t{2});
  REQUIRE(w.full());
  CHECK_THROWS_AS(w.add(index_t{3}), raft::invariant_error);
  CHECK(w.count() == 2);
  w.clear();
  CHECK(w.count() == 0);
  CHECK_FALSE(w.full());
  w.add(index_t{9});
  CHECK(w.count() == 1);
}

TEST_CASE("An inflight_window of capacity 0 holds one message", "[progress]") {
  raft::inflight_window w(0);
  CHECK(w.capacity() == 1);
  w.add(index_t{1});
  CHECK(w.full());
}

TEST_CASE("A new progress probes from the given next index", "[progress]") {
  raft::progress p(index_t{11}, 4);
  CHECK(p.state == raft::replication_state::probe);
  CHECK(p.match == index_t{0});
  CHECK(p.next == index_t{11});
  CHECK(p.inflight.capacity() == 4);
  CHECK(p.can_send());
  p.probe_sent = true;
  CHECK_FALSE(p.can_send());  // probe: one message at a time
}

TEST_CASE("progress moves between probe and replicate from the match index", "[progress]") {
  raft::progress p(index_t{11}, 2);
  CHECK(p.acknowledge(index_t{7}));
  CHECK(p.match == index_t{7});
  CHECK(p.next == index_t{11});  // next stays ahead of match
  p.probe_sent = true;
  p.become_replicate();
  CHECK(p.state == raft::replication_state::replicate);
  CHECK_FALSE(p.probe_sent);
  CHECK(p.next == index_t{8});
  CHECK(p.can_send());
  p.inflight.add(index_t{9});
  p.inflight.add(index_t{10});
  CHECK_FALSE(p.can_send());  // replicate: limited by the window
  p.stalled_heartbeats = 3;

  CHECK(p.acknowledge(index_t{9}));
  CHECK(p.inflight.count() == 1);
  CHECK(p.stalled_heartbeats == 0);
  CHECK(p.can_send());

  p.become_probe();
  CHECK(p.state == raft::replication_state::probe);
  CHECK(p.next == index_t{10});
  CHECK(p.inflight.count() == 0);
  CHECK(p.can_send());
}

TEST_CASE("progress::acknowledge learns only from newer indexes", "[progress]") {
  raft::progress p(index_t{1}, 8);
  p.become_replicate();
  p.inflight.add(index_t{3});
  p.inflight.add(index_t{5});
  CHECK(p.acknowledge(index_t{5}));
  CHECK(p.match == index_t{5});
  CHECK(p.next == index_t{6});
  CHECK(p.inflight.count() == 0);
  CHECK_FALSE(p.acknowledge(index_t{5}));  // duplicate
  CHECK_FALSE(p.acknowledge(index_t{2}));  // stale
  CHECK(p.match == index_t{5});
  CHECK(p.next == index_t{6});
  // An ack past next moves next too (match < next always holds).
  CHECK(p.acknowledge(index_t{20}));
  CHECK(p.next == index_t{21});
}

// ============================================================== memory_log

namespace {
using log_type = raft::memory_log<>;
using entry = log_type::entry_type;

entry make_entry(std::uint64_t term, std::uint64_t index, const char* data = "",
                 raft::entry_kind kind = raft::entry_kind::command) {
  return entry{term_t{term}, index_t{index}, kind, raft::bytes(data)};
}
}  // namespace

TEST_CASE("An empty memory_log starts after index 0, term 0", "[memory_log]") {
  const log_type log;
  CHECK(log.first_index() == index_t{1});
  CHECK(log.last_index() == index_t{0});
  CHECK(log.snapshot_index() == index_t{0});
  CHECK(log.snapshot_term() == term_t{0});
  CHECK(log.term_at(index_t{0}) == term_t{0});
  CHECK(log.entry_count() == 0);
  CHECK(log.payload_bytes() == 0);
  CHECK(log.hard_state() == raft::hard_state<std::uint64_t>{});
  CHECK_THROWS_AS(log.entry_at(index_t{1}), raft::invariant_error);
  CHECK_THROWS_AS(log.entry_at(index_t{0}), raft::invariant_error);
  CHECK_THROWS_AS(log.term_at(index_t{1}), raft::invariant_error);
}

TEST_CASE("memory_log appends entries in index order and reads them back", "[memory_log]") {
  log_type log;
  log.append(make_entry(1, 1, "a"));
  log.append(make_entry(1, 2, "bb"));
  const entry third = make_entry(2, 3, "", raft::entry_kind::noop);
  log.append(third);  // the copying overload
  CHECK(log.last_index() == index_t{3});
  CHECK(log.first_index() == index_t{1});
  CHECK(log.entry_count() == 3);
  CHECK(log.term_at(index_t{1}) == term_t{1});
  CHECK(log.term_at(index_t{3}) == term_t{2});
  CHECK(log.entry_at(index_t{2}).data.str() == "bb");
  CHECK(log.entry_at(index_t{3}) == third);
  CHECK(log.payload_bytes() == 3);
  CHECK_THROWS_AS(log.entry_at(index_t{4}), raft::invariant_error);
}

TEST_CASE("memory_log refuses an entry that is not last_index + 1", "[memory_log]") {
  log_type log;
  CHECK_THROWS_AS(log.append(make_entry(1, 2)), raft::invariant_error);  // gap
  log.append(make_entry(1, 1));
  CHECK_THROWS_AS(log.append(make_entry(1, 1)), raft::invariant_error);  // duplicate
  CHECK_THROWS_AS(log.append(make_entry(1, 5)), raft::invariant_error);
  CHECK(log.last_index() == index_t{1});
  CHECK(log.payload_bytes() == 0);
}

TEST_CASE("memory_log::truncate_after drops the suffix and its payload bytes", "[memory_log]") {
  log_type log;
  for (std::uint64_t i = 1; i <= 5; ++i) log.append(make_entry(1, i, "xyz"));
  REQUIRE(log.payload_bytes() == 15);
  log.truncate_after(index_t{5});  // no-op
  CHECK(log.last_index() == index_t{5});
  log.truncate_after(index_t{2});
  CHECK(log.last_index() == index_t{2});
  CHECK(log.entry_count() == 2);
  CHECK(log.payload_bytes() == 6);
  log.append(make_entry(2, 3, "new"));  // the slot is free again
  CHECK(log.term_at(index_t{3}) == term_t{2});
  CHECK_THROWS_AS(log.truncate_after(index_t{4}), raft::invariant_error);  // past the end
  log.truncate_after(index_t{0});
  CHECK(log.last_index() == index_t{0});
  CHECK(log.payload_bytes() == 0);
}

TEST_CASE("memory_log::compact moves the snapshot point and keeps later entries readable", "[memory_log]") {
  log_type log;
  for (std::uint64_t i = 1; i <= 6; ++i) log.append(make_entry(i <= 3 ? 1 : 2, i, "ab"));
  log.compact(index_t{4});
  CHECK(log.snapshot_index() == index_t{4});
  CHECK(log.snapshot_term() == term_t{2});
  CHECK(log.first_index() == index_t{5});
  CHECK(log.last_index() == index_t{6});
  CHECK(log.entry_count() == 2);
  CHECK(log.payload_bytes() == 4);
  CHECK(log.term_at(index_t{4}) == term_t{2});  // the snapshot point still has a term
  CHECK(log.entry_at(index_t{5}).index == index_t{5});
  CHECK_THROWS_AS(log.entry_at(index_t{4}), raft::invariant_error);
  CHECK_THROWS_AS(log.term_at(index_t{3}), raft::invariant_error);
  CHECK_THROWS_AS(log.compact(index_t{3}), raft::invariant_error);  // already compacted
  CHECK_THROWS_AS(log.compact(index_t{7}), raft::invariant_error);  // past the end
  CHECK_THROWS_AS(log.truncate_after(index_t{3}), raft::invariant_error);
  log.compact(index_t{4});  // no-op
  CHECK(log.entry_count() == 2);
  log.truncate_after(index_t{4});  // everything after the snapshot
  CHECK(log.last_index() == index_t{4});
  CHECK(log.payload_bytes() == 0);
  log.append(make_entry(3, 5, "c"));
  CHECK(log.entry_at(index_t{5}).data.str() == "c");
  log.compact(index_t{5});
  CHECK(log.entry_count() == 0);
  CHECK(log.last_index() == index_t{5});
  CHECK(log.snapshot_term() == term_t{3});
}

TEST_CASE("memory_log stays consistent across many compactions that reclaim its prefix", "[memory_log]") {
  log_type log;
  std::uint64_t next = 1;
  std::size_t expected_bytes = 0;
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 20; ++k, ++next) {
      const std::string data(next % 5, 'd');
      log.append(entry{term_t{1 + next / 100}, index_t{next}, raft::entry_kind::command, raft::bytes(data)});
      expected_bytes += data.size();
    }
    const index_t upto{next - 1 - 7};  // keep the last 7 entries
    for (std::uint64_t i = log.first_index().value; i <= upto.value; ++i) expected_bytes -= i % 5;
    log.compact(upto);
    CAPTURE(round);
    REQUIRE(log.first_index() == upto.next());
    REQUIRE(log.entry_count() == 7);
    REQUIRE(log.payload_bytes() == expected_bytes);
    for (index_t i = log.first_index(); i <= log.last_index(); i = i.next()) {
      REQUIRE(log.entry_at(i).index == i);
      REQUIRE(log.term_at(i) == term_t{1 + i.value / 100});
    }
  }
}

TEST_CASE("memory_log::install_snapshot keeps the suffix after a matching entry", "[memory_log]") {
  log_type log;
  CHECK(log.snapshot_data().empty());
  for (std::uint64_t i = 1; i <= 6; ++i) log.append(make_entry(i <= 3 ? 1 : 2, i, "xy"));
  log.install_snapshot(raft::snapshot{index_t{4}, term_t{2}, raft::bytes("state@4")});
  CHECK(log.snapshot_index() == index_t{4});
  CHECK(log.snapshot_term() == term_t{2});
  CHECK(log.snapshot_data().str() == "state@4");
  CHECK(log.first_index() == index_t{5});
  CHECK(log.last_index() == index_t{6});
  CHECK(log.entry_count() == 2);
  CHECK(log.payload_bytes() == 4);
  CHECK(log.entry_at(index_t{6}).term == term_t{2});
}

TEST_CASE("memory_log::install_snapshot discards a log that does not match it", "[memory_log]") {
  log_type log;
  for (std::uint64_t i = 1; i <= 6; ++i) log.append(make_entry(1, i, "xy"));
  SECTION("the entry at the snapshot index has another term") {
    log.install_snapshot(raft::snapshot{index_t{4}, term_t{3}, raft::bytes("s")});
    CHECK(log.snapshot_index() == index_t{4});
    CHECK(log.snapshot_term() == term_t{3});
    CHECK(log.last_index() == index_t{4});
    CHECK(log.entry_count() == 0);
    CHECK(log.payload_bytes() == 0);
    CHECK(log.term_at(index_t{4}) == term_t{3});
  }
  SECTION("the snapshot reaches past the end of the log") {
    log.install_snapshot(raft::snapshot{index_t{100}, term_t{7}, raft::bytes("s")});
    CHECK(log.first_index() == index_t{101});
    CHECK(log.last_index() == index_t{100});
    CHECK(log.entry_count() == 0);
    CHECK(log.payload_bytes() == 0);
    CHECK(log.term_at(index_t{100}) == term_t{7});
    CHECK_THROWS_AS(log.append(make_entry(7, 7)), raft::invariant_error);
    log.append(make_entry(7, 101, "zz"));
    CHECK(log.payload_bytes() == 2);
    CHECK(log.entry_at(index_t{101}).data.str() == "zz");
  }
  SECTION("a snapshot older than the stored one is refused") {
    log.install_snapshot(raft::snapshot{index_t{5}, term_t{1}, raft::bytes("s5")});
    CHECK_THROWS_AS(log.install_snapshot(raft::snapshot{index_t{4}, term_t{1}, raft::bytes("s4")}),
                    raft::invariant_error);
    CHECK(log.snapshot_index() == index_t{5});
    CHECK(log.snapshot_data().str() == "s5");
  }
}

TEST_CASE("memory_log keeps the hard state, and a copy is an independent snapshot of everything", "[memory_log]") {
  log_type log;
  log.save_hard_state({term_t{4}, std::uint64_t{2}});
  log.append(make_entry(4, 1, "one"));
  const log_type copy = log;
  log.save_hard_state({term_t{5}, std::nullopt});
  log.append(make_entry(5, 2, "two"));
  CHECK(copy.hard_state().term == term_t{4});
  REQUIRE(copy.hard_state().vote.has_value());
  CHECK(*copy.hard_state().vote == 2);
  CHECK(copy.last_index() == index_t{1});
  CHECK(log.hard_state().term == term_t{5});
  CHECK_FALSE(log.hard_state().vote.has_value());
  CHECK(log.last_index() == index_t{2});
  CHECK(copy.entry_at(index_t{1}).data.data() == log.entry_at(index_t{1}).data.data());  // payloads are shared
}

// ================================================================== config

namespace {
raft::config<std::uint64_t> good_config() { return {.id = 2, .voters = {1, 2, 3}}; }

std::string problem(const raft::config<std::uint64_t>& c) { return c.validate().value_or("<valid>"); }
}  // namespace

TEST_CASE("A config with the documented defaults is valid", "[config]") {
  const auto c = good_config();
  CHECK_FALSE(c.validate().has_value());
  CHECK(c.election_ticks == 10);
  CHECK(c.heartbeat_ticks == 1);
  CHECK(c.max_inflight == 256);
  CHECK(c.max_append_bytes == std::size_t{1} << 20);
  CHECK(c.max_append_entries == 4096);
  CHECK(c.random_seed == 0);
  const raft::config<std::uint64_t> single{.id = 7, .voters = {7}};
  CHECK_FALSE(single.validate().has_value());
}

TEST_CASE("config::validate says what is wrong", "[config]") {
  auto c = good_config();
  SECTION("no voters: a node that joins an existing cluster") {
    c.voters.clear();
    CHECK(problem(c) == "<valid>");
  }
  SECTION("id not among the voters") {
    c.id = 9;
    CHECK(problem(c) ==
          "config.id is not in config.voters: a founding node must be one of the voters it is configured with "
          "(a node joining an existing cluster leaves config.voters empty)");
  }
  SECTION("witnesses outside the voters, or every voter a witness") {
    c.witnesses = {9};
    CHECK(problem(c) == "config.witnesses lists a node that is not in config.voters");
    c.witnesses = c.voters;
    CHECK(problem(c) ==
          "config.witnesses lists every voter: at least one voter must store the log in full (a witness never leads)");
  }
  SECTION("a voter listed twice") {
    c.voters = {1, 2, 3, 1};
    CHECK(problem(c) == "config.voters lists the same node twice");
  }
  SECTION("heartbeat_ticks = 0") {
    c.heartbeat_ticks = 0;
    CHECK(problem(c) == "config.heartbeat_ticks must be at least 1");
  }
  SECTION("election_ticks not above heartbeat_ticks") {
    c.election_ticks = 3;
    c.heartbeat_ticks = 3;
    CHECK(problem(c) ==
          "config.election_ticks must be greater than config.heartbeat_ticks (the paper suggests about 10x)");
    c.election_ticks = 2;
    CHECK(problem(c) ==
          "config.election_ticks must be greater than config.heartbeat_ticks (the paper suggests about 10x)");
  }
  SECTION("election_ticks above 2^30") {
    c.election_ticks = (1u << 30) + 1;
    CHECK(problem(c) == "config.election_ticks is too large (at most 2^30)");
    c.election_ticks = 1u << 30;
    CHECK(problem(c) == "<valid>");
  }
  SECTION("max_inflight = 0") {
    c.max_inflight = 0;
    CHECK(problem(c) == "config.max_inflight must be at least 1");
  }
  SECTION("max_append_entries = 0") {
    c.max_append_entries = 0;
    CHECK(problem(c) == "config.max_append_entries must be at least 1");
  }
  SECTION("max_append_bytes = 0") {
    c.max_append_bytes = 0;
    CHECK(problem(c) == "config.max_append_bytes must be at least 1");
  }
  SECTION("snapshot_chunk_bytes = 0") {
    c.snapshot_chunk_bytes = 0;
    CHECK(problem(c) == "config.snapshot_chunk_bytes must be at least 1");
  }
  SECTION("snapshot chunks larger than followers accept") {
    c.snapshot_chunk_bytes = c.max_snapshot_chunk_bytes + 1;
    CHECK(problem(c) ==
          "config.snapshot_chunk_bytes exceeds config.max_snapshot_chunk_bytes: followers would refuse every chunk");
  }
  SECTION("max_snapshot_inflight = 0") {
    c.max_snapshot_inflight = 0;
    CHECK(problem(c) == "config.max_snapshot_inflight must be at least 1");
  }
}

TEST_CASE("A node refuses an invalid config with the validation message", "[config]") {
  auto c = good_config();
  c.voters = {1, 3};
  try {
    raft::node<> n(c);
    FAIL("the node accepted a config whose id is not a voter");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == *c.validate());
  }
  CHECK_NOTHROW(raft::node<>(good_config()));
}

// ===================================================== default Clock/Random

TEST_CASE("splitmix64 is deterministic for a seed and matches the reference sequence", "[random]") {
  raft::splitmix64 a, b, c;
  a.seed(0);
  // Reference values of SplitMix64 (Steele, Lea, Flood 2014) from state 0.
  CHECK(a.next() == 0xe220a8397b1dcdafull);
  CHECK(a.next() == 0x6e789e6aa1b965f4ull);
  CHECK(a.next() == 0x06c45d188009454full);

  const std::uint64_t seed = test_seed(12345);
  INFO("seed " << seed);
  b.seed(seed);
  c.seed(seed);
  std::vector<std::uint64_t> xs, ys;
  for (int i = 0; i < 100; ++i) {
    xs.push_back(b.next());
    ys.push_back(c.next());
  }
  CHECK(xs == ys);
  b.seed(seed);  // reseeding restarts the sequence
  CHECK(b.next() == xs[0]);
  c.seed(seed + 1);
  CHECK(c.next() != xs[0]);
  std::sort(xs.begin(), xs.end());
  CHECK(std::adjacent_find(xs.begin(), xs.end()) == xs.end());  // no repeats in 100 draws
}

TEST_CASE("tick_clock counts advances from zero", "[clock]") {
  raft::tick_clock c;
  CHECK(c.now() == 0);
  c.advance();
  c.advance();
  CHECK(c.now() == 2);
  const raft::tick_clock copy = c;
  c.advance();
  CHECK(copy.now() == 2);
  CHECK(c.now() == 3);
}

TEST_CASE("A node advances its clock once per tick", "[clock]") {
  raft::node<> n({.id = 1, .voters = {1, 2, 3}});
  raft::node<>::output_type out;
  for (int i = 0; i < 5; ++i) n.tick(out);
  CHECK(n.clock().now() == 5);
}
