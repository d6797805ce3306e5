// raft/detail/election.hpp - election timeouts, campaigns, votes and role
// changes (paper §5.2, §5.4.1). Part of raft::node.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::tick(output_type& out) {
  begin_(out);
  clock_.advance();
  if (since_start_ < cfg_.election_ticks) ++since_start_;
  if (watch_ && ++watch_->elapsed >= cfg_.election_ticks) {
    // The transfer we started as leader did not produce its leader in time.
    report_transfer_(watch_->target, transfer_outcome::aborted, out);
    watch_.reset();
  }
  if (auto* l = std::get_if<leader_state>(&role_)) {
    if (l->transfer_to && ++l->transfer_elapsed >= cfg_.election_ticks) abort_transfer_(*l, out);
    ++l->ticks;
    check_quorum_(*l, out);
    if (!is_leader()) return;
    tidy_membership_(*l, out);
    if (!is_leader()) return;
    if (++heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
      heartbeat_elapsed_ = 0;
      begin_round_(*l);
      broadcast_heartbeat_(*l, out);
    }
    return;
  }
  resend_read_requests_(out);
  if (election_elapsed_ < randomized_timeout_) ++election_elapsed_;
  if (election_elapsed_ >= randomized_timeout_ && promotable_()) campaign(out);
}

/// CheckQuorum (thesis §6.2): a leader that has not heard from a quorum of
/// voters within the last election timeout steps down, so that a leader cut
/// off from the cluster stops answering its clients one election timeout
/// after it last heard from its quorum. Checked at every tick (not once per
/// timeout, which would allow up to two). Asked through the quorum rules, it
/// holds for joint configurations too.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::check_quorum_(leader_state& l, output_type& out) {
  if (!cfg_.check_quorum) return;
  const bool alive = conf_.has_quorum([&](const node_id& id) {
    if (id == cfg_.id) return true;
    const progress* pr = l.peers.find(id);
    return pr != nullptr && recently_active_(l, *pr);
  });
  if (alive) return;
  trace_(trace_kind::quorum_lost);
  become_follower_(term_, std::nullopt, &out);
}

/// The election timeout elapsed (or the caller asked for an election). With
/// PreVote (thesis §9.6) the node first asks whether it could win, without
/// touching its term or vote; otherwise it campaigns at once.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::campaign(output_type& out) {
  begin_(out);
  // Learners, witnesses and nodes outside their configuration never campaign.
  if (is_leader() || !promotable_()) return;
  if (cfg_.pre_vote) pre_campaign_(out);
  else campaign_(false, out);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::pre_campaign_(output_type& out) {
  if (term_.value + 1 >= detail::counter_limit) return;
  fail_reads_(out);
  role_.template emplace<pre_candidate_state>();
  leader_.reset();
  reset_election_timer_();
  record_change_(out);
  trace_(trace_kind::pre_vote_started, std::nullopt, term_.value + 1);
  if (maybe_win_pre_vote_(out)) return;
  const pre_vote_request req{log_->last_index(), last_term_()};
  for (const auto& v : conf_.voters())  // both sets while joint (thesis §4.3)
    if (!(v == cfg_.id)) out.messages.push_back(message_type{cfg_.id, v, term_.next(), req});
}

/// Campaigns in the next term (paper §5.2). `transfer`: started by a
/// TimeoutNow, so the voters answer despite leader stickiness.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::campaign_(bool transfer, output_type& out) {
  // The term cannot run out in practice (see validation.hpp); refuse rather
  // than overflow if it ever would.
  if (term_.value + 1 >= detail::counter_limit) return;
  fail_reads_(out);
  set_hard_state_(term_.next(), cfg_.id, out);
  candidate_state c;
  c.self_vote_write = write_seq_;  // our own vote counts once this write is durable
  role_.template emplace<candidate_state>(std::move(c));
  leader_.reset();
  reset_election_timer_();
  record_change_(out);
  trace_(trace_kind::election_started, std::nullopt, transfer ? 1 : 0);
  if (maybe_win_(out)) return;
  // The requests may leave before our vote is durable: they promise nothing.
  const vote_request req{log_->last_index(), last_term_(), transfer};
  for (const auto& v : conf_.voters())  // both sets while joint (thesis §4.3)
    if (!(v == cfg_.id)) send_(v, req, out);
}

