// raft/detail/follower_append.hpp - the follower's side of AppendEntries:
// the consistency check, conflict truncation, the commit rule and the
// conflict hint for fast back-tracking (paper §5.3, Figure 2). Part of
// raft::node.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

/// A message only the leader of the current term sends arrived from `from`.
/// Returns false if this node is itself that term's leader (impossible from a
/// correct peer: Election Safety).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::heard_from_leader_(const node_id& from, output_type& out) {
  if (is_leader()) return false;
  if (role() == raft::role::candidate || !(leader_ == from)) {
    // A candidate that hears from the leader of its term steps down (§5.2).
    become_follower_(term_, from, &out);
  }
  election_elapsed_ = 0;  // Figure 2: AppendEntries from the current leader restarts the timer
  return true;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_append_request_(const node_id& from, append_request<payload>& req,
                                                     output_type& out) {
  if (!heard_from_leader_(from, out)) return step_status::malformed;

  // Entries up to our commit index are already known to match the leader's
  // log (Log Matching + Leader Completeness): skip them, never rewrite them.
  if (req.prev_index < commit_) {
    // ...but check that they agree with what we committed: a message that
    // contradicts a committed entry comes from no correct leader.
    if (req.prev_index >= log_->snapshot_index() && log_->term_at(req.prev_index) != req.prev_term)
      return step_status::malformed;
    for (const auto& e : req.entries) {
      if (e.index > commit_) break;
      if (e.index >= log_->first_index() && log_->term_at(e.index) != e.term) return step_status::malformed;
    }
    const std::uint64_t gap = distance(req.prev_index, commit_);
    if (gap >= req.entries.size()) {
      send_durable_(from, append_response{true, commit_, {}, {}, req.round}, out);
      return step_status::ok;
    }
    req.entries.erase(req.entries.begin(), req.entries.begin() + static_cast<std::ptrdiff_t>(gap));
    req.prev_index = commit_;
    req.prev_term = log_->term_at(commit_);
    if (req.entries.front().term < req.prev_term) return step_status::malformed;
  }

  const index_t last = log_->last_index();
  if (req.prev_index > last) {
    // Our log is too short: tell the leader where it ends. A refusal
    // promises nothing, so it leaves at once.
    send_(from, append_response{false, req.prev_index, last.next(), term_t{}, req.round}, out);
    trace_(trace_kind::append_refused, from, req.prev_index.value);
    return step_status::ok;
  }
  const term_t have = log_->term_at(req.prev_index);
  if (have != req.prev_term) {
    // Consistency check failed (§5.3). Report the conflicting term and the
    // first index we hold for it, so the leader skips the whole term.
    send_(from, append_response{false, req.prev_index, first_index_of_term_(have, req.prev_index), have, req.round},
          out);
    trace_(trace_kind::append_refused, from, req.prev_index.value);
    return step_status::ok;
  }

  // Find the first entry we do not already hold; a conflicting entry and
  // everything after it go (§5.3). Everything here follows commit_ (the
  // committed prefix was checked and skipped above), so a committed entry
  // is never truncated.
  std::size_t k = 0;
  for (; k < req.entries.size(); ++k) {
    const auto& e = req.entries[k];
    if (e.index > last) break;
    if (log_->term_at(e.index) != e.term) {
      log_truncate_after_(e.index.prev(), out);
      break;
    }
  }
  if (k < req.entries.size()) {
    for (; k < req.entries.size(); ++k) {
      const bool config = req.entries[k].kind == entry_kind::config;
      log_->append(std::move(req.entries[k]));
      if (config) conf_appended_(log_->entry_at(log_->last_index()));  // in force at once (thesis §4.1)
    }
    wrote_(out);  // one write for the whole message
  }
  const index_t last_new = req.prev_index + req.entries.size();
  // Commit up to the leader's commit index, but only as far as this
  // message proves our log matches the leader's (Figure 2, rule 5).
  if (const index_t c = min(req.commit, last_new); c > commit_) {
    commit_ = c;
    emit_committed_(out);
  }
  // The acknowledgement promises the entries are durable here: it leaves
  // once every write so far is (thesis §10.2.1).
  send_durable_(from, append_response{true, last_new, {}, {}, req.round}, out);
  return step_status::ok;
}

/// First index still in the log holding term `t`, searching back from
/// `from` (which holds it). Terms never decrease along the log, so a binary
/// search over [first_index, from] finds it in O(log n).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
index_t node<Tr, Lg, Ck, Rn, Tc>::first_index_of_term_(term_t t, index_t from) const {
  index_t lo = log_->first_index();
  if (from < lo) return from;
  index_t hi = from;  // term_at(hi) == t
  while (lo < hi) {
    index_t mid{lo.value + (hi.value - lo.value) / 2};
    if (log_->term_at(mid) < t) lo = mid.next();
    else hi = mid;
  }
  return lo;
}

}  // namespace v0
}  // namespace raft
