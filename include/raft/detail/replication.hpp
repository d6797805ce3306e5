// raft/detail/replication.hpp - the leader's side of log replication:
// proposals, sending entries, acknowledgements and the commit rule (paper
// §5.3, §5.4.2; thesis §10.2.2 pipelining). Part of raft::node.
//
// Per follower the leader is in one of three states (raft/progress.hpp):
// probe, replicate (pipelined), snapshot. Responses can arrive late,
// duplicated or reordered; none of them may make the leader resend entries
// that are still in flight:
//  * a success older than the outstanding probe keeps the probe waiting;
//  * a refusal caused only by reordering (the message before the refused one
//    is still in flight) rewinds `next` without sending: the entries go out
//    again once that earlier message is acknowledged;
//  * a refusal of a message sent before such a rewind is ignored.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::propose(payload cmd, output_type& out) -> propose_result_type {
  begin_(out);
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) {
    if (cfg_.forward_proposals && leader_) {
      forward_proposal<payload> f;
      f.commands.push_back(std::move(cmd));
      send_(*leader_, std::move(f), out);
      return {propose_status::forwarded, {}, {}, leader_};
    }
    return not_leader_();
  }
  if (l->transfer_to) return {propose_status::transferring, {}, {}, leader_};
  if (!admit_bytes_(*l, Tr::payload_size(cmd))) return {propose_status::dropped, {}, {}, leader_};
  append_own_(entry_kind::command, std::move(cmd));
  wrote_(out);
  replicate_(*l, out);
  return {propose_status::ok, log_->last_index(), term_, leader_};
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
template <class Range>
auto node<Tr, Lg, Ck, Rn, Tc>::propose_batch(Range&& cmds, output_type& out) -> propose_result_type {
  static_assert(std::ranges::forward_range<Range>,
                "raft::node::propose_batch: the commands must be a forward range (it may be read twice: "
                "once to size the batch for config.max_uncommitted_bytes, once to append it)");
  begin_(out);
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) {
    if (!cfg_.forward_proposals || !leader_) return not_leader_();
    // Forwarded in messages of at most max_append_entries commands (what
    // the leader accepts in one).
    std::vector<forward_proposal<payload>> parts;
    for (auto&& c : cmds) {
      if (parts.empty() || parts.back().commands.size() >= cfg_.max_append_entries) parts.emplace_back();
      if constexpr (std::is_rvalue_reference_v<Range&&>) parts.back().commands.push_back(payload(std::move(c)));
      else parts.back().commands.push_back(payload(c));
    }
    if (parts.empty()) return {propose_status::empty_batch, {}, {}, leader_};
    for (auto& f : parts) send_(*leader_, std::move(f), out);
    return {propose_status::forwarded, {}, {}, leader_};
  }
  if (l->transfer_to) return {propose_status::transferring, {}, {}, leader_};
  if (cfg_.max_uncommitted_bytes != 0) {
    // Back-pressure is all or nothing for a batch: size it first (a second
    // pass over the range, which is why it must be a forward range).
    std::uint64_t bytes = 0;
    bool any = false;
    for (const auto& c : cmds) {
      bytes += Tr::payload_size(c);
      any = true;
    }
    if (!any) return {propose_status::empty_batch, {}, {}, leader_};
    if (!admit_bytes_(*l, bytes)) return {propose_status::dropped, {}, {}, leader_};
  }
  const index_t before = log_->last_index();
  for (auto&& c : cmds) {
    // Built in place (not through append_own_): one payload move less per
    // entry on the batched hot path (callgrind: 23 instructions per entry).
    if constexpr (std::is_rvalue_reference_v<Range&&>)
      log_->append(entry_type{term_, log_->last_index().next(), entry_kind::command, payload(std::move(c))});
    else
      log_->append(entry_type{term_, log_->last_index().next(), entry_kind::command, payload(c)});
  }
  if (log_->last_index() == before) return {propose_status::empty_batch, {}, {}, leader_};
  wrote_(out);  // the whole batch is one write
  replicate_(*l, out);
  return {propose_status::ok, log_->last_index(), term_, leader_};
}

/// Appends an entry of our term to the Log. The caller records the write
/// (wrote_) once, after all the entries of its call.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::append_own_(entry_kind kind, payload data) {
  log_->append(entry_type{term_, log_->last_index().next(), kind, std::move(data)});
}