/// Leader stickiness (thesis §4.2.3, with CheckQuorum): a node that heard
/// from a leader less than an election timeout ago does not help depose it.
/// With lease reads, a node that just started counts as having heard from
/// one (it may have acknowledged a lease before it restarted).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::leader_active_() const noexcept {
  if (!cfg_.check_quorum) return false;
  if (is_leader()) return true;  // CheckQuorum steps it down when it is not
  if (cfg_.lease_reads && since_start_ < cfg_.election_ticks) return true;
  return heard_leader_recently_();
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::reset_election_timer_() {
  election_elapsed_ = 0;
  // Randomised in [election_ticks, 2 * election_ticks) (paper §5.2).
  randomized_timeout_ = cfg_.election_ticks + static_cast<std::uint32_t>(rng_.next() % cfg_.election_ticks);
}

/// Becomes a follower of term `t` (>= term_), knowing `leader` if given.
/// This does not restart the election timer: per Figure 2 only hearing from
/// the current leader, granting a vote or starting an election do. A node
/// that adopts a newer term from a candidate it refuses must still time out
/// on schedule - it may be the only one whose log can win. `out` is null
/// only in the constructor (nothing to report yet).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::become_follower_(term_t t, std::optional<node_id> leader, output_type* out) {
  const bool new_term = t > term_;
  if (auto* l = std::get_if<leader_state>(&role_); l != nullptr && l->transfer_to) {
    // Stepping down during a transfer: see whether the target takes over.
    watch_ = transfer_watch{*l->transfer_to, term_, l->transfer_elapsed};
  }
  if (new_term) {
    RAFT_ASSERT(out != nullptr, "term change without an output");
    set_hard_state_(t, std::nullopt, *out);
  }
  const bool was_leader = is_leader();
  const bool changed = new_term || role() != raft::role::follower || !(leader_ == leader);
  if (out != nullptr && (changed || was_leader)) fail_reads_(*out);
  role_.template emplace<follower_state>();
  leader_ = std::move(leader);
  // A leader's election clock did not run; start it afresh.
  if (out == nullptr || was_leader) reset_election_timer_();
  if (out != nullptr && changed) {
    record_change_(*out);
    trace_(trace_kind::became_follower, leader_);
    if (leader_) watch_transfer_(*leader_, *out);
  }
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::become_leader_(output_type& out) {
  leader_state l;
  l.round_start.emplace_back(l.round, clock_.now());
  role_.template emplace<leader_state>(std::move(l));
  sync_peers_(std::get<leader_state>(role_));  // every member: voters of both sets, learners
  leader_ = cfg_.id;
  heartbeat_elapsed_ = 0;
  record_change_(out);
  trace_(trace_kind::became_leader);
  // A new leader commits an entry of its own term at once (paper §8,
  // thesis §6.4): it is what lets entries of earlier terms commit (§5.4.2).
  append_own_(entry_kind::noop, payload{});
  wrote_(out);
  replicate_(std::get<leader_state>(role_), out);
}

/// Candidate: become leader once a majority granted its vote (our own vote
/// counts once it is durable), or give up once a majority refused.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::maybe_win_(output_type& out) {
  auto& c = std::get<candidate_state>(role_);
  const bool self_durable = durable_seq_ >= c.self_vote_write;
  const vote_result r = conf_.vote([&](const node_id& id) -> std::optional<bool> {
    if (id == cfg_.id) return self_durable ? std::optional<bool>(true) : std::nullopt;
    for (const auto& [who, granted] : c.votes)
      if (who == id) return granted;
    return std::nullopt;
  });
  switch (r) {
    case vote_result::won: become_leader_(out); return true;
    case vote_result::lost: become_follower_(term_, std::nullopt, &out); return true;
    case vote_result::pending: return false;
  }
  return false;
}

