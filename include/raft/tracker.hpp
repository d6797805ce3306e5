// raft/tracker.hpp - what a leader knows about every other member, by node id.
//
// One progress record (raft/progress.hpp) per peer, found by the peer's id,
// never by its position in a configuration: membership changes (the next
// step of the roadmap) add and remove records without re-indexing anything,
// and every quorum question (raft/quorum.hpp) asks the tracker about ids.
//
// A flat vector searched linearly: clusters have 3 to 7 members, for which
// this beats any map and allocates once.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "assert.hpp"
#include "progress.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

template <class NodeId>
class tracker {
 public:
  struct peer {
    NodeId id;
    raft::progress progress;
  };

  tracker() = default;

  /// Adds a record for `id` (which must not have one yet).
  raft::progress& add(const NodeId& id, raft::progress pr) {
    RAFT_ASSERT(find(id) == nullptr, "tracker::add: the peer is already tracked");
    peers_.push_back(peer{id, std::move(pr)});
    return peers_.back().progress;
  }

  /// Drops the record of `id` (if any). Invalidates references to records.
  void remove(const NodeId& id) {
    for (std::size_t i = 0; i < peers_.size(); ++i)
      if (peers_[i].id == id) {
        peers_.erase(peers_.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
  }

  /// The record of `id`, or nullptr if the peer is not tracked.
  [[nodiscard]] raft::progress* find(const NodeId& id) noexcept {
    for (auto& p : peers_)
      if (p.id == id) return &p.progress;
    return nullptr;
  }
  [[nodiscard]] const raft::progress* find(const NodeId& id) const noexcept {
    for (const auto& p : peers_)
      if (p.id == id) return &p.progress;
    return nullptr;
  }

  [[nodiscard]] std::size_t size() const noexcept { return peers_.size(); }
  [[nodiscard]] bool empty() const noexcept { return peers_.empty(); }
  auto begin() noexcept { return peers_.begin(); }
  auto end() noexcept { return peers_.end(); }
  auto begin() const noexcept { return peers_.begin(); }
  auto end() const noexcept { return peers_.end(); }

 private:
  std::vector<peer> peers_;
};

}  // namespace v0
}  // namespace raft
