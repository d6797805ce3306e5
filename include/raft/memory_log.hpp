// raft/memory_log.hpp - the default Log policy: everything in memory.
//
// Good for tests, simulations, benchmarks and state that may be rebuilt from
// elsewhere. "Durable" here means "survives as long as this object": a
// simulated crash keeps the memory_log and throws the node away.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "assert.hpp"
#include "bytes.hpp"
#include "message.hpp"
#include "transport.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

template <class NodeId, class Payload>
class basic_memory_log {
 public:
  using node_id = NodeId;
  using payload = Payload;
  using entry_type = entry<Payload>;
  using hard_state_type = raft::hard_state<NodeId>;

  /// Every write is "durable" (survives as long as this object) when the call
  /// that made it returns, so the node counts its writes as durable at once
  /// and nobody needs to call node::persisted(). A Log that models a disk,
  /// or buffers, leaves this out (or sets it false) and reports durability.
  static constexpr bool durable_on_write = true;

  [[nodiscard]] const hard_state_type& hard_state() const noexcept { return hs_; }
  void save_hard_state(const hard_state_type& hs) { hs_ = hs; }

  /// Index of the last entry compacted away (0: nothing compacted).
  [[nodiscard]] index_t snapshot_index() const noexcept { return snap_index_; }
  [[nodiscard]] term_t snapshot_term() const noexcept { return snap_term_; }

  [[nodiscard]] index_t first_index() const noexcept { return snap_index_.next(); }
  [[nodiscard]] index_t last_index() const noexcept { return snap_index_ + (entries_.size() - head_); }

  /// Term of the entry at `i`, for snapshot_index() <= i <= last_index().
  [[nodiscard]] term_t term_at(index_t i) const {
    if (i == snap_index_) return snap_term_;
    return entry_at(i).term;
  }
  /// The entry at `i`, for first_index() <= i <= last_index().
  [[nodiscard]] const entry_type& entry_at(index_t i) const {
    RAFT_ASSERT(i > snap_index_ && i <= last_index(), "memory_log::entry_at: index out of range");
    return entries_[head_ + static_cast<std::size_t>(i.value - snap_index_.value - 1)];
  }

  /// Appends `e`, which must have index last_index() + 1.
  void append(entry_type&& e) {
    RAFT_ASSERT(e.index == last_index().next(), "memory_log::append: entry index is not last_index + 1");
    entries_.push_back(std::move(e));
    bytes_ += payload_size_of(entries_.back());
  }
  void append(const entry_type& e) { append(entry_type(e)); }

  /// Removes every entry after `i` (snapshot_index() <= i <= last_index()).
  void truncate_after(index_t i) {
    RAFT_ASSERT(i >= snap_index_ && i <= last_index(), "memory_log::truncate_after: index out of range");
    std::size_t keep = head_ + static_cast<std::size_t>(i.value - snap_index_.value);
    for (std::size_t k = keep; k < entries_.size(); ++k) bytes_ -= payload_size_of(entries_[k]);
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(keep), entries_.end());
  }

  /// Drops entries up to and including `i` (which must be in the log), making
  /// (i, term_at(i)) the new snapshot point. Used by install_snapshot.
  void compact(index_t i) {
    RAFT_ASSERT(i >= snap_index_ && i <= last_index(), "memory_log::compact: index out of range");
    if (i == snap_index_) return;
    term_t t = term_at(i);
    std::size_t drop = static_cast<std::size_t>(i.value - snap_index_.value);
    for (std::size_t k = head_; k < head_ + drop; ++k) {
      bytes_ -= payload_size_of(entries_[k]);
      entries_[k] = entry_type{};
    }
    head_ += drop;
    snap_index_ = i;
    snap_term_ = t;
    // Reclaim the dead prefix once it dominates, keeping compaction amortised O(1).
    if (head_ > 64 && head_ * 2 > entries_.size()) {
      entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  /// The stored snapshot's data (empty if there is none).
  [[nodiscard]] const raft::bytes& snapshot_data() const noexcept { return snap_data_; }
  /// The stored snapshot's membership (snapshot::membership; empty if none).
  [[nodiscard]] const raft::bytes& snapshot_membership() const noexcept { return snap_membership_; }

  /// Makes `snap` the stored snapshot. If the log holds an entry at
  /// snap.index with term snap.term, the entries after it are kept (thesis
  /// §5.1: a follower keeps the suffix that the snapshot does not cover);
  /// otherwise the whole log is discarded. Entries up to snap.index go.
  void install_snapshot(const raft::snapshot& snap) {
    RAFT_ASSERT(snap.index >= snap_index_, "memory_log::install_snapshot: snapshot older than the current one");
    if (snap.index <= last_index() && term_at(snap.index) == snap.term) {
      compact(snap.index);
    } else {
      entries_.clear();
      head_ = 0;
      bytes_ = 0;
    }
    snap_index_ = snap.index;
    snap_term_ = snap.term;
    snap_data_ = snap.data;
    snap_membership_ = snap.membership;
  }

  /// Number of entries held, and their payload bytes (plus a fixed per-entry
  /// overhead) - the node-independent accounting benchmarks report.
  [[nodiscard]] std::size_t entry_count() const noexcept { return entries_.size() - head_; }
  [[nodiscard]] std::size_t payload_bytes() const noexcept { return bytes_; }
  void reserve(std::size_t n) { entries_.reserve(n); }

 private:
  static std::size_t payload_size_of(const entry_type& e) noexcept {
    if constexpr (requires { e.data.size(); }) return static_cast<std::size_t>(e.data.size());
    else return 0;
  }

  hard_state_type hs_{};
  index_t snap_index_{};
  term_t snap_term_{};
  raft::bytes snap_data_;
  raft::bytes snap_membership_;
  std::vector<entry_type> entries_;  // entries_[head_] has index snap_index_ + 1
  std::size_t head_ = 0;
  std::size_t bytes_ = 0;
};

namespace detail {
/// Stand-in used when a Transport lacks node_id or payload, so that naming
/// memory_log<BadTransport> (e.g. as raft::node's default Log) does not fail
/// before raft::node's static_asserts can say what is missing.
struct missing_transport_type {
  friend bool operator==(missing_transport_type, missing_transport_type) = default;
};
template <class T>
struct transport_types_of {
  using node_id = missing_transport_type;
  using payload = missing_transport_type;
};
template <class T>
  requires requires {
    typename T::node_id;
    typename T::payload;
  }
struct transport_types_of<T> {
  using node_id = typename T::node_id;
  using payload = typename T::payload;
};
}  // namespace detail

template <class Transport = default_transport>
using memory_log = basic_memory_log<typename detail::transport_types_of<Transport>::node_id,
                                    typename detail::transport_types_of<Transport>::payload>;

}  // namespace v0
}  // namespace raft
