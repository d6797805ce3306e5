// raft/config.hpp - the node's configuration, with validation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace raft {
inline namespace v0 {

/// Configuration of one node. An aggregate: use designated initializers,
///
///     raft::config<std::uint64_t> cfg{.id = 1, .voters = {1, 2, 3}};
///
/// then call validate() (the node's constructor does, and refuses a config
/// that fails it).
template <class NodeId>
struct config {
  /// This node's id. Must be one of `voters`.
  NodeId id{};

  /// Every voting member of the cluster, this node included, in any order,
  /// without duplicates. Every node of the cluster must be given the same set.
  std::vector<NodeId> voters;

  /// Election timeout in ticks. A follower that hears nothing from a leader
  /// for a random number of ticks in [election_ticks, 2 * election_ticks)
  /// starts an election (paper §5.2). Must be greater than heartbeat_ticks;
  /// the paper advises an election timeout an order of magnitude above the
  /// network round trip. Default 10.
  std::uint32_t election_ticks = 10;

  /// Ticks between two heartbeats sent by a leader. Default 1.
  std::uint32_t heartbeat_ticks = 1;

  /// Flow control: the most AppendEntries messages carrying entries that a
  /// leader keeps in flight to one follower (thesis §10.2.2 pipelining).
  /// Once reached, new entries wait and are batched into the next message
  /// when an acknowledgement frees a slot. Default 256.
  std::uint32_t max_inflight = 256;

  /// Soft limit on the payload bytes of entries in one AppendEntries. A
  /// message always carries at least one entry, even if that entry alone is
  /// larger. Default 1 MiB.
  std::size_t max_append_bytes = std::size_t{1} << 20;

  /// Hard limit on the number of entries in one AppendEntries. Default 4096.
  std::uint32_t max_append_entries = 4096;

  /// Size of one InstallSnapshot chunk, in bytes. Default 1 MiB.
  std::size_t snapshot_chunk_bytes = std::size_t{1} << 20;

  /// Flow control for snapshots: chunks a leader keeps unacknowledged per
  /// follower. Lost chunks are re-sent from the last acknowledged offset.
  /// Default 4.
  std::uint32_t max_snapshot_inflight = 4;

  /// A follower refuses a snapshot whose total size, or a chunk whose size,
  /// exceeds these limits. The follower allocates the whole snapshot when its
  /// first chunk arrives, so max_snapshot_bytes is also the most memory a
  /// (possibly hostile) leader can make it reserve. Defaults: 1 GiB total,
  /// 16 MiB per chunk.
  std::uint64_t max_snapshot_bytes = std::uint64_t{1} << 30;
  std::size_t max_snapshot_chunk_bytes = std::size_t{16} << 20;

  /// Seed for the Random policy (election jitter). The node mixes in its own
  /// id, so all nodes may share one seed. Same seed, same inputs: same run.
  std::uint64_t random_seed = 0;

  /// Returns a sentence saying what is wrong, or nothing if the config is
  /// usable.
  [[nodiscard]] std::optional<std::string> validate() const {
    if (voters.empty()) return "config.voters is empty: list every voting member, this node included";
    if (std::find(voters.begin(), voters.end(), id) == voters.end())
      return "config.id is not in config.voters: a node must be one of the voters it is configured with";
    for (std::size_t i = 0; i < voters.size(); ++i)
      for (std::size_t j = i + 1; j < voters.size(); ++j)
        if (voters[i] == voters[j]) return "config.voters lists the same node twice";
    if (heartbeat_ticks == 0) return "config.heartbeat_ticks must be at least 1";
    if (election_ticks <= heartbeat_ticks)
      return "config.election_ticks must be greater than config.heartbeat_ticks (the paper suggests about 10x)";
    if (election_ticks > (1u << 30)) return "config.election_ticks is too large (at most 2^30)";
    if (max_inflight == 0) return "config.max_inflight must be at least 1";
    if (max_append_entries == 0) return "config.max_append_entries must be at least 1";
    if (max_append_bytes == 0) return "config.max_append_bytes must be at least 1";
    if (snapshot_chunk_bytes == 0) return "config.snapshot_chunk_bytes must be at least 1";
    if (snapshot_chunk_bytes > max_snapshot_chunk_bytes)
      return "config.snapshot_chunk_bytes exceeds config.max_snapshot_chunk_bytes: followers would refuse every chunk";
    if (max_snapshot_inflight == 0) return "config.max_snapshot_inflight must be at least 1";
    return std::nullopt;
  }
};

}  // namespace v0
}  // namespace raft
