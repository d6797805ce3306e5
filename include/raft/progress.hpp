// raft/progress.hpp - what a leader knows about each follower's log.
//
// A follower is in one of three states (the split etcd's tracker makes):
//  * probe: the leader does not know where the logs diverge. It sends one
//    AppendEntries and waits for the answer (or the next heartbeat) before
//    sending another, moving `next` back on each rejection.
//  * replicate: the last answer was a success, so the leader streams entries
//    optimistically, advancing `next` as it sends, with at most max_inflight
//    messages unacknowledged (thesis §10.2.2, pipelining).
//  * snapshot: the entries the follower needs were compacted away; the leader
//    streams the snapshot in chunks, a bounded number of bytes ahead of the
//    follower's acknowledgements, and goes back to the last acknowledged
//    offset when chunks are lost.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "assert.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

/// A fixed-capacity ring of the last index carried by each in-flight message.
/// Grows on demand up to its capacity (max_inflight), then never reallocates.
class inflight_window {
 public:
  // The ring starts empty and doubles (from 4) up to `capacity` on demand, so
  // an idle or slow follower does not cost 8 * max_inflight bytes.
  explicit inflight_window(std::size_t capacity = 1) : cap_(capacity == 0 ? 1 : capacity) {}

  [[nodiscard]] bool full() const noexcept { return count_ == cap_; }
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }

  void add(index_t last, std::uint64_t bytes = 0) {
    RAFT_ASSERT(!full(), "inflight_window::add on a full window");
    if (count_ == ring_.size()) grow_();
    ring_[(start_ + count_) % ring_.size()] = slot{last, bytes};
    ++count_;
    bytes_ += bytes;
  }
  /// Payload bytes of the messages in flight.
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  /// Last index of the newest message in flight (count() must be > 0).
  [[nodiscard]] index_t last() const noexcept { return ring_[(start_ + count_ - 1) % ring_.size()].last; }
  /// The newest message in flight grew to end at `last` by `bytes` more
  /// (it was extended before it left the node's output).
  void extend_last(index_t last, std::uint64_t bytes = 0) noexcept {
    auto& s = ring_[(start_ + count_ - 1) % ring_.size()];
    s.last = last;
    s.bytes += bytes;
    bytes_ += bytes;
  }

  /// Whether a message ending exactly at `last` is in flight.
  [[nodiscard]] bool holds(index_t last) const noexcept {
    for (std::size_t k = 0; k < count_; ++k)
      if (ring_[(start_ + k) % ring_.size()].last == last) return true;
    return false;
  }
  /// Forgets the newest messages, those ending after `last` (they will be
  /// refused: the follower misses what comes before them).
  void drop_after(index_t last) noexcept {
    while (count_ > 0 && this->last() > last) {
      bytes_ -= ring_[(start_ + count_ - 1) % ring_.size()].bytes;
      --count_;
    }
  }

  /// Forgets every message whose last index is <= `acked`.
  void free_upto(index_t acked) noexcept {
    while (count_ > 0 && ring_[start_].last <= acked) {
      bytes_ -= ring_[start_].bytes;
      start_ = (start_ + 1) % ring_.size();
      --count_;
    }
  }
  void clear() noexcept {
    start_ = 0;
    count_ = 0;
    bytes_ = 0;
  }

 private:
  struct slot {
    index_t last;
    std::uint64_t bytes = 0;
  };
  void grow_() {
    const std::size_t n = std::min(cap_, std::max<std::size_t>(4, ring_.size() * 2));
    std::vector<slot> r(n);
    for (std::size_t k = 0; k < count_; ++k) r[k] = ring_[(start_ + k) % ring_.size()];
    ring_.swap(r);
    start_ = 0;
  }
  std::vector<slot> ring_;
  std::size_t cap_;
  std::size_t start_ = 0;
  std::size_t count_ = 0;
  std::uint64_t bytes_ = 0;
};

enum class replication_state : std::uint8_t { probe, replicate, snapshot };

