// examples/kv/pending.hpp - the client requests a leader has proposed and not
// answered yet, and the rule that decides each one.
//
// A request proposed at (index, term) - what raft's propose_result returns -
// is committed iff the entry applied at `index` has `term`. The table tells
// each request's fate as soon as it is certain, from what this node applies:
//
//   * applied      the entry applied at `index` has `term`: it is ours;
//   * not applied  the entry applied at `index` has another term; or an entry
//                  applied at an index j <= `index` has a term greater than
//                  `term` (or a snapshot says so): every log that will ever
//                  be committed holds that entry, and the terms of a log
//                  never decrease along its indexes, so no committed log can
//                  hold (`index`, `term`) any more;
//   * unknown      the request timed out (deadline), a snapshot covers its
//                  index without telling its term, or the server stops.
//
// What a request must NOT be answered on: this node proposing another entry
// at the same index in a later term. That only says this node's log lost the
// old entry; with five or more nodes another node may still hold it and, as
// leader of a later term, commit it (tests/kv/test_pending.cpp builds that
// run). So several requests may wait on one index, from different terms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <utility>
#include <vector>

#include <raft/types.hpp>

#include "command.hpp"

namespace kv {

struct pending_request {
  std::uint64_t client = 0;  ///< the waiting client connection
  raft::term_t term;         ///< the term it was proposed in
  std::int64_t deadline = 0;  ///< CLOCK_MONOTONIC ms: answered "unknown" after this
  kv::op op = kv::op::get;
};

enum class request_fate { applied, not_applied, unknown };

[[nodiscard]] constexpr const char* to_string(request_fate f) noexcept {
  switch (f) {
    case request_fate::applied: return "applied";
    case request_fate::not_applied: return "not-applied";
    case request_fate::unknown: return "unknown";
  }
  return "?";
}

class pending_requests {
 public:
  void add(raft::index_t index, const pending_request& r) { by_index_[index.value].push_back(r); }

  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const auto& [i, rs] : by_index_) n += rs.size();
    return n;
  }
  [[nodiscard]] bool empty() const noexcept { return by_index_.empty(); }

  /// The node applied the committed entry (index, term); entries are applied
  /// in index order. Calls decide(request, fate) for every request decided by
  /// it, each once, and forgets them.
  template <class Decide>
  void applied(raft::index_t index, raft::term_t term, Decide&& decide) {
    // Requests at this index (and, defensively, below it: none can be there,
    // since every index is decided when it is applied).
    while (!by_index_.empty() && by_index_.begin()->first <= index.value) {
      auto node = by_index_.extract(by_index_.begin());
      for (const auto& r : node.mapped()) {
        if (node.key() < index.value) decide(r, request_fate::unknown);
        else decide(r, r.term == term ? request_fate::applied : request_fate::not_applied);
      }
    }
    newer_term_committed_(index, term, decide);
  }

  /// The node's state machine was replaced by a snapshot ending at (index,
  /// term) (received from the leader): the entries it covers are committed,
  /// but which ones they were is not known any more.
  template <class Decide>
  void snapshot(raft::index_t index, raft::term_t term, Decide&& decide) {
    while (!by_index_.empty() && by_index_.begin()->first <= index.value) {
      auto node = by_index_.extract(by_index_.begin());
      // The committed entry at an index <= the snapshot's has a term <= the
      // snapshot's: a request from a later term cannot be that entry.
      for (const auto& r : node.mapped()) decide(r, r.term > term ? request_fate::not_applied : request_fate::unknown);
    }
    newer_term_committed_(index, term, decide);
  }

  /// Requests whose deadline is at or before `now` are decided "unknown".
  template <class Decide>
  void expire(std::int64_t now, Decide&& decide) {
    for (auto it = by_index_.begin(); it != by_index_.end();) {
      auto& rs = it->second;
      for (auto r = rs.begin(); r != rs.end();) {
        if (r->deadline > now) {
          ++r;
          continue;
        }
        const pending_request done = *r;
        r = rs.erase(r);
        decide(done, request_fate::unknown);
      }
      it = rs.empty() ? by_index_.erase(it) : std::next(it);
    }
  }

  /// Every request is decided "unknown" (the server is stopping).
  template <class Decide>
  void clear(Decide&& decide) {
    auto all = std::move(by_index_);
    by_index_.clear();
    for (const auto& [i, rs] : all)
      for (const auto& r : rs) decide(r, request_fate::unknown);
  }

 private:
  /// (index, term) is committed: requests after it from an earlier term can
  /// no longer commit. Committed terms only grow, and requests are proposed
  /// in the node's current term (never below a committed one), so only an
  /// increase of the committed term can decide any: scan only then.
  template <class Decide>
  void newer_term_committed_(raft::index_t index, raft::term_t term, Decide& decide) {
    if (term <= committed_term_) return;
    committed_term_ = term;
    for (auto it = by_index_.upper_bound(index.value); it != by_index_.end();) {
      auto& rs = it->second;
      for (auto r = rs.begin(); r != rs.end();) {
        if (r->term >= term) {
          ++r;
          continue;
        }
        const pending_request done = *r;
        r = rs.erase(r);
        decide(done, request_fate::not_applied);
      }
      it = rs.empty() ? by_index_.erase(it) : std::next(it);
    }
  }

  std::map<std::uint64_t, std::vector<pending_request>> by_index_;
  raft::term_t committed_term_;  ///< the highest term of an entry (or snapshot) applied so far
};

}  // namespace kv