/// Pre-candidate: campaign for real once a majority would vote for us (our
/// own pre-vote counts at once: it promises nothing), give up once a
/// majority would not.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::maybe_win_pre_vote_(output_type& out) {
  auto& c = std::get<pre_candidate_state>(role_);
  const vote_result r = conf_.vote([&](const node_id& id) -> std::optional<bool> {
    if (id == cfg_.id) return true;
    for (const auto& [who, granted] : c.votes)
      if (who == id) return granted;
    return std::nullopt;
  });
  switch (r) {
    case vote_result::won: campaign_(false, out); return true;
    case vote_result::lost: become_follower_(term_, std::nullopt, &out); return true;
    case vote_result::pending: return false;
  }
  return false;
}

/// PreVote (thesis §9.6): would we vote for `from` in term `msg_term`? Yes
/// if that term is newer than ours, its log is at least as up-to-date as
/// ours, and we have not heard from a leader within an election timeout.
/// Nothing is written and no timer restarts: a pre-vote changes nothing here.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_pre_vote_request_(const node_id& from, term_t msg_term,
                                                          const pre_vote_request& req, output_type& out) {
  const term_t my_last_term = last_term_();
  const bool up_to_date =
      req.last_term > my_last_term || (req.last_term == my_last_term && req.last_index >= log_->last_index());
  const bool heard_leader = is_leader() || heard_leader_recently_();
  const bool grant = msg_term > term_ && up_to_date && !heard_leader;
  // A grant answers in the term asked about (so the pre-candidate counts it);
  // a refusal in ours (so a pre-candidate that is behind learns our term).
  out.messages.push_back(message_type{cfg_.id, from, grant ? msg_term : term_, pre_vote_response{grant}});
  trace_(grant ? trace_kind::vote_granted : trace_kind::vote_refused, from, 1);
  return step_status::ok;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_pre_vote_response_(const node_id& from, term_t msg_term,
                                                           const pre_vote_response& resp, output_type& out) {
  auto* c = std::get_if<pre_candidate_state>(&role_);
  // Only answers about the term we would campaign in count (a refusal in our
  // own term counts as a refusal).
  if (c == nullptr || !(msg_term == term_.next() || (!resp.granted && msg_term == term_)))
    return step_status::unexpected;
  for (const auto& v : c->votes)
    if (v.first == from) return step_status::ok;
  c->votes.emplace_back(from, resp.granted);
  maybe_win_pre_vote_(out);
  return step_status::ok;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_vote_request_(const node_id& from, const vote_request& req, output_type& out) {
  // Grant at most one vote per term (§5.2), and only to a candidate whose
  // log is at least as up-to-date as ours (§5.4.1): a later last term wins,
  // equal last terms compare by length. A node that already follows a
  // leader this term refuses: a leader exists.
  const bool may_vote = vote_ ? *vote_ == from : !leader_.has_value();
  const term_t my_last_term = last_term_();
  const bool up_to_date =
      req.last_term > my_last_term || (req.last_term == my_last_term && req.last_index >= log_->last_index());
  const bool grant = may_vote && up_to_date && !is_leader();
  if (!grant) {
    send_(from, vote_response{false}, out);  // a refusal promises nothing: it may leave at once
    trace_(trace_kind::vote_refused, from);
    return step_status::ok;
  }
  trace_(trace_kind::vote_granted, from);
  if (!vote_) set_hard_state_(term_, from, out);
  reset_election_timer_();  // granting a vote restarts the timer (Figure 2)
  send_durable_(from, vote_response{true}, out);  // leaves once the vote is durable
  return step_status::ok;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_vote_response_(const node_id& from, const vote_response& resp, output_type& out) {
  auto* c = std::get_if<candidate_state>(&role_);
  if (c == nullptr) return step_status::unexpected;  // late answer: the election is over
  for (const auto& v : c->votes)
    if (v.first == from) return step_status::ok;  // duplicates count once
  c->votes.emplace_back(from, resp.granted);
  maybe_win_(out);
  return step_status::ok;
}

}  // namespace v0
}  // namespace raft
