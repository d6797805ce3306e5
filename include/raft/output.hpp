// raft/output.hpp - everything one call into the node produced.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "message.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

/// A change of role, term or known leader, in the order it happened.
template <class NodeId>
struct state_change {
  raft::role role = raft::role::follower;
  term_t term;
  std::optional<NodeId> leader;
  friend bool operator==(const state_change&, const state_change&) = default;
};

/// The work a caller must carry out after tick(), step() or propose(). The
/// node appends to it; the caller drains it and calls clear() (which keeps the
/// buffers' capacity, so a loop that reuses one output does not allocate).
///
/// Carry it out in this order:
///  1. If `persist` is set, make the Log's writes durable (memory_log: nothing
///     to do; a disk log: fsync). Several outputs may share one flush, as long
///     as none of their messages has been sent yet.
///  2. Send `messages`, in any order (Raft tolerates loss and reordering).
///  3. If `snapshot` is set, restore the state machine from it (it replaces
///     everything up to snapshot->index).
///  4. Apply `committed` to the state machine, in order. Entries of kind noop
///     carry no command but are part of the gapless index sequence. After a
///     snapshot they continue at snapshot->index + 1.
///  5. React to `changes` (e.g. redirect clients when the leader changed).
template <class NodeId, class Payload>
struct output {
  using message_type = message<NodeId, Payload>;
  using entry_type = entry<Payload>;

  bool persist = false;
  std::vector<message_type> messages;
  std::vector<entry_type> committed;
  std::optional<raft::snapshot> snapshot;
  std::vector<state_change<NodeId>> changes;

  void clear() noexcept {
    persist = false;
    snapshot.reset();
    messages.clear();
    committed.clear();
    changes.clear();
  }
  [[nodiscard]] bool empty() const noexcept {
    return !persist && messages.empty() && committed.empty() && !snapshot && changes.empty();
  }
};

/// What step() did with a message.
enum class step_status : std::uint8_t {
  ok,              ///< Handled (which may mean "handled by replying with a rejection").
  stale_term,      ///< From an older term: answered with our term where useful, otherwise ignored.
  not_for_me,      ///< Addressed to another node: ignored.
  unknown_sender,  ///< The sender is not a member (or is this node): ignored.
  malformed,       ///< Contradicts itself or the protocol (e.g. non-contiguous entries): ignored.
  unexpected,      ///< Valid but meaningless in this role and term (e.g. a late vote): ignored.
};

[[nodiscard]] constexpr const char* to_string(step_status s) noexcept {
  switch (s) {
    case step_status::ok: return "ok";
    case step_status::stale_term: return "stale term";
    case step_status::not_for_me: return "addressed to another node";
    case step_status::unknown_sender: return "unknown sender";
    case step_status::malformed: return "malformed message";
    case step_status::unexpected: return "unexpected in this role";
  }
  return "?";
}

enum class propose_status : std::uint8_t {
  ok,          ///< Appended to the leader's log at `index`; not yet committed.
  not_leader,  ///< This node is not the leader; `leader` is the one it knows, if any.
};

[[nodiscard]] constexpr const char* to_string(propose_status s) noexcept {
  return s == propose_status::ok ? "ok" : "not leader";
}

enum class compact_status : std::uint8_t {
  ok,              ///< The snapshot is stored and the log prefix it covers dropped.
  beyond_applied,  ///< The index was not yet handed out for applying: refused.
  not_newer,       ///< The index is not after the current snapshot: refused.
};

[[nodiscard]] constexpr const char* to_string(compact_status s) noexcept {
  switch (s) {
    case compact_status::ok: return "ok";
    case compact_status::beyond_applied: return "snapshot index beyond the applied index";
    case compact_status::not_newer: return "snapshot index not after the current snapshot";
  }
  return "?";
}

template <class NodeId>
struct propose_result {
  propose_status status = propose_status::not_leader;
  index_t index;  ///< ok: index of the (last) appended entry.
  term_t term;    ///< ok: the term it was appended in. The entry is committed iff the
                  ///< entry applied at `index` has this term.
  std::optional<NodeId> leader;  ///< not_leader: the leader this node knows of, if any.

  [[nodiscard]] bool ok() const noexcept { return status == propose_status::ok; }
};

}  // namespace v0
}  // namespace raft
