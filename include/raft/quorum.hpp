// raft/quorum.hpp - TEMPORARY minimal version (replaced by the quorum branch).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "assert.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

[[nodiscard]] constexpr std::size_t quorum_size(std::size_t n) noexcept { return n / 2 + 1; }

enum class vote_result : std::uint8_t { pending, won, lost };

template <class NodeId>
class majority_config {
 public:
  majority_config() = default;
  explicit majority_config(std::vector<NodeId> voters) : ids_(std::move(voters)) {}
  [[nodiscard]] std::size_t size() const noexcept { return ids_.size(); }
  [[nodiscard]] bool empty() const noexcept { return ids_.empty(); }
  [[nodiscard]] bool contains(const NodeId& id) const noexcept {
    return std::find(ids_.begin(), ids_.end(), id) != ids_.end();
  }
  [[nodiscard]] const std::vector<NodeId>& ids() const noexcept { return ids_; }
  auto begin() const { return ids_.begin(); }
  auto end() const { return ids_.end(); }
  template <class V, class AckFn>
  [[nodiscard]] std::optional<V> committed(AckFn&& ack) const {
    if (ids_.empty()) return std::nullopt;
    std::array<V, 16> buf{};
    std::vector<V> big;
    V* v = buf.data();
    if (ids_.size() > buf.size()) {
      big.resize(ids_.size());
      v = big.data();
    }
    for (std::size_t i = 0; i < ids_.size(); ++i) v[i] = ack(ids_[i]);
    V* mid = v + ids_.size() / 2;
    std::nth_element(v, mid, v + ids_.size(), std::greater<>{});
    return *mid;
  }
  template <class VoteFn>
  [[nodiscard]] vote_result vote(VoteFn&& vote) const {
    if (ids_.empty()) return vote_result::won;
    std::size_t yes = 0, no = 0;
    for (const auto& id : ids_) {
      std::optional<bool> g = vote(id);
      if (g) (*g ? yes : no) += 1;
    }
    const std::size_t q = quorum_size(ids_.size());
    if (yes >= q) return vote_result::won;
    if (no > ids_.size() - q) return vote_result::lost;
    return vote_result::pending;
  }
  template <class Pred>
  [[nodiscard]] bool has_quorum(Pred&& pred) const {
    if (ids_.empty()) return true;
    std::size_t n = 0;
    for (const auto& id : ids_) n += pred(id) ? 1 : 0;
    return n >= quorum_size(ids_.size());
  }

 private:
  std::vector<NodeId> ids_;
};

template <class NodeId>
struct quorum_config {
  majority_config<NodeId> incoming;
  majority_config<NodeId> outgoing;
  [[nodiscard]] bool joint() const noexcept { return !outgoing.empty(); }
  [[nodiscard]] bool contains(const NodeId& id) const noexcept { return incoming.contains(id) || outgoing.contains(id); }
  template <class V, class AckFn>
  [[nodiscard]] std::optional<V> committed(AckFn&& ack) const {
    auto a = incoming.template committed<V>(ack);
    auto b = outgoing.template committed<V>(ack);
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
  }
  template <class VoteFn>
  [[nodiscard]] vote_result vote(VoteFn&& v) const {
    auto a = incoming.vote(v), b = outgoing.vote(v);
    if (a == vote_result::lost || b == vote_result::lost) return vote_result::lost;
    if (a == vote_result::won && b == vote_result::won) return vote_result::won;
    return vote_result::pending;
  }
  template <class Pred>
  [[nodiscard]] bool has_quorum(Pred&& p) const {
    return incoming.has_quorum(p) && outgoing.has_quorum(p);
  }
};

}  // namespace v0
}  // namespace raft
