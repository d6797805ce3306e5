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

#include "bytes.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

/// What an entry carries. Applications see every kind, so that the applied
/// sequence has no gaps; they act on `command` and skip the rest.
enum class entry_kind : std::uint8_t {
  command = 0,  ///< A client command: `data` is the proposed payload.
  noop = 1,     ///< Appended by each new leader (paper §8) so that entries of
                ///< earlier terms commit promptly; `data` is empty.
  config = 2,   ///< A membership change (raft/membership.hpp): `conf` holds the
                ///< whole new membership and the change's context
                ///< (decode_config_entry); `data` is empty. Effective on every
                ///< node as soon as it is in the log (thesis §4.1).
};

inline constexpr std::uint8_t entry_kind_count = 3;

template <class Payload>
struct entry {
  term_t term;
  index_t index;
  entry_kind kind = entry_kind::command;
  Payload data{};
  /// entry_kind::config only: the encoded configuration (a Log stores it
  /// like `data`). Empty for every other kind.
  raft::bytes conf{};

  friend bool operator==(const entry&, const entry&) = default;
};

/// RequestVote (paper §5.2, Figure 2). The candidate is the envelope's sender.
struct vote_request {
  index_t last_index;  ///< Index of the candidate's last log entry.
  term_t last_term;    ///< Term of the candidate's last log entry.
  /// The election was started by a leadership transfer (TimeoutNow, thesis
  /// §3.10): voters answer it even if they heard from a leader recently
  /// (leader stickiness, thesis §4.2.3, does not apply).
  bool transfer = false;
  friend bool operator==(const vote_request&, const vote_request&) = default;
};

struct vote_response {
  bool granted = false;
  friend bool operator==(const vote_response&, const vote_response&) = default;
};

/// PreVote (thesis §9.6): "would you vote for me if I campaigned?" The
/// envelope's term is the term the sender would campaign in (its term + 1);
/// neither side changes its term, vote or timers because of it.
struct pre_vote_request {
  index_t last_index;
  term_t last_term;
  friend bool operator==(const pre_vote_request&, const pre_vote_request&) = default;
};

/// Answer to a pre-vote. A grant carries the term that was asked about; a
/// refusal carries the responder's own term (so a sender that is behind
/// learns the newer term).
struct pre_vote_response {
  bool granted = false;
  friend bool operator==(const pre_vote_response&, const pre_vote_response&) = default;
};

/// Leadership transfer (thesis §3.10): the leader tells an up-to-date
/// follower to start an election at once, without pre-vote.
struct timeout_now {
  friend bool operator==(const timeout_now&, const timeout_now&) = default;
};

/// A follower asks the leader for a read index (thesis §6.4). `context` is
/// the follower's own request id, echoed in the answer.
struct read_index_request {
  std::uint64_t context = 0;
  friend bool operator==(const read_index_request&, const read_index_request&) = default;
};

/// The leader's answer: once the asking follower has applied through
/// `index`, it may serve the read. `ok` false: this node cannot give a read
/// index (it is not the leader); the follower fails the read at once.
struct read_index_response {
  std::uint64_t context = 0;
  index_t index;
  bool ok = false;
  friend bool operator==(const read_index_response&, const read_index_response&) = default;
};

/// A follower forwards proposals to the leader (config::forward_proposals).
/// The leader appends them as if proposed to it, or drops them (not leader,
/// transferring, over its uncommitted-bytes limit); the follower is not told.
template <class Payload>
struct forward_proposal {
  std::vector<Payload> commands;
  friend bool operator==(const forward_proposal&, const forward_proposal&) = default;
};

