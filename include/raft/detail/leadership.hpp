// raft/detail/leadership.hpp - leadership transfer (thesis §3.10),
// proposal forwarding and back-pressure, the caller's reports about its
// transport, and status(). Part of raft::node.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

template <class Tr, class Lg, class Ck, class Rn, class Tc>
transfer_status node<Tr, Lg, Ck, Rn, Tc>::transfer_leadership(const node_id& to, output_type& out) {
  begin_(out);
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) return transfer_status::not_leader;
  if (to == cfg_.id) return transfer_status::is_self;
  progress* pr = l->peers.find(to);
  if (pr == nullptr || !members_.contains(to)) return transfer_status::unknown_target;
  if (!conf_.contains(to)) return transfer_status::not_voter;
  if (members_.is_witness(to)) return transfer_status::witness;
  if (l->transfer_to) {
    if (*l->transfer_to == to) return transfer_status::in_progress;
    abort_transfer_(*l, out);  // the newest request wins
  }
  l->transfer_to = to;
  l->transfer_elapsed = 0;
  report_transfer_(to, transfer_outcome::started, out);
  maybe_send_timeout_now_(*l, to, *pr, out);
  return transfer_status::started;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::abort_transfer_(leader_state& l, output_type& out) {
  if (!l.transfer_to) return;
  report_transfer_(*l.transfer_to, transfer_outcome::aborted, out);
  l.transfer_to.reset();
  l.transfer_elapsed = 0;
}

/// The target holds our whole log: tell it to campaign now. Otherwise send
/// it what it misses (flow control permitting); its acknowledgement brings
/// us back here.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::maybe_send_timeout_now_(leader_state& l, const node_id& to, progress& pr,
                                                       output_type& out) {
  if (!l.transfer_to || !(*l.transfer_to == to)) return;
  if (pr.match == log_->last_index()) {
    send_(to, timeout_now{}, out);
    l.sent_timeout_now = true;
    trace_(trace_kind::timeout_now_sent, to, pr.match.value);
  } else {
    send_append_(to, pr, out);
  }
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_timeout_now_(const node_id& from, output_type& out) {
  // Only the leader of this term sends it (the term rules made it ours).
  if (!heard_from_leader_(from, out)) return step_status::malformed;
  if (!promotable_()) return step_status::unexpected;  // a learner or witness never campaigns
  campaign_(true, out);  // no pre-vote: the leader asked for it (thesis §3.10)
  return step_status::ok;
}

/// After stepping down during a transfer: `leader` is the leader we now
/// know. The transfer succeeded if it is the target, in a newer term.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::watch_transfer_(const node_id& leader, output_type& out) {
  if (!watch_ || !(term_ > watch_->term)) return;
  report_transfer_(watch_->target, leader == watch_->target ? transfer_outcome::succeeded : transfer_outcome::aborted,
                   out);
  watch_.reset();
}

/// Every transfer outcome goes to the output and to the tracer, here.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::report_transfer_(const node_id& target, transfer_outcome how, output_type& out) {
  out.transfers.push_back({target, how});
  constexpr trace_kind kinds[] = {trace_kind::transfer_started, trace_kind::transfer_succeeded,
                                  trace_kind::transfer_aborted};
  trace_(kinds[static_cast<std::uint8_t>(how)], target);
}

/// Back-pressure: may the leader take `bytes` more payload bytes of
/// proposals? Always when nothing is uncommitted (so one oversized proposal
/// cannot block forever); otherwise within config.max_uncommitted_bytes.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::admit_bytes_(leader_state& l, std::uint64_t bytes) {
  const std::uint64_t limit = cfg_.max_uncommitted_bytes;
  if (limit == 0) return true;  // no limit: nothing to count (keeps the commit path free of it)
  if (l.uncommitted_bytes > 0 && (bytes > limit || l.uncommitted_bytes > limit - bytes)) {
    trace_(trace_kind::proposal_dropped, std::nullopt, l.uncommitted_bytes);
    return false;
  }
  l.uncommitted_bytes += bytes;
  return true;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_forward_proposal_(const node_id&, forward_proposal<payload>& req,
                                                          output_type& out) {
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr || l->transfer_to) return step_status::dropped;
  std::uint64_t bytes = 0;
  for (const auto& c : req.commands) bytes += Tr::payload_size(c);
  if (!admit_bytes_(*l, bytes)) return step_status::dropped;
  for (auto& c : req.commands) append_own_(entry_kind::command, std::move(c));
  wrote_(out);
  replicate_(*l, out);
  return step_status::ok;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::report_unreachable(const node_id& peer, output_type& out) {
  begin_(out);
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) return;
  progress* pr = l->peers.find(peer);
  if (pr == nullptr) return;
  trace_(trace_kind::peer_unreachable, peer);
  // Stop streaming into the void: the next heartbeat probes from the match.
  if (pr->state == replication_state::replicate) {
    pr->become_probe();
    pr->probe_sent = true;
  }
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::report_snapshot(const node_id& peer, bool delivered, output_type& out) {
  begin_(out);
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) return;
  progress* pr = l->peers.find(peer);
  if (pr == nullptr || pr->state != replication_state::snapshot) return;
  if (delivered) return;  // the follower's acknowledgements drive the rest
  // Lost on the way: resend from the last acknowledged offset now.
  pr->rewind_snapshot(pr->snap_acked);
  send_snapshot_(peer, *pr, out);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::status() const -> status_type {
  status_type s;
  s.id = cfg_.id;
  s.role = role();
  s.term = term_;
  s.vote = vote_;
  s.leader = leader_;
  s.commit = commit_;
  s.applied = applied_;
  s.first_index = log_->first_index();
  s.last_index = log_->last_index();
  s.durable_index = durable_index_;
  s.pending_reads = reads_asked_.size() + reads_ready_.size();
  s.configuration = members_;
  s.configuration_index = conf_index_;
  if (const auto* l = std::get_if<leader_state>(&role_)) {
    s.transfer_target = l->transfer_to;
    s.lease_valid = lease_valid();
    s.uncommitted_bytes = l->uncommitted_bytes;
    s.pending_reads = l->reads.size();
    s.peers.reserve(l->peers.size());
    for (const auto& [id, pr] : l->peers) {
      peer_status<node_id> p;
      p.id = id;
      p.match = pr.match;
      p.next = pr.next;
      p.state = pr.state;
      p.recent_active = recently_active_(*l, pr);
      p.learner = pr.learner;
      p.witness = pr.witness;
      p.lag = distance(pr.match, log_->last_index());
      p.inflight_messages = pr.inflight.count();
      p.inflight_bytes = pr.inflight.bytes();
      if (pr.state == replication_state::snapshot) {
        p.snapshot_index = pr.snap_index;
        p.snapshot_acked = pr.snap_acked;
      }
      p.acked_round = pr.acked_round;
      s.peers.push_back(std::move(p));
    }
  }
  return s;
}

}  // namespace v0
}  // namespace raft
