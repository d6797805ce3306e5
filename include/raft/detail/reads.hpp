// raft/detail/reads.hpp - linearizable reads without log entries: ReadIndex
// and leases (thesis §6.4, §6.4.1). Part of raft::node.
//
// Heartbeat rounds. The leader numbers its heartbeat rounds; every
// AppendEntries carries the current round and every answer echoes it. A round
// begins at each heartbeat tick, and at once when a read needs one and no
// round is in flight. Once a quorum (this node included) answered round r, the
// node was still leader when r began: no newer leader could have committed
// anything before then (such a leader needs a quorum that moved past our term,
// and that quorum would intersect the one that answered us).
//
// ReadIndex, on the leader:
//   1. the read index is the commit index, once the leader has committed an
//      entry of its own term (before that, it may not know the latest
//      committed entries; the read waits);
//   2. the read waits for the first round that begins after it arrived
//      (every read arriving meanwhile shares that round);
//   3. once a quorum answered that round, out.reads holds {id, index}: the
//      caller serves it after applying through index (the leader has handed
//      out every committed entry by then).
// A follower asks the leader (read_index_request), and holds the answer until
// it has applied through the index.
//
// Leases (config.lease_reads). A follower that answered round r heard from
// the leader when r began or later, and ignores votes for election_ticks
// after that (leader stickiness). So if a quorum answered rounds begun at
// time t or later, no other leader can exist before t + election_ticks on
// their clocks; the leader, allowing for drift, serves reads at once until
// t + election_ticks - max_clock_drift_ticks on its own clock. A transfer in
// progress suspends the lease (its TimeoutNow overrides stickiness), and once
// a TimeoutNow left, the lease is off for the rest of the term: the transfer
// may abort, but a TimeoutNow delayed in the network can still start an
// election that ignores stickiness, at any later time.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

template <class Tr, class Lg, class Ck, class Rn, class Tc>
read_status node<Tr, Lg, Ck, Rn, Tc>::read_index(std::uint64_t id, output_type& out, read_mode mode) {
  begin_(out);
  if (mode == read_mode::lease && !cfg_.lease_reads) return read_status::lease_disabled;
  if (auto* l = std::get_if<leader_state>(&role_)) {
    if (l->reads.size() >= cfg_.max_pending_reads) return read_status::too_many;
    leader_read_(*l, id, std::nullopt, mode, out);
    return read_status::ok;
  }
  if (!leader_) return read_status::no_leader;
  if (reads_asked_.size() + reads_ready_.size() >= cfg_.max_pending_reads) return read_status::too_many;
  reads_asked_.push_back(read_asked{id, 0});
  send_(*leader_, read_index_request{id}, out);
  return read_status::ok;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::lease_valid() const noexcept {
  const auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr || !cfg_.lease_reads || !l->committed_in_term || l->transfer_to || l->sent_timeout_now) return false;
  const std::uint64_t now = clock_.now();
  // The oldest round start a quorum vouches for (stored + 1; 0: none).
  const std::optional<std::uint64_t> from = conf_.template committed<std::uint64_t>([&](const node_id& id) {
    if (id == cfg_.id) return now + 1;
    const progress* pr = l->peers.find(id);
    return pr == nullptr ? std::uint64_t{0} : pr->lease_from;
  });
  if (!from || *from == 0) return false;
  const std::uint64_t start = *from - 1;
#ifdef RAFT_TEST_MUTATION_LONG_LEASE
  // Mutation: a lease four election timeouts long, outliving the followers'
  // stickiness. The simulator's read check must catch it.
  return now < start + 4 * cfg_.election_ticks;
#endif
  return now < start + (cfg_.election_ticks - cfg_.max_clock_drift_ticks);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::leader_read_(leader_state& l, std::uint64_t id, std::optional<node_id> from,
                                            read_mode mode, output_type& out) {
  if (mode == read_mode::lease && lease_valid()) {
    answer_read_(pending_read{id, commit_, 0, std::move(from)}, commit_, out);
    return;
  }
  l.reads.push_back(pending_read{id, l.committed_in_term ? commit_ : index_t{}, l.round + 1, std::move(from)});
  if (l.confirmed_round >= l.round) {
    start_round_(l, out);  // no round in flight: begin one for this read now
  } else {
    l.round_wanted = true;  // begins when the round in flight is answered, or at the next heartbeat
    round_answered_(l, nullptr, 0, out);  // (at once if this node is a quorum by itself)
  }
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::begin_round_(leader_state& l) {
  ++l.round;
  l.round_wanted = false;
  // Keep the start times of recent rounds only: an answer to an older round
  // is too old to extend a lease anyway.
  constexpr std::size_t keep = 64;
  if (l.round_start.size() >= keep) l.round_start.erase(l.round_start.begin());
  l.round_start.emplace_back(l.round, clock_.now());
}

/// An empty AppendEntries that carries the current round. Anchored at the
/// follower's match index when the Log still has it (it never fails there);
/// otherwise at the snapshot point (it may be refused: a refusal confirms
/// the round as well as a success).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::send_heartbeat_(const node_id& to, progress& pr, output_type& out) {
  const index_t at = max(pr.match, log_->snapshot_index());
  if (at == pr.match) pr.sent_commit = max(pr.sent_commit, min(commit_, pr.match));
  send_empty_append_(to, at, out);
}

/// A follower answered `round` (pr null: only re-check the quorum). Confirms
/// the reads waiting for rounds a quorum has now answered.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::round_answered_(leader_state& l, progress* pr, std::uint64_t round,
                                               output_type& out) {
  if (pr != nullptr) {
    if (round <= pr->acked_round || round > l.round) return;
    pr->acked_round = round;
    if (cfg_.lease_reads)
      for (const auto& [r, t] : l.round_start)
        if (r == round) pr->lease_from = t + 1;
    // Nothing waits for a round: the quorum question can wait too (a read
    // that arrives later asks it, see leader_read_). Keeps the common
    // acknowledgement path as cheap as before rounds existed.
    if (l.reads.empty()) return;
  }
  const std::optional<std::uint64_t> q = conf_.template committed<std::uint64_t>([&](const node_id& id) {
    if (id == cfg_.id) return l.round;
    const progress* p = l.peers.find(id);
    return p == nullptr ? std::uint64_t{0} : p->acked_round;
  });
  if (!q || *q <= l.confirmed_round) return;
  l.confirmed_round = *q;
  release_reads_(l, out);
  if (l.round_wanted && l.confirmed_round >= l.round) start_round_(l, out);
}

