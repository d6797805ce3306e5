// tests/kv/test_linearizability.cpp - the checker itself, on small histories
// whose answer is known, and on random histories that are linearizable by
// construction.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

#include "linearizability.hpp"

using kvtest::check_register;
using kvtest::operation;
using K = operation::kind;

namespace {
operation put(std::string v, std::int64_t call, std::int64_t ret) { return {K::put, std::move(v), true, false, {}, call, ret, 0}; }
operation put_unknown(std::string v, std::int64_t call) { return {K::put, std::move(v), false, false, {}, call, 0, 0}; }
operation get(std::optional<std::string> v, std::int64_t call, std::int64_t ret) {
  return {K::get, {}, true, v.has_value(), v.value_or(""), call, ret, 0};
}
operation del(bool found, std::int64_t call, std::int64_t ret) { return {K::del, {}, true, found, {}, call, ret, 0}; }
bool lin(const std::vector<operation>& h) {
  auto r = check_register(h);
  REQUIRE_FALSE(r.exhausted);
  return r.linearizable;
}
}  // namespace

TEST_CASE("checker: sequential histories", "[kv][checker]") {
  CHECK(lin({}));
  CHECK(lin({get(std::nullopt, 0, 1)}));
  CHECK_FALSE(lin({get("x", 0, 1)}));
  CHECK(lin({put("1", 0, 1), get("1", 2, 3)}));
  CHECK_FALSE(lin({put("1", 0, 1), get(std::nullopt, 2, 3)}));
  CHECK_FALSE(lin({put("1", 0, 1), put("2", 2, 3), get("1", 4, 5)}));  // stale read
  CHECK(lin({put("1", 0, 1), del(true, 2, 3), del(false, 4, 5), get(std::nullopt, 6, 7)}));
  CHECK_FALSE(lin({put("1", 0, 1), del(true, 2, 3), del(true, 4, 5)}));
  CHECK_FALSE(lin({del(true, 0, 1)}));
}

TEST_CASE("checker: concurrency allows either order", "[kv][checker]") {
  // A put overlapping two reads: absent-then-1 is fine...
  CHECK(lin({put("1", 0, 10), get(std::nullopt, 1, 2), get("1", 3, 4)}));
  // ...but once 1 was read, a later read cannot go back to absent.
  CHECK_FALSE(lin({put("1", 0, 10), get("1", 1, 2), get(std::nullopt, 3, 4)}));
  // Two concurrent puts, reads see them in one order only.
  CHECK(lin({put("a", 0, 10), put("b", 0, 10), get("a", 11, 12), get("a", 13, 14)}));
  CHECK_FALSE(lin({put("a", 0, 10), put("b", 0, 10), get("a", 11, 12), get("b", 13, 14)}));
  CHECK(lin({put("a", 0, 10), put("b", 0, 10), get("a", 5, 6), get("b", 7, 8)}));
  CHECK_FALSE(lin({put("a", 0, 10), put("b", 0, 10), get("a", 5, 6), get("b", 7, 8), get("a", 9, 10)}));
  // Touching intervals count as concurrent.
  CHECK(lin({put("1", 0, 5), get(std::nullopt, 5, 6)}));
}

TEST_CASE("checker: unknown outcomes may take effect late or never", "[kv][checker]") {
  CHECK(lin({put_unknown("2", 0), get(std::nullopt, 5, 6)}));
  CHECK(lin({put_unknown("2", 0), get("2", 5, 6)}));
  CHECK(lin({put_unknown("2", 0), get(std::nullopt, 5, 6), get("2", 7, 8)}));
  CHECK_FALSE(lin({put_unknown("2", 0), get("2", 5, 6), get(std::nullopt, 7, 8)}));
  // It cannot take effect before it was called.
  CHECK_FALSE(lin({get("2", 0, 1), put_unknown("2", 5)}));
  // An unknown delete may explain a vanished value.
  operation d{K::del, {}, false, false, {}, 3, 0, 0};
  CHECK(lin({put("1", 0, 1), d, get(std::nullopt, 5, 6)}));
  CHECK_FALSE(lin({put("1", 0, 1), get(std::nullopt, 5, 6)}));
}

TEST_CASE("checker: random histories that are linearizable by construction", "[kv][checker]") {
  const std::uint64_t seed = GENERATE(1u, 2u, 3u, 42u, 1234u);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  // Simulate 4 clients on one register; each op takes effect at a random
  // instant inside its interval, so the history is linearizable.
  struct pending_op { operation op; std::int64_t at; };
  std::vector<pending_op> ops;
  std::int64_t client_free[4] = {0, 0, 0, 0};
  for (int i = 0; i < 200; ++i) {
    const int c = static_cast<int>(rng() % 4);
    const std::int64_t call = client_free[c] + static_cast<std::int64_t>(rng() % 5);
    const std::int64_t ret = call + 1 + static_cast<std::int64_t>(rng() % 20);
    const std::int64_t at = call + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(ret - call + 1));
    client_free[c] = ret + 1;
    operation op;
    op.call = call * 2;  // even times for calls/returns, effects at odd times: no ties with effects
    op.ret = ret * 2;
    op.client = c;
    const auto r = rng() % 10;
    op.k = r < 4 ? K::put : r < 9 ? K::get : K::del;
    if (op.k == K::put) op.value = std::to_string(i);
    if (rng() % 25 == 0 && op.k != K::get) op.known = false;
    ops.push_back({op, at * 2 + 1});
  }
  std::sort(ops.begin(), ops.end(), [](auto& a, auto& b) { return a.at < b.at; });
  std::optional<std::string> reg;
  std::vector<operation> history;
  for (auto& p : ops) {
    auto& op = p.op;
    if (op.k == K::get) {
      op.found = reg.has_value();
      op.out = reg.value_or("");
    } else if (op.k == K::del) {
      op.found = reg.has_value();
      reg.reset();
    } else {
      reg = op.value;
    }
    history.push_back(op);
  }
  auto r = check_register(history);
  REQUIRE_FALSE(r.exhausted);
  CHECK(r.linearizable);
  // Corrupt one read: pretend it saw a value nobody wrote. Never linearizable.
  for (auto& op : history)
    if (op.k == K::get && op.known) {
      op.found = true;
      op.out = "never-written";
      break;
    }
  CHECK_FALSE(check_register(history).linearizable);
}

TEST_CASE("checker: gives up, and says so, past its step budget", "[kv][checker]") {
  std::vector<operation> h;
  for (int i = 0; i < 30; ++i) h.push_back(put(std::to_string(i), 0, 100));
  h.push_back(get("never", 101, 102));
  auto r = check_register(h, 1000);
  CHECK(r.exhausted);
  CHECK_FALSE(r.linearizable);
}
