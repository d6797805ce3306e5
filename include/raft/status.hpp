// raft/status.hpp - node::status(): what a node knows, as plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "membership.hpp"
#include "progress.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

/// The leader's view of one peer.
template <class NodeId>
struct peer_status {
  NodeId id{};
  index_t match;                   ///< Highest index known replicated (durably) on the peer.
  index_t next;                    ///< Next index the leader will send.
  replication_state state = replication_state::probe;
  bool recent_active = false;      ///< Answered since the last CheckQuorum (election timeout).
  bool learner = false;            ///< A learner (or a voter being demoted to one when the joint configuration is left).
  bool witness = false;
  std::uint64_t lag = 0;           ///< Entries the peer lacks: the leader's last index minus match.
  std::size_t inflight_messages = 0;
  std::uint64_t inflight_bytes = 0;
  index_t snapshot_index;          ///< snapshot state: the snapshot being sent.
  std::uint64_t snapshot_acked = 0;  ///< snapshot state: bytes of it the peer acknowledged.
  std::uint64_t acked_round = 0;   ///< Newest heartbeat round the peer answered.
  friend bool operator==(const peer_status&, const peer_status&) = default;
};

template <class NodeId>
struct node_status {
  NodeId id{};
  raft::role role = raft::role::follower;
  term_t term;
  std::optional<NodeId> vote;
  std::optional<NodeId> leader;
  index_t commit;
  index_t applied;
  index_t first_index;   ///< First entry still in the Log (snapshot index + 1).
  index_t last_index;
  index_t durable_index;
  membership<NodeId> configuration;  ///< The membership in use (node::configuration()).
  index_t configuration_index;       ///< Where it comes from in the log.
  // Leader only (empty / zero otherwise):
  std::vector<peer_status<NodeId>> peers;
  std::optional<NodeId> transfer_target;  ///< A leadership transfer under way.
  bool lease_valid = false;               ///< A lease read would be answered at once.
  std::uint64_t uncommitted_bytes = 0;    ///< Payload bytes proposed in this term, not yet committed
                                          ///< (counted only with config.max_uncommitted_bytes set).
  std::size_t pending_reads = 0;          ///< Reads waiting for confirmation (leader) or an answer (follower).
  friend bool operator==(const node_status&, const node_status&) = default;
};

[[nodiscard]] constexpr const char* to_string(replication_state s) noexcept {
  switch (s) {
    case replication_state::probe: return "probe";
    case replication_state::replicate: return "replicate";
    case replication_state::snapshot: return "snapshot";
  }
  return "?";
}

}  // namespace v0
}  // namespace raft