/// AppendEntries (paper §5.3). With no entries it is a heartbeat that also
/// carries the leader's commit index.
template <class Payload>
struct append_request {
  index_t prev_index;   ///< Index of the entry just before `entries`.
  term_t prev_term;     ///< Term of that entry (consistency check).
  index_t commit;       ///< The leader's commit index.
  std::vector<entry<Payload>> entries;  ///< Contiguous, starting at prev_index + 1.
  /// The leader's heartbeat round when it sent this message; the answer
  /// echoes it. A quorum answering round r proves the sender was still
  /// leader after r began: how ReadIndex and leases confirm leadership
  /// (thesis §6.4) without writing to the log.
  std::uint64_t round = 0;
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
  std::uint64_t round = 0;  ///< The newest `round` of the requests this answers.
  friend bool operator==(const append_response&, const append_response&) = default;
};

/// One chunk of a snapshot (paper §7, InstallSnapshot; thesis §5.3). The
/// leader sends the snapshot ending at (last_index, last_term) in chunks of
/// config.snapshot_chunk_bytes, at most config.max_snapshot_inflight chunks
/// ahead of the follower's acknowledgements.
struct install_snapshot {
  index_t last_index;         ///< The snapshot replaces the log up to and including this index.
  term_t last_term;           ///< Term of that entry.
  std::uint64_t total_size = 0;  ///< Size of the whole snapshot in bytes.
  std::uint64_t offset = 0;      ///< Where `data` goes in the snapshot.
  bool done = false;             ///< This is the last chunk.
  raft::bytes data;              ///< The chunk.
  /// The membership as of last_index (encode_config_entry), in every chunk.
  raft::bytes membership{};
  friend bool operator==(const install_snapshot&, const install_snapshot&) = default;
};

/// Why a follower refused a snapshot chunk.
enum class snapshot_refusal : std::uint8_t {
  none = 0,
  bad_offset,    ///< Not the offset expected next; `offset` says which one is.
  too_large,     ///< Chunk or total size beyond the follower's limits.
  inconsistent,  ///< The chunk contradicts the transfer or the follower's committed log.
};
inline constexpr std::uint8_t snapshot_refusal_count = 4;

/// Reply to a snapshot chunk. `offset` acknowledges every byte before it (the
/// next offset the follower expects). `installed` means the follower now holds
/// the log up to last_index (it installed the snapshot, or already had it).
struct snapshot_response {
  index_t last_index;  ///< Which snapshot this answers.
  std::uint64_t offset = 0;
  bool installed = false;
  snapshot_refusal refusal = snapshot_refusal::none;
  friend bool operator==(const snapshot_response&, const snapshot_response&) = default;
};

/// A snapshot of the application's state machine, covering every entry up to
/// and including `index`.
struct snapshot {
  index_t index;
  term_t term;
  raft::bytes data;
  /// The cluster membership as of `index` (encode_config_entry; empty only
  /// in snapshots written before membership changes existed, which then
  /// mean config::voters). A Log stores it with the snapshot and returns it
  /// from snapshot_membership().
  raft::bytes membership{};
  friend bool operator==(const snapshot&, const snapshot&) = default;
};

template <class NodeId, class Payload>
struct message {
  // New kinds go at the end: the index is the wire type tag (raft/codec.hpp).
  using body_type = std::variant<vote_request, vote_response, append_request<Payload>, append_response,
                                 install_snapshot, snapshot_response, pre_vote_request, pre_vote_response,
                                 timeout_now, read_index_request, read_index_response, forward_proposal<Payload>>;

  NodeId from{};
  NodeId to{};
  term_t term;  ///< The sender's current term (paper §5.1: every RPC carries it).
  body_type body;

  friend bool operator==(const message&, const message&) = default;
};

/// Human-readable name of a message's type, for logs and test transcripts.
template <class NodeId, class Payload>
[[nodiscard]] constexpr const char* type_name(const message<NodeId, Payload>& m) noexcept {
  constexpr const char* names[] = {"vote_request",       "vote_response",       "append_request",
                                   "append_response",    "install_snapshot",    "snapshot_response",
                                   "pre_vote_request",   "pre_vote_response",   "timeout_now",
                                   "read_index_request", "read_index_response", "forward_proposal"};
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
