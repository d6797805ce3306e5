// raft/trace.hpp - the optional event hook: what a node decided, and why.
//
// The fifth policy of raft::node. The default, no_trace, is empty and says
// `enabled = false`: the node then builds no event at all (every call site is
// `if constexpr`), so an untraced node pays nothing. A tracer is any type with
//
//     static constexpr bool enabled = true;
//     void operator()(const raft::trace_event<NodeId>& e);
//
// called synchronously, inside the node's call, in the order things happen.
// It must not call back into the node. The node performs no I/O: a tracer
// that logs does so itself (or queues the events for the caller's loop).
#pragma once

#include <cstdint>
#include <optional>

#include "types.hpp"

namespace raft {
inline namespace v0 {

enum class trace_kind : std::uint8_t {
  pre_vote_started,      ///< Election timeout: asking for pre-votes for term `term` (thesis §9.6).
  election_started,      ///< Campaigning in `term` (`index` 1: started by a leadership transfer).
  became_follower,       ///< `peer`: the leader, if known.
  became_leader,         ///< Won the election of `term`.
  vote_granted,          ///< Granted `peer` a vote (or pre-vote, `index` 1) for `term`.
  vote_refused,          ///< Refused `peer` a vote (or pre-vote, `index` 1) for `term`.
  vote_ignored,          ///< Ignored `peer`'s request: a leader is active (leader stickiness).
  append_refused,        ///< Refused `peer`'s AppendEntries at prev index `index` (log mismatch).
  message_rejected,      ///< Dropped a message from `peer`; `index` is the raft::step_status.
  quorum_lost,           ///< CheckQuorum: no quorum heard from in an election timeout; stepping down.
  transfer_started,      ///< Leadership transfer to `peer` began.
  transfer_succeeded,    ///< `peer` became leader after our transfer.
  transfer_aborted,      ///< The transfer to `peer` did not finish.
  timeout_now_sent,      ///< `peer` is up to date (`index`): told to campaign now.
  snapshot_send_started, ///< Sending the snapshot ending at `index` to `peer`.
  snapshot_sent,         ///< `peer` installed the snapshot ending at `index`.
  snapshot_refused,      ///< `peer` refused the snapshot ending at `index` (too large or inconsistent).
  proposal_dropped,      ///< Over max_uncommitted_bytes (`index`: the bytes uncommitted).
  peer_unreachable,      ///< The caller reported `peer` unreachable.
  membership_changed,    ///< The configuration in use changed: now the one at index `index`.
  removed_step_down,     ///< The leader's removal committed: stepping down (`peer`: told to campaign, if any).
};

inline constexpr std::uint8_t trace_kind_count = 21;

[[nodiscard]] constexpr const char* to_string(trace_kind k) noexcept {
  constexpr const char* names[] = {"pre_vote_started", "election_started",   "became_follower",
                                   "became_leader",    "vote_granted",       "vote_refused",
                                   "vote_ignored",     "append_refused",     "message_rejected",
                                   "quorum_lost",      "transfer_started",   "transfer_succeeded",
                                   "transfer_aborted", "timeout_now_sent",   "snapshot_send_started",
                                   "snapshot_sent",    "snapshot_refused",   "proposal_dropped",
                                   "peer_unreachable", "membership_changed", "removed_step_down"};
  const auto i = static_cast<std::uint8_t>(k);
  return i < trace_kind_count ? names[i] : "?";
}

template <class NodeId>
struct trace_event {
  trace_kind kind;
  term_t term;                  ///< The node's term when it happened.
  std::optional<NodeId> peer;   ///< The other node concerned, if any.
  std::uint64_t index = 0;      ///< A log index or a code, per kind (see trace_kind).
};

/// The default: no tracing, no cost.
struct no_trace {
  static constexpr bool enabled = false;
  template <class Event>
  void operator()(const Event&) const noexcept {}
};

}  // namespace v0
}  // namespace raft
