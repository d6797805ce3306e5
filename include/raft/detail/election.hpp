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
  if (auto* l = std::get_if<leader_state>(&role_)) {
    if (++heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
      heartbeat_elapsed_ = 0;
      broadcast_heartbeat_(*l, out);
    }
    return;
  }
  if (++election_elapsed_ >= randomized_timeout_) campaign(out);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::campaign(output_type& out) {
  begin_(out);
  if (is_leader()) return;
  // The term cannot run out in practice (see validation.hpp); refuse rather
  // than overflow if it ever would.
  if (term_.value + 1 >= detail::counter_limit) return;
  set_hard_state_(term_.next(), cfg_.id, out);
  candidate_state c;
  c.self_vote_write = write_seq_;  // our own vote counts once this write is durable
  role_.template emplace<candidate_state>(std::move(c));
  leader_.reset();
  reset_election_timer_();
  record_change_(out);
  if (maybe_win_(out)) return;
  // The requests may leave before our vote is durable: they promise nothing.
  const vote_request req{log_->last_index(), last_term_()};
  for (const auto& v : conf_.incoming)
    if (!(v == cfg_.id)) send_(v, req, out);
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
  if (new_term) {
    RAFT_ASSERT(out != nullptr, "term change without an output");
    set_hard_state_(t, std::nullopt, *out);
  }
  const bool was_leader = is_leader();
  const bool changed = new_term || role() != raft::role::follower || !(leader_ == leader);
  role_.template emplace<follower_state>();
  leader_ = std::move(leader);
  // A leader's election clock did not run; start it afresh.
  if (out == nullptr || was_leader) reset_election_timer_();
  if (out != nullptr && changed) record_change_(*out);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::become_leader_(output_type& out) {
  leader_state l;
  for (const auto& v : conf_.incoming)
    if (!(v == cfg_.id)) l.peers.add(v, progress(log_->last_index().next(), cfg_.max_inflight));
  role_.template emplace<leader_state>(std::move(l));
  leader_ = cfg_.id;
  heartbeat_elapsed_ = 0;
  record_change_(out);
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
    return step_status::ok;
  }
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