/// Begins a round for the reads waiting, out of the heartbeat schedule, and
/// sends it to every follower (a one-node cluster confirms it at once).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::start_round_(leader_state& l, output_type& out) {
  begin_round_(l);
  for (auto& [id, pr] : l.peers) send_heartbeat_(id, pr, out);
  round_answered_(l, nullptr, 0, out);
}

/// Answers every read whose round is confirmed, once the read index is known.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::release_reads_(leader_state& l, output_type& out) {
  if (!l.committed_in_term) return;
  std::size_t keep = 0;
  for (std::size_t k = 0; k < l.reads.size(); ++k) {
    auto& r = l.reads[k];
    if (r.index == index_t{}) r.index = commit_;
    bool confirmed = r.round <= l.confirmed_round;
#ifdef RAFT_TEST_MUTATION_STALE_READ
    // Mutation: serve without confirming leadership (what a stale leader
    // would do). The simulator's read check must catch it.
    confirmed = true;
#endif
    if (confirmed) {
      answer_read_(r, r.index, out);
      continue;
    }
    if (keep != k) l.reads[keep] = std::move(r);
    ++keep;
  }
  l.reads.resize(keep);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::answer_read_(const pending_read& r, index_t index, output_type& out) {
  if (r.from) {
    send_(*r.from, read_index_response{r.id, index, true}, out);
  } else {
    out.reads.push_back(read_state{r.id, index});  // the leader has handed out everything committed
  }
}

/// This node lost track of its reads (leadership, or the leader, changed):
/// the caller's reads fail; a follower's answered reads stay (their index
/// was confirmed) and wait for the state machine.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::fail_reads_(output_type& out) {
  if (auto* l = std::get_if<leader_state>(&role_)) {
    for (const auto& r : l->reads) {
      if (r.from) send_(*r.from, read_index_response{r.id, index_t{}, false}, out);
      else out.failed_reads.push_back(r.id);
    }
    l->reads.clear();
  }
  for (const auto& r : reads_asked_) out.failed_reads.push_back(r.id);
  reads_asked_.clear();
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::release_follower_reads_(output_type& out) {
  if (reads_ready_.empty()) return;
  std::size_t keep = 0;
  for (std::size_t k = 0; k < reads_ready_.size(); ++k) {
    if (reads_ready_[k].index <= applied_) {
      out.reads.push_back(reads_ready_[k]);
      continue;
    }
    reads_ready_[keep++] = reads_ready_[k];
  }
  reads_ready_.resize(keep);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_read_index_request_(const node_id& from, const read_index_request& req,
                                                            output_type& out) {
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr || l->reads.size() >= cfg_.max_pending_reads) {
    send_(from, read_index_response{req.context, index_t{}, false}, out);
    return l == nullptr ? step_status::unexpected : step_status::dropped;
  }
  leader_read_(*l, req.context, from, read_mode::read_index, out);
  return step_status::ok;
}

/// Follower: a read request (or its answer) may be lost. Ask again once an
/// election timeout passed without an answer. If both copies get answered,
/// the second answer finds no read waiting and is ignored (the leader does
/// not look for duplicates: with max_pending_reads reads pending, that would
/// cost a hostile follower's every request a scan of all of them).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::resend_read_requests_(output_type& out) {
  if (!leader_ || is_leader()) return;
  for (auto& r : reads_asked_) {
    if (++r.age < cfg_.election_ticks) continue;
    r.age = 0;
    send_(*leader_, read_index_request{r.id}, out);
  }
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_read_index_response_(const node_id& from, const read_index_response& resp,
                                                             output_type& out) {
  if (!(leader_ == from) && resp.ok) return step_status::unexpected;
  auto it = std::find_if(reads_asked_.begin(), reads_asked_.end(),
                         [&](const read_asked& r) { return r.id == resp.context; });
  if (it == reads_asked_.end()) return step_status::unexpected;
  reads_asked_.erase(it);
  if (!resp.ok) {
    out.failed_reads.push_back(resp.context);
    return step_status::ok;
  }
  reads_ready_.push_back(read_state{resp.context, resp.index});
  release_follower_reads_(out);
  return step_status::ok;
}

}  // namespace v0
}  // namespace raft
