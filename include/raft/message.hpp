// raft/message.hpp - log entries and the closed set of messages nodes exchange.
//
// Every message is an envelope (from, to, term) around one of a fixed list of
// plain structs. The node dispatches on the list with std::visit over an
// overload set, so adding a message type without handling it in every role
// fails to compile instead of being silently ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "types.hpp"

namespace raft {
inline namespace v0 {

/// What an entry carries. Applications see every kind, so that the applied
/// sequence has no gaps; they act on `command` and skip the rest.
enum class entry_kind : std::uint8_t {
  command = 0,  ///< A client command: `data` is the proposed payload.
  noop = 1,     ///< Appended by each new leader (paper §8) so that entries of
                ///< earlier terms commit promptly; `data` is empty.
};

inline constexpr std::uint8_t entry_kind_count = 2;

template <class Payload>
struct entry {
  term_t term;
  index_t index;
  entry_kind kind = entry_kind::command;
  Payload data{};

  friend bool operator==(const entry&, const entry&) = default;
};

/// RequestVote (paper §5.2, Figure 2). The candidate is the envelope's sender.
struct vote_request {
  index_t last_index;  ///< Index of the candidate's last log entry.
  term_t last_term;    ///< Term of the candidate's last log entry.
  friend bool operator==(const vote_request&, const vote_request&) = default;
};

struct vote_response {
  bool granted = false;
  friend bool operator==(const vote_response&, const vote_response&) = default;
};

/// AppendEntries (paper §5.3). With no entries it is a heartbeat that also
/// carries the leader's commit index.
template <class Payload>
struct append_request {
  index_t prev_index;   ///< Index of the entry just before `entries`.
  term_t prev_term;     ///< Term of that entry (consistency check).
  index_t commit;       ///< The leader's commit index.
  std::vector<entry<Payload>> entries;  ///< Contiguous, starting at prev_index + 1.
  friend bool operator==(const append_request&, const append_request&) = default;
};

/// Reply to AppendEntries. On success `index` is the last index the follower
/// now knows to match the leader's log. On rejection `index` echoes the
/// request's prev_index (so the leader can recognise stale replies), and the
/// conflict hint lets the leader skip a whole divergent term per round trip
/// (thesis §5.3, "fast back-tracking"): `conflict_term` is the term the
/// follower holds at prev_index (0 if its log is too short) and
/// `conflict_index` the first index the follower holds with that term (or its
/// last index + 1 when the log is too short).
struct append_response {
  bool success = false;
  index_t index;
  index_t conflict_index;
  term_t conflict_term;
  friend bool operator==(const append_response&, const append_response&) = default;
};

template <class NodeId, class Payload>
struct message {
  using body_type = std::variant<vote_request, vote_response, append_request<Payload>, append_response>;

  NodeId from{};
  NodeId to{};
  term_t term;  ///< The sender's current term (paper §5.1: every RPC carries it).
  body_type body;

  friend bool operator==(const message&, const message&) = default;
};

/// Human-readable name of a message's type, for logs and test transcripts.
template <class NodeId, class Payload>
[[nodiscard]] constexpr const char* type_name(const message<NodeId, Payload>& m) noexcept {
  constexpr const char* names[] = {"vote_request", "vote_response", "append_request", "append_response"};
  return names[m.body.index()];
}

/// Durable per-node state that is not part of the log (paper Figure 2,
/// "Persistent state on all servers").
template <class NodeId>
struct hard_state {
  term_t term;
  std::optional<NodeId> vote;  ///< Candidate voted for in `term`, if any.
  friend bool operator==(const hard_state&, const hard_state&) = default;
};

}  // namespace v0
}  // namespace raft
