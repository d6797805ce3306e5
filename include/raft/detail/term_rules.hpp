// raft/detail/term_rules.hpp - step(): the term rules every message passes
// first (paper §5.1, Figure 2 "Rules for Servers"), as one row per message
// type, then the handler for that type. Part of raft::node.
//
// The rows answer, for a message of each type:
//   adopt_newer_term  a newer term makes us a follower of that term;
//   sender_leads      only that term's leader sends it: it is our leader now;
//   answer_stale      from an older term: reply, so the sender learns it is
//                     behind (replies themselves are just dropped).
// Adopting a term never restarts the election timer by itself (Figure 2:
// only hearing from the current leader, granting a vote or starting an
// election do). A pre-vote request does not adopt its term (it is a
// question about a term nobody campaigns in yet, thesis §9.6), nor does a
// granted pre-vote; a refused one carries the refuser's term, which may be
// newer.
//
// Before the rows, leader stickiness (thesis §4.2.3, config.check_quorum):
// a vote or pre-vote request of a newer term is ignored altogether while
// this node hears from a leader, unless a leadership transfer started it.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {
namespace detail {

struct term_rule {
  bool adopt_newer_term;
  bool sender_leads;
  bool answer_stale;
};

// clang-format off
inline constexpr term_rule term_rule_of(const vote_request&) noexcept      { return {true, false, true}; }
inline constexpr term_rule term_rule_of(const vote_response&) noexcept     { return {true, false, false}; }
template <class P>
inline constexpr term_rule term_rule_of(const append_request<P>&) noexcept { return {true, true, true}; }
inline constexpr term_rule term_rule_of(const append_response&) noexcept   { return {true, false, false}; }
inline constexpr term_rule term_rule_of(const install_snapshot&) noexcept  { return {true, true, true}; }
inline constexpr term_rule term_rule_of(const snapshot_response&) noexcept { return {true, false, false}; }
inline constexpr term_rule term_rule_of(const pre_vote_request&) noexcept  { return {false, false, true}; }
inline constexpr term_rule term_rule_of(const pre_vote_response& r) noexcept { return {!r.granted, false, false}; }
inline constexpr term_rule term_rule_of(const timeout_now&) noexcept       { return {true, true, false}; }
inline constexpr term_rule term_rule_of(const read_index_request&) noexcept  { return {true, false, true}; }
inline constexpr term_rule term_rule_of(const read_index_response&) noexcept { return {true, false, false}; }
template <class P>
inline constexpr term_rule term_rule_of(const forward_proposal<P>&) noexcept { return {true, false, false}; }
// clang-format on

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

}  // namespace detail

/// The reply that tells a sender of an older term that it is behind.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
template <class Body>
void node<Tr, Lg, Ck, Rn, Tc>::answer_stale_(const node_id& from, const Body& body, output_type& out) {
  if constexpr (std::is_same_v<Body, append_request<payload>>)
    send_(from, append_response{false, body.prev_index, {}, {}, body.round}, out);
  else if constexpr (std::is_same_v<Body, vote_request>)
    send_(from, vote_response{false}, out);
  else if constexpr (std::is_same_v<Body, install_snapshot>)
    send_(from, snapshot_response{body.last_index, 0, false, snapshot_refusal::none}, out);
  else if constexpr (std::is_same_v<Body, pre_vote_request>)
    send_(from, pre_vote_response{false}, out);
  else if constexpr (std::is_same_v<Body, read_index_request>)
    send_(from, read_index_response{body.context, index_t{}, false}, out);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::step(message_type m, output_type& out) {
  begin_(out);
  if (!(m.to == cfg_.id)) return step_status::not_for_me;
  // Not checked against the membership: a node answers requests from
  // servers outside its configuration (thesis §4.1; a removed server's vote
  // request is refused by the Raft rules, not dropped), and the leader
  // ignores answers from peers it does not track.
  if (m.from == cfg_.id) return step_status::unknown_sender;
  if (!well_formed_(m)) {
    trace_(trace_kind::message_rejected, m.from, static_cast<std::uint64_t>(step_status::malformed));
    return step_status::malformed;
  }

  if (m.term > term_) {
    const auto* vr = std::get_if<vote_request>(&m.body);
    if (((vr != nullptr && !vr->transfer) || std::holds_alternative<pre_vote_request>(m.body)) && leader_active_()) {
      trace_(trace_kind::vote_ignored, m.from);
      return step_status::leader_active;
    }
  }
  if (m.term != term_) {  // the table is only needed then: keep the common case free of it
    const detail::term_rule rule = std::visit([](const auto& b) { return detail::term_rule_of(b); }, m.body);
    if (m.term > term_) {
      if (rule.adopt_newer_term)
        become_follower_(m.term, rule.sender_leads ? std::optional<node_id>(m.from) : std::nullopt, &out);
    } else {
      if (rule.answer_stale) std::visit([&](const auto& b) { answer_stale_(m.from, b, out); }, m.body);
      return step_status::stale_term;
    }
  }

  return std::visit(detail::overloaded{
                        [&](vote_request& b) { return on_vote_request_(m.from, b, out); },
                        [&](vote_response& b) { return on_vote_response_(m.from, b, out); },
                        [&](append_request<payload>& b) { return on_append_request_(m.from, b, out); },
                        [&](append_response& b) { return on_append_response_(m.from, b, out); },
                        [&](install_snapshot& b) { return on_install_snapshot_(m.from, m.term, b, out); },
                        [&](snapshot_response& b) { return on_snapshot_response_(m.from, b, out); },
                        [&](pre_vote_request& b) { return on_pre_vote_request_(m.from, m.term, b, out); },
                        [&](pre_vote_response& b) { return on_pre_vote_response_(m.from, m.term, b, out); },
                        [&](timeout_now&) { return on_timeout_now_(m.from, out); },
                        [&](read_index_request& b) { return on_read_index_request_(m.from, b, out); },
                        [&](read_index_response& b) { return on_read_index_response_(m.from, b, out); },
                        [&](forward_proposal<payload>& b) { return on_forward_proposal_(m.from, b, out); },
                    },
                    m.body);
}

}  // namespace v0
}  // namespace raft