/// Advances the commit index to the highest index held durably by a quorum,
/// if that entry is from the current term (§5.4.2, Figure 8). The leader's
/// own copy counts only as far as it was reported durable (thesis §10.2.1).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::maybe_commit_(leader_state& l, output_type& out) {
  const std::optional<index_t> n = conf_.template committed<index_t>([&](const node_id& id) {
    if (id == cfg_.id) return durable_index_;
    const progress* pr = l.peers.find(id);
    return pr == nullptr ? index_t{} : pr->match;
  });
  if (!n || *n <= commit_ || log_->term_at(*n) != term_) return false;
  if (l.uncommitted_bytes > 0) {
    // Back-pressure: entries of our term leave the uncommitted count.
    for (index_t i = commit_.next(); i <= *n && l.uncommitted_bytes > 0; i = i.next()) {
      const auto& e = log_->entry_at(i);
      if (e.term != term_) continue;
      const std::uint64_t sz = Tr::payload_size(e.data);
      l.uncommitted_bytes -= std::min(sz, l.uncommitted_bytes);
    }
  }
  commit_ = *n;
  emit_committed_(out);
  if (!l.committed_in_term) {
    // Our first commit: reads that waited for it learn their index (§6.4).
    l.committed_in_term = true;
    release_reads_(l, out);
  }
  return true;
}

/// After the commit index advanced: new entries go out where the window
/// allows (they carry the new commit index); a follower with nothing in
/// flight gets the commit index alone. One with entries in flight learns it
/// from the next message (its acknowledgements bring one), so a stream of
/// commits does not cost a commit-only message per commit per follower.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::after_commit_(leader_state& l, output_type& out) {
  for (auto& [id, pr] : l.peers) send_entries_or_commit_(id, pr, out);
}

/// New entries if flow control allows; otherwise the commit index alone, if
/// the follower could commit more than it was told and has nothing in flight
/// (entries in flight bring an acknowledgement, and the next message the
/// commit index).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::send_entries_or_commit_(const node_id& to, progress& pr, output_type& out) {
  if (send_append_(to, pr, out)) return;
  if (pr.state == replication_state::replicate && pr.inflight.count() > 0) return;
  maybe_send_commit_(to, pr, out);
}

/// Sends new entries to every follower that flow control allows.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::replicate_(leader_state& l, output_type& out) {
  for (auto& [id, pr] : l.peers) send_append_(id, pr, out);
  // New entries alone commit only where the leader is a quorum by itself
  // (a single voter whose Log is durable on write); otherwise
  // acknowledgements or persisted() reports move the commit index.
  if (self_quorum_ && maybe_commit_(l, out)) after_commit_(l, out);
}

/// Sends entries from pr.next on, if there are any and flow control allows.
/// In probe state an empty message is sent too (it is the probe). Returns
/// whether a message was sent.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::send_append_(const node_id& to, progress& pr, output_type& out) {
  if (pr.state == replication_state::snapshot) return send_snapshot_(to, pr, out);
  if (pr.state == replication_state::replicate && extend_pending_(to, pr, out)) return true;
  if (!pr.can_send()) return false;
  if (pr.next.prev() < log_->snapshot_index()) {
    // The entries this follower needs were compacted away: send the
    // snapshot instead (paper §7).
    pr.become_snapshot(log_->snapshot_index(), pr.witness ? 0 : log_->snapshot_data().size());
    trace_(trace_kind::snapshot_send_started, to, pr.snap_index.value);
    return send_snapshot_(to, pr, out);
  }
  const index_t last = log_->last_index();
  if (pr.state == replication_state::replicate && pr.next > last) return false;
  const index_t prev = pr.next.prev();
  append_request<payload> req{prev, log_->term_at(prev), commit_, {}};
  req.round = std::get<leader_state>(role_).round;
  if (pr.next <= last)
    req.entries.reserve(std::min<std::uint64_t>(distance(pr.next, last) + 1, cfg_.max_append_entries));
  std::size_t bytes = 0;
  take_entries_(req.entries, pr.next, bytes, pr.witness);
  const index_t end = prev + req.entries.size();
  if (pr.state == replication_state::replicate) {
    pr.next = end.next();
    pr.inflight.add(end, bytes);
  } else {
    pr.probe_sent = true;
    pr.probe_end = end;
  }
  // What the follower may commit from this message (Figure 2, rule 5).
  pr.sent_commit = min(commit_, end);
  const bool has_entries = !req.entries.empty();
  send_(to, std::move(req), out);
  if (pr.state == replication_state::replicate && has_entries) {
    pr.pending_out = &out;
    pr.pending_msg = out.messages.size() - 1;
    pr.pending_bytes = bytes;
  }
  return true;
}

