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
  /// This node's id. Must be one of `voters`, unless `voters` is empty.
  NodeId id{};

  /// The bootstrap membership: every voting member of a brand-new cluster,
  /// this node included, in any order, without duplicates; every founding
  /// node must be given the same set. It is used only while the node's Log
  /// holds no configuration (no configuration entry, no snapshot): once
  /// membership changed (node::change_membership), the log decides and this
  /// is ignored. Empty: the node joins an existing cluster; it learns the
  /// membership from the leader (the entry that added it, or a snapshot) and
  /// never campaigns before.
  std::vector<NodeId> voters;

  /// Bootstrap only: which of `voters` are witnesses (raft/membership.hpp:
  /// voters that store no command payloads and never lead). At least one
  /// voter must not be a witness.
  std::vector<NodeId> witnesses{};

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

  // ----------------------------------------------- liveness (issue: production)

  /// PreVote (thesis §9.6). A node whose election timer fires first asks the
  /// voters whether they would vote for it, without raising its term; only
  /// if a majority would does it campaign for real. A node that cannot win
  /// (cut off, or with a stale log) thus never raises its term, and one
  /// rejoining after a partition never deposes a leader a majority still
  /// follows. A pre-vote is granted only by a voter that has not heard from
  /// a leader within election_ticks. Costs one round trip per election.
  /// Default on. Every member should use the same setting.
  bool pre_vote = true;

  /// CheckQuorum and leader stickiness (thesis §6.2, §4.2.3). A leader that
  /// has not heard from a quorum of voters within election_ticks steps down
  /// (its clients get a definite "not leader" instead of waiting), and a
  /// node that heard from a leader within election_ticks ignores vote and
  /// pre-vote requests of a newer term (except for a leadership transfer).
  /// Required by lease reads. Default on.
  bool check_quorum = true;

  /// Lease reads (thesis §6.4.1), off by default. A leader that a quorum
  /// acknowledged heartbeats from, in rounds begun at time t or later (its
  /// Clock's now()), answers read_index(..., read_mode::lease) at once until
  /// t + election_ticks - max_clock_drift_ticks, without a heartbeat round.
  /// This is safe only if no clock in the cluster runs faster than another
  /// by more than max_clock_drift_ticks over one election timeout, and if
  /// tick() is called at the rate the Clock's now() advances. Requires
  /// check_quorum (the stickiness that makes the lease hold). With leases on,
  /// a node that just started refuses votes for election_ticks (it may have
  /// acknowledged a leader's lease before it restarted).
  bool lease_reads = false;

  /// The clock-drift bound lease reads assume, in ticks per election
  /// timeout: the lease is election_ticks - max_clock_drift_ticks ticks long
  /// from the start of the oldest round its quorum acknowledged. Must be less
  /// than election_ticks. Ignored unless lease_reads. Default 2 (20% of the
  /// default election timeout).
  std::uint32_t max_clock_drift_ticks = 2;

  // ------------------------------------------------------ back-pressure

  /// Most payload bytes of uncommitted entries the leader accepts from
  /// proposals of its term (0: no limit). Beyond it propose() returns
  /// propose_status::dropped, and a batch is taken whole or not at all. A
  /// proposal is always taken when nothing is uncommitted, however large.
  /// Bounds the leader's memory while a quorum is unreachable. Default 0.
  std::uint64_t max_uncommitted_bytes = 0;

  /// Most payload bytes of entries in flight (sent, unacknowledged) to one
  /// follower, besides the max_inflight message count (0: no limit). A
  /// message is sent while fewer bytes than this are in flight, so one
  /// message can go over it. Default 0.
  std::uint64_t max_inflight_bytes = 0;

  /// Proposal forwarding. When set, propose() on a follower that knows the
  /// leader sends the commands to it (propose_status::forwarded); the leader
  /// appends them, or drops them silently if it cannot take them. When not
  /// set, a follower refuses with propose_status::not_leader and the leader
  /// hint. Default off: a forwarded proposal can be lost without anybody
  /// being told, so the caller must time out and retry.
  bool forward_proposals = false;

  /// Most reads one node tracks at a time (read_index() from its caller, and
  /// on the leader also those its followers ask for); beyond it read_index()
  /// returns read_status::too_many and a follower's request is answered "not
  /// ok". Default 65536.
  std::size_t max_pending_reads = 65536;

  /// Seed for the Random policy (election jitter). The node mixes in its own
  /// id, so all nodes may share one seed. Same seed, same inputs: same run.
  std::uint64_t random_seed = 0;

  /// Returns a sentence saying what is wrong, or nothing if the config is
  /// usable.
  [[nodiscard]] std::optional<std::string> validate() const {
    if (!voters.empty() && std::find(voters.begin(), voters.end(), id) == voters.end())
      return "config.id is not in config.voters: a founding node must be one of the voters it is configured with "
             "(a node joining an existing cluster leaves config.voters empty)";
    for (std::size_t i = 0; i < voters.size(); ++i)
      for (std::size_t j = i + 1; j < voters.size(); ++j)
        if (voters[i] == voters[j]) return "config.voters lists the same node twice";
    for (std::size_t i = 0; i < witnesses.size(); ++i) {
      if (std::find(voters.begin(), voters.end(), witnesses[i]) == voters.end())
        return "config.witnesses lists a node that is not in config.voters";
      for (std::size_t j = i + 1; j < witnesses.size(); ++j)
        if (witnesses[i] == witnesses[j]) return "config.witnesses lists the same node twice";
    }
    if (!voters.empty() && witnesses.size() >= voters.size())
      return "config.witnesses lists every voter: at least one voter must store the log in full (a witness never leads)";
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
    if (max_pending_reads == 0) return "config.max_pending_reads must be at least 1";
    if (lease_reads && !check_quorum)
      return "config.lease_reads needs config.check_quorum: the lease relies on followers ignoring votes while they hear from the leader";
    if (lease_reads && max_clock_drift_ticks >= election_ticks)
      return "config.max_clock_drift_ticks must be less than config.election_ticks (the lease would be empty)";
    return std::nullopt;
  }
};

}  // namespace v0
}  // namespace raft
