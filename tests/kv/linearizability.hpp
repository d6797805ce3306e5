// tests/kv/linearizability.hpp - a Wing-Gong linearizability checker with
// memoisation (Lowe's refinement, as in Porcupine and Knossos' "wgl"), for
// the history of ONE key of the kv store (linearizability is compositional:
// a history is linearizable iff each key's sub-history is).
//
// Model: a register that is either absent or holds a string.
//   put(v)  -> ok                 state := v
//   get     -> absent | value v   must equal the state
//   del     -> found | not found  must match the state; state := absent
// An operation whose answer never arrived (timeout, connection reset) has an
// unknown outcome: it may have taken effect at any time after its call, or
// never. It is given an infinite return time and its result is not checked.
// The caller drops operations known to have failed without effect, and
// unanswered reads (they change nothing).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace kvtest {

struct operation {
  enum class kind : std::uint8_t { put, get, del } k = kind::get;
  std::string value;           // put: the value written
  bool known = true;           // false: no answer; outcome unknown
  bool found = false;          // get, del (known): the key existed
  std::string out;             // get (known, found): the value read
  std::int64_t call = 0;       // invocation time
  std::int64_t ret = 0;        // completion time (ignored if !known)
  int client = 0;              // for messages only
};

struct check_result {
  bool linearizable = false;
  bool exhausted = false;  // gave up after max_steps: inconclusive
  std::uint64_t steps = 0;
};

namespace detail {

using state = std::optional<std::string>;

/// Applies `op` to `s`; false if the op's recorded result contradicts `s`.
inline bool step(const operation& op, state& s) {
  switch (op.k) {
    case operation::kind::put: s = op.value; return true;
    case operation::kind::get:
      if (!op.known) return true;
      return op.found == s.has_value() && (!op.found || op.out == *s);
    case operation::kind::del:
      if (op.known && op.found != s.has_value()) return false;
      s.reset();
      return true;
  }
  return false;
}

struct cache_key {
  std::vector<std::uint64_t> bits;
  state s;
  bool operator==(const cache_key&) const = default;
};
struct cache_hash {
  std::size_t operator()(const cache_key& k) const noexcept {
    std::size_t h = 1469598103934665603ull;
    for (auto w : k.bits) h = (h ^ w) * 1099511628211ull;
    h ^= k.s ? std::hash<std::string>{}(*k.s) + 0x9e3779b97f4a7c15ull : 0;
    return h;
  }
};

}  // namespace detail

/// Checks one key's history. `initial` is the state before the first op.
inline check_result check_register(const std::vector<operation>& ops, std::uint64_t max_steps = 50'000'000,
                                   std::optional<std::string> initial = std::nullopt) {
  check_result res;
  const std::size_t n = ops.size();
  if (n == 0) {
    res.linearizable = true;
    return res;
  }
  // Events, as a doubly linked list in time order: a call before a return at
  // the same instant (treating touching operations as concurrent, the
  // permissive reading); unknown returns at +infinity.
  struct event {
    std::size_t op;
    bool is_call;
    std::int64_t time;
    std::size_t match = 0;  // the other event of the same op
    std::size_t prev = 0, next = 0;
  };
  constexpr std::int64_t inf = std::numeric_limits<std::int64_t>::max();
  std::vector<event> ev;
  ev.reserve(2 * n + 1);
  ev.push_back(event{n, false, std::numeric_limits<std::int64_t>::min()});  // head sentinel
  for (std::size_t i = 0; i < n; ++i) {
    ev.push_back(event{i, true, ops[i].call});
    ev.push_back(event{i, false, ops[i].known ? ops[i].ret : inf});
  }
  std::vector<std::size_t> order(ev.size() - 1);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i + 1;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (ev[a].time != ev[b].time) return ev[a].time < ev[b].time;
    return ev[a].is_call && !ev[b].is_call;
  });
  constexpr std::size_t nil = 0;  // index 0 is the head; "next == 0" ends the list
  std::size_t prev = 0;
  for (std::size_t idx : order) {
    ev[prev].next = idx;
    ev[idx].prev = prev;
    prev = idx;
  }
  ev[prev].next = nil;
  for (std::size_t i = 1; i < ev.size(); i += 2) {
    ev[i].match = i + 1;
    ev[i + 1].match = i;
  }
  auto lift = [&](std::size_t call) {
    const std::size_t ret = ev[call].match;
    ev[ev[call].prev].next = ev[call].next;
    if (ev[call].next != nil) ev[ev[call].next].prev = ev[call].prev;
    ev[ev[ret].prev].next = ev[ret].next;
    if (ev[ret].next != nil) ev[ev[ret].next].prev = ev[ret].prev;
  };
  auto unlift = [&](std::size_t call) {
    const std::size_t ret = ev[call].match;
    ev[ev[ret].prev].next = ret;
    if (ev[ret].next != nil) ev[ev[ret].next].prev = ret;
    ev[ev[call].prev].next = call;
    if (ev[call].next != nil) ev[ev[call].next].prev = call;
  };

  detail::state s = std::move(initial);
  std::vector<std::uint64_t> linearized((n + 63) / 64, 0);
  std::unordered_set<detail::cache_key, detail::cache_hash> cache;
  struct frame {
    std::size_t call;
    detail::state before;
  };
  std::vector<frame> calls;
  std::size_t e = ev[0].next;
  while (ev[0].next != nil) {
    if (++res.steps > max_steps) {
      res.exhausted = true;
      return res;
    }
    if (e == nil) return res;  // cannot happen: the list always ends with a return
    const event& cur = ev[e];
    if (cur.is_call) {
      detail::state next = s;
      if (detail::step(ops[cur.op], next)) {
        auto bits = linearized;
        bits[cur.op / 64] |= std::uint64_t{1} << (cur.op % 64);
        if (cache.insert(detail::cache_key{bits, next}).second) {
          calls.push_back(frame{e, std::move(s)});
          s = std::move(next);
          linearized = std::move(bits);
          lift(e);
          e = ev[0].next;
          continue;
        }
      }
      e = cur.next;
    } else {
      // A return whose operation is not linearized yet: everything before it
      // was tried. If it is an unknown op's return (at infinity), only
      // unknown ops are left, and they may simply never have taken effect.
      if (cur.time == inf) {
        res.linearizable = true;
        return res;
      }
      if (calls.empty()) return res;
      frame f = std::move(calls.back());
      calls.pop_back();
      s = std::move(f.before);
      const std::size_t op = ev[f.call].op;
      linearized[op / 64] &= ~(std::uint64_t{1} << (op % 64));
      unlift(f.call);
      e = ev[f.call].next;
    }
  }
  res.linearizable = true;
  return res;
}

}  // namespace kvtest