/// Appends log entries from `from` on to `entries`, within
/// max_append_entries and max_append_bytes (`bytes` counts the payload bytes
/// already in the message; an empty message always takes one entry).
/// For a witness (`strip`) the entries go without their payloads. Returns
/// how many were added.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
std::size_t node<Tr, Lg, Ck, Rn, Tc>::take_entries_(std::vector<entry_type>& entries, index_t from,
                                                std::size_t& bytes, bool strip) const {
  const index_t last = log_->last_index();
  std::size_t added = 0;
  for (index_t i = from; i <= last && entries.size() < cfg_.max_append_entries; i = i.next()) {
    const entry_type& e = log_->entry_at(i);
    if (strip) {
      entries.push_back(entry_type{e.term, e.index, e.kind, payload{}, e.conf});
      ++added;
      continue;
    }
    const std::size_t sz = Tr::payload_size(e.data);
    if (!entries.empty() && bytes + sz > cfg_.max_append_bytes) break;
    bytes += sz;
    entries.push_back(e);
    ++added;
  }
  return added;
}

/// Batching across calls: if the newest AppendEntries to this follower is
/// still in `out`, the caller has not read the messages since (message_list
/// "taken"), and it ends right before pr.next, new entries join it instead of
/// making another message. Many propose() calls whose output is sent together
/// thus cost one message per follower, like one propose_batch(). Returns
/// whether it extended one.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::extend_pending_(const node_id& to, progress& pr, output_type& out) {
  const index_t last = log_->last_index();
  if (pr.pending_out != &out || out.messages.taken_by_caller_() || pr.pending_msg >= out.messages.size())
    return false;
  if (pr.next > last || pr.next <= log_->snapshot_index() || pr.inflight.count() == 0 ||
      pr.inflight.last() != pr.next.prev())
    return false;
  auto& m = out.messages.peek_(pr.pending_msg);
  auto* req = std::get_if<append_request<payload>>(&m.body);
  if (req == nullptr || !(m.to == to) || !(m.from == cfg_.id) || m.term != term_ || req->entries.empty() ||
      req->entries.back().index != pr.next.prev())
    return false;
  if (pr.max_inflight_bytes != 0 && pr.inflight.bytes() >= pr.max_inflight_bytes) return false;
  const std::size_t bytes_before = pr.pending_bytes;
  const std::size_t added = take_entries_(req->entries, pr.next, pr.pending_bytes, pr.witness);
  if (added == 0) return false;  // that message is full: a new one, within the window
  pr.next = pr.next + added;
  pr.inflight.extend_last(pr.next.prev(), pr.pending_bytes - bytes_before);
  req->commit = commit_;
  req->round = std::get<leader_state>(role_).round;
  pr.sent_commit = min(commit_, pr.next.prev());
  return true;
}

/// An empty AppendEntries anchored at the follower's match index, which it
/// is guaranteed to hold: carries the commit index, never fails the
/// consistency check, never disturbs the stream of entries in flight.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::send_commit_(const node_id& to, progress& pr, output_type& out) {
  if (pr.match < log_->snapshot_index()) return;  // cannot anchor it; the follower needs the snapshot
  pr.sent_commit = min(commit_, pr.match);
  send_empty_append_(to, pr.match, out);
}

/// An AppendEntries without entries after `at` (which the Log holds),
/// carrying the commit index and the current heartbeat round.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::send_empty_append_(const node_id& to, index_t at, output_type& out) {
  append_request<payload> req{at, log_->term_at(at), commit_, {}};
  req.round = std::get<leader_state>(role_).round;
  send_(to, std::move(req), out);
}