struct progress {
  index_t match;  ///< Highest index known to be replicated (durably) on the follower.
  index_t next;   ///< Next index to send. Invariant: match < next.
  replication_state state = replication_state::probe;
  bool probe_sent = false;           ///< probe: a message is out; wait for its answer or a heartbeat.
  index_t probe_end;                 ///< probe: last index the outstanding probe carried.
  std::uint64_t last_heard = 0;      ///< The leader's tick count when it last heard from the follower
                                     ///< (CheckQuorum: "recently active" = within election_ticks).
  bool learner = false;              ///< Receives the log but never votes or counts toward a quorum.
  bool witness = false;              ///< A witness: receives entries and snapshots without payloads.
  std::uint32_t stalled_heartbeats = 0;  ///< replicate: heartbeats since `match` last advanced while entries were in flight.
  index_t sent_commit;               ///< Commit index last sent to this follower.
  inflight_window inflight;
  std::uint64_t max_inflight_bytes = 0;  ///< replicate: stop sending at this many bytes in flight (0: no limit).

  // Heartbeat rounds (ReadIndex, leases).
  std::uint64_t acked_round = 0;    ///< Newest round the follower answered.
  std::uint64_t lease_from = 0;     ///< 1 + the leader's clock when that round began (0: none).

  // A follower that refused a snapshot as too large (or inconsistent) is not
  // offered it again until this many more heartbeats pass (doubling, capped).
  std::uint32_t snapshot_backoff = 0;
  std::uint32_t snapshot_backoff_next = 0;

  // replicate state: the newest AppendEntries to this follower that may
  // still be sitting in the caller's output (and so may still grow). The
  // node grows it only while the output's messages were not read since
  // (message_list "taken"), so a caller never sends an append that grows later.
  const void* pending_out = nullptr;
  std::size_t pending_msg = 0;
  std::size_t pending_bytes = 0;

  // snapshot state only
  index_t snap_index;           ///< The snapshot being sent.
  std::uint64_t snap_total = 0;  ///< Its size.
  std::uint64_t snap_sent = 0;   ///< Bytes sent (offset of the next chunk).
  std::uint64_t snap_acked = 0;  ///< Bytes the follower acknowledged.
  bool snap_all_sent = false;    ///< The final chunk went out.

  explicit progress(index_t next_index = index_t{1}, std::size_t max_inflight = 1, std::uint64_t max_bytes = 0)
      : next(next_index), inflight(max_inflight), max_inflight_bytes(max_bytes) {}

  void become_probe() noexcept {
    state = replication_state::probe;
    probe_sent = false;
    next = match.next();
    inflight.clear();
    stalled_heartbeats = 0;
  }
  void become_replicate() noexcept {
    state = replication_state::replicate;
    probe_sent = false;
    next = match.next();
    inflight.clear();
    stalled_heartbeats = 0;
  }
  void become_snapshot(index_t index, std::uint64_t total) noexcept {
    state = replication_state::snapshot;
    probe_sent = false;
    inflight.clear();
    stalled_heartbeats = 0;
    snap_index = index;
    snap_total = total;
    snap_sent = 0;
    snap_acked = 0;
    snap_all_sent = false;
  }
  /// Snapshot: resend from the last acknowledged offset (go-back-N).
  void rewind_snapshot(std::uint64_t offset) noexcept {
    snap_sent = offset;
    snap_acked = offset;
    snap_all_sent = false;
    stalled_heartbeats = 0;
  }
  /// Records an acknowledgement of everything up to `index`. Returns true if
  /// it taught the leader something new.
  bool acknowledge(index_t index) noexcept {
    inflight.free_upto(index);
    if (index <= match) return false;
    match = index;
    if (next <= match) next = match.next();
    stalled_heartbeats = 0;
    return true;
  }
  /// May the leader send an AppendEntries carrying entries now?
  [[nodiscard]] bool can_send() const noexcept {
    switch (state) {
      case replication_state::probe: return !probe_sent;
      case replication_state::replicate:
        return !inflight.full() && (max_inflight_bytes == 0 || inflight.bytes() < max_inflight_bytes);
      case replication_state::snapshot: return false;  // entries wait for the snapshot
    }
    return false;
  }
};

}  // namespace v0
}  // namespace raft