/// Sends the commit index to a follower that could commit more than it was
/// last told.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::maybe_send_commit_(const node_id& to, progress& pr, output_type& out) {
  if (min(commit_, pr.match) > pr.sent_commit) send_commit_(to, pr, out);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::broadcast_heartbeat_(leader_state& l, output_type& out) {
  for (auto& [id, pr] : l.peers) {
    if (pr.state == replication_state::probe) {
      if (pr.snapshot_backoff > 0) {
        // The follower refused our snapshot: wait before offering it again,
        // but keep it hearing from us.
        --pr.snapshot_backoff;
        send_heartbeat_(id, pr, out);
        continue;
      }
      // The heartbeat is the probe: re-send it whether or not the last one
      // was answered (it may have been lost).
      pr.probe_sent = false;
      send_append_(id, pr, out);
      continue;
    }
    if (pr.state == replication_state::snapshot) {
      // No acknowledgement since the last heartbeat: chunks were lost (or
      // the follower is gone). Resend from the last acknowledged offset.
      // Chunks carry no heartbeat round: a heartbeat goes along.
      if (++pr.stalled_heartbeats >= 2) pr.rewind_snapshot(pr.snap_acked);
      send_snapshot_(id, pr, out);
      send_heartbeat_(id, pr, out);
      continue;
    }
    // Replicate: entries in flight but no progress for two heartbeats means
    // messages were lost; fall back to probing from the known match.
    if (pr.inflight.count() > 0 && ++pr.stalled_heartbeats >= 2) {
      pr.become_probe();
      send_append_(id, pr, out);
      continue;
    }
    if (!send_append_(id, pr, out)) send_commit_(id, pr, out);
  }
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_append_response_(const node_id& from, const append_response& resp,
                                                      output_type& out) {
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) return step_status::unexpected;
  progress* tracked = l->peers.find(from);
  if (tracked == nullptr) return step_status::unknown_sender;  // not a member (any more)
  progress& pr = *tracked;
  if (resp.index > log_->last_index()) return step_status::malformed;  // about entries we never had
  heard_from_(pr);
  round_answered_(*l, &pr, resp.round, out);
  if (resp.success) {
    const bool advanced = pr.acknowledge(resp.index);
    if (pr.state == replication_state::probe) {
      if (pr.probe_sent && resp.index < pr.next.prev()) {
        // Older than the outstanding probe: its answer is still coming.
        if (advanced && maybe_commit_(*l, out)) after_commit_(*l, out);
        return step_status::ok;
      }
      // The probe (or something newer) matched: stream from here on. The
      // probe's own entries, if not acknowledged yet, are still in flight.
      const bool probe_out = pr.probe_sent && pr.probe_end > pr.match;
      const index_t probe_end = pr.probe_end;
      pr.become_replicate();
      if (probe_out) {
        pr.inflight.add(probe_end);
        pr.next = probe_end.next();
      }
    }
    if (advanced && maybe_commit_(*l, out)) {
      after_commit_(*l, out);
    } else {
      send_entries_or_commit_(from, pr, out);
    }
    if (l->transfer_to && *l->transfer_to == from && pr.match == log_->last_index())
      maybe_send_timeout_now_(*l, from, pr, out);
    return step_status::ok;
  }
  // Refused. A late refusal of an append sent before a snapshot transfer
  // started: the transfer goes on.
  if (pr.state == replication_state::snapshot) return step_status::unexpected;
  if (pr.state == replication_state::replicate) {
    // Refusals of messages older than what is known to match, or sent before
    // we rewound past them, are already handled.
    if (resp.index < pr.match || resp.index >= pr.next) return step_status::unexpected;
    if (resp.index == pr.match) {
      // The message right after the acknowledged prefix was refused: the
      // follower saw it before its predecessor. Everything after it in flight
      // will be refused too; resend from there now.
      pr.inflight.clear();
      pr.next = pr.match.next();
      send_append_(from, pr, out);
      return step_status::ok;
    }
    if (pr.inflight.holds(resp.index)) {
      // The message before the refused one is still in flight: the follower
      // saw them out of order. Nothing is lost; once that message is
      // acknowledged, resume right after it. Later messages will be refused
      // too (and ignored above). Had it been lost instead, the stall check of
      // broadcast_heartbeat_ falls back to probing.
      pr.inflight.drop_after(resp.index);
      pr.next = resp.index.next();
      return step_status::ok;
    }
    // No message we still track starts right after resp.index: this refuses
    // one we dropped when we rewound (it was doomed then). Stale.
    return step_status::unexpected;
  } else if (resp.index <= pr.match || resp.index != pr.next.prev()) {
    return step_status::unexpected;  // probe: only the answer to the outstanding probe counts
  }
  // Fast back-tracking (thesis §5.3 / the 6.824 optimisation): if we hold
  // the follower's conflicting term, resume after our last entry of that
  // term; otherwise skip the follower's whole term.
  index_t next = resp.conflict_index;
  if (resp.conflict_term != term_t{}) {
    if (auto li = last_index_of_term_(resp.conflict_term, resp.index)) next = li->next();
  }
  next = min(next, resp.index);       // we must probe strictly below the rejected prev
  next = max(next, pr.match.next());  // and never below what is known to match
  pr.become_probe();
  pr.next = next;
  send_append_(from, pr, out);
  return step_status::ok;
}

/// Last index in our log holding term `t`, or nothing.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
std::optional<index_t> node<Tr, Lg, Ck, Rn, Tc>::last_index_of_term_(term_t t, index_t upto) const {
  index_t lo = log_->snapshot_index();
  index_t hi = min(upto, log_->last_index());
  if (hi < lo || log_->term_at(lo) > t) return std::nullopt;
  // Largest i in [lo, hi] with term_at(i) <= t.
  while (lo < hi) {
    index_t mid{lo.value + (hi.value - lo.value + 1) / 2};
    if (log_->term_at(mid) <= t) lo = mid;
    else hi = mid.prev();
  }
  if (log_->term_at(lo) == t) return lo;
  return std::nullopt;
}

}  // namespace v0
}  // namespace raft
