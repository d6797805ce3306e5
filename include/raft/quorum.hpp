// raft/quorum.hpp - quorum rules over configurations, kept apart from the role
// logic.
//
// A majority_config is one set of voters; a quorum_config is either one set
// (`incoming`) or, during a membership change by joint consensus (thesis §4.3),
// two sets (`incoming` and `outgoing`) that must each agree. Every rule here is
// keyed by node id, never by a voter's position, and asks the caller about each
// voter through a callback, so the caller keeps its per-peer state in whatever
// shape suits it.
//
// The callbacks are called exactly once per voter of each set, in ids() order,
// with no short-circuit: a voter in both sets of a joint configuration is asked
// twice. Nothing here allocates on the hot path (committed() for up to
// majority_config::inline_voters voters), keeps global state, does I/O or
// throws; broken preconditions go to RAFT_ASSERT.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "assert.hpp"

namespace raft {
inline namespace v0 {

/// Number of votes that make a majority of `n` voters: any two majorities of
/// the same set intersect, which is what makes a decision stick.
[[nodiscard]] constexpr std::size_t quorum_size(std::size_t n) noexcept { return n / 2 + 1; }

/// Where an election stands: `pending` while the outcome still depends on
/// votes not yet known, so a candidate knows when to stop waiting.
enum class vote_result : std::uint8_t { pending, won, lost };

/// A name for logs and test output.
[[nodiscard]] constexpr const char* to_string(vote_result r) noexcept {
  switch (r) {
    case vote_result::pending: return "pending";
    case vote_result::won: return "won";
    case vote_result::lost: return "lost";
  }
  return "?";
}

namespace detail {
/// The value at position `k` of [first, last) sorted in descending order,
/// i.e. the largest v such that k + 1 values are >= v. Reorders the range.
/// Only operator< of V is used.
template <class V, class It>
[[nodiscard]] V kth_largest(It first, It last, std::size_t k) {
  const auto kth = first + static_cast<std::ptrdiff_t>(k);
  std::nth_element(first, kth, last, [](const V& a, const V& b) { return b < a; });
  return std::move(*kth);
}

/// Combines the outcomes of the two sets of a joint configuration: both must
/// win, and either one losing loses the whole election (thesis §4.3).
[[nodiscard]] constexpr vote_result joint_result(vote_result a, vote_result b) noexcept {
  if (a == vote_result::lost || b == vote_result::lost) return vote_result::lost;
  if (a == vote_result::won && b == vote_result::won) return vote_result::won;
  return vote_result::pending;
}
}  // namespace detail

/// A majority configuration: one set of voters, decisions need a majority of
/// it. Voters are kept in the order given (that is the callback order).
template <class NodeId>
class majority_config {
 public:
  /// committed() collects the acknowledgements of up to this many voters into
  /// an array on the stack; larger configurations use a std::vector.
  static constexpr std::size_t inline_voters = 16;

  /// The empty configuration: no voters, hence no constraint.
  majority_config() = default;

  /// Precondition (RAFT_ASSERT): no id appears twice, since a duplicated
  /// voter would count twice toward a majority.
  explicit majority_config(std::vector<NodeId> voters) : ids_(std::move(voters)) {
    for (std::size_t i = 0; i < ids_.size(); ++i)
      for (std::size_t j = i + 1; j < ids_.size(); ++j)
        RAFT_ASSERT(!(ids_[i] == ids_[j]), "majority_config: the same voter is listed twice");
  }

  /// Number of voters; a majority is quorum_size(size()).
  [[nodiscard]] std::size_t size() const noexcept { return ids_.size(); }
  /// True for "no set" (e.g. the outgoing half of a non-joint configuration).
  [[nodiscard]] bool empty() const noexcept { return ids_.empty(); }
  /// Whether `id` votes in this set; O(size()).
  [[nodiscard]] bool contains(const NodeId& id) const noexcept {
    return std::find(ids_.begin(), ids_.end(), id) != ids_.end();
  }
  /// The voters, in the order they were given.
  [[nodiscard]] const std::vector<NodeId>& ids() const noexcept { return ids_; }
  /// Iterates over the voters, so a config can be walked like a container.
  [[nodiscard]] auto begin() const noexcept { return ids_.begin(); }
  [[nodiscard]] auto end() const noexcept { return ids_.end(); }

  /// The largest value v such that a majority of the voters acknowledged a
  /// value >= v: what the leader may consider committed (paper §5.3), or the
  /// newest read request a majority confirmed. ack(id) returns something
  /// convertible to V; a default-constructed V means "nothing acknowledged".
  /// An empty config returns std::nullopt ("no constraint"). O(size()), and no
  /// heap allocation for up to inline_voters voters.
  template <class V, class AckFn>
    requires std::totally_ordered<V> && std::default_initializable<V> && std::movable<V> &&
             std::invocable<AckFn&, const NodeId&> &&
             std::convertible_to<std::invoke_result_t<AckFn&, const NodeId&>, V>
  [[nodiscard]] std::optional<V> committed(AckFn&& ack) const {
    const std::size_t n = ids_.size();
    if (n == 0) return std::nullopt;
    // Sorted in descending order, position n/2 is the largest value that
    // n/2 + 1 = quorum_size(n) acknowledgements are >= to.
    if (n <= inline_voters) {
      std::array<V, inline_voters> acks{};
      for (std::size_t i = 0; i < n; ++i) acks[i] = std::invoke(ack, ids_[i]);
      return detail::kth_largest<V>(acks.begin(), acks.begin() + static_cast<std::ptrdiff_t>(n), n / 2);
    }
    std::vector<V> acks;
    acks.reserve(n);
    for (const auto& id : ids_) acks.push_back(std::invoke(ack, id));
    return detail::kth_largest<V>(acks.begin(), acks.end(), n / 2);
  }

  /// Where an election stands: won once a majority granted, lost once a
  /// majority can no longer be reached (so a candidate can step down early),
  /// pending otherwise. vote(id) returns std::optional<bool>: true granted,
  /// false rejected, nullopt not yet known. An empty config has won.
  template <class VoteFn>
    requires std::invocable<VoteFn&, const NodeId&> &&
             std::convertible_to<std::invoke_result_t<VoteFn&, const NodeId&>, std::optional<bool>>
  [[nodiscard]] vote_result vote(VoteFn&& vote) const {
    std::size_t granted = 0, rejected = 0;
    for (const auto& id : ids_) {
      const std::optional<bool> v = std::invoke(vote, id);
      if (v.has_value()) ++(*v ? granted : rejected);
    }
    if (ids_.empty()) return vote_result::won;
    const std::size_t q = quorum_size(ids_.size());
    if (granted >= q) return vote_result::won;
    if (rejected > ids_.size() - q) return vote_result::lost;  // granted + unknown < q
    return vote_result::pending;
  }

  /// True when a majority of the voters satisfy pred(id), e.g. "heard from
  /// within the election timeout", so a leader can tell it still leads (check
  /// quorum, thesis §6.2). An empty config is satisfied.
  template <class Pred>
    requires std::predicate<Pred&, const NodeId&>
  [[nodiscard]] bool has_quorum(Pred&& pred) const {
    std::size_t yes = 0;
    for (const auto& id : ids_)
      if (std::invoke(pred, id)) ++yes;
    return ids_.empty() || yes >= quorum_size(ids_.size());
  }

  /// Order-insensitive: two configs are equal when they hold the same set of
  /// voters, whatever order each was given in, since that is all a quorum
  /// depends on. O(size()^2); NodeId only needs ==.
  friend bool operator==(const majority_config& a, const majority_config& b) {
    if (a.size() != b.size()) return false;
    return std::all_of(a.ids_.begin(), a.ids_.end(), [&](const NodeId& id) { return b.contains(id); });
  }

 private:
  std::vector<NodeId> ids_;
};

/// A configuration: `incoming` alone, or joint while `outgoing` is non-empty.
/// During a membership change by joint consensus (thesis §4.3) elections and
/// commitment need separate majorities of the old configuration (`outgoing`)
/// and of the new one (`incoming`), so neither can decide on its own. Every
/// decision needs a majority of each non-empty set; with both sets empty there
/// is no constraint at all.
template <class NodeId>
struct quorum_config {
  majority_config<NodeId> incoming;
  majority_config<NodeId> outgoing;  // empty unless joint

  /// Whether this is a joint configuration (thesis §4.3), i.e. a membership
  /// change is in progress.
  [[nodiscard]] bool joint() const noexcept { return !outgoing.empty(); }

  /// Whether `id` is a voter of either set: both sets' voters take part in
  /// elections and replication while joint.
  [[nodiscard]] bool contains(const NodeId& id) const noexcept {
    return incoming.contains(id) || outgoing.contains(id);
  }

  /// Every voter of either set, each once (incoming first, then the outgoing
  /// voters not in incoming), for a leader that must reach all of them.
  [[nodiscard]] std::vector<NodeId> voters() const {
    std::vector<NodeId> all;
    all.reserve(incoming.size() + outgoing.size());
    all.insert(all.end(), incoming.begin(), incoming.end());
    for (const auto& id : outgoing)
      if (!incoming.contains(id)) all.push_back(id);
    return all;
  }

  /// The largest value acknowledged by a majority of each non-empty set: the
  /// minimum of the sets' committed() values, since an entry is committed only
  /// once both old and new majorities hold it (thesis §4.3). std::nullopt when
  /// both sets are empty. Calls ack once per voter of each set.
  template <class V, class AckFn>
  [[nodiscard]] std::optional<V> committed(AckFn&& ack) const {
    std::optional<V> in = incoming.template committed<V>(ack);
    std::optional<V> out = outgoing.template committed<V>(ack);
    if (!in) return out;
    if (!out) return in;
    if (*out < *in) return out;
    return in;
  }

  /// Won if both sets won, lost if either lost, else pending: a joint
  /// election needs a majority of the old and of the new voters (thesis
  /// §4.3). An empty set has won. Calls vote once per voter of each set.
  template <class VoteFn>
  [[nodiscard]] vote_result vote(VoteFn&& vote) const {
    const vote_result in = incoming.vote(vote);
    const vote_result out = outgoing.vote(vote);
    return detail::joint_result(in, out);
  }

  /// True when a majority of each non-empty set satisfies pred (thesis §4.3).
  /// Calls pred once per voter of each set.
  template <class Pred>
  [[nodiscard]] bool has_quorum(Pred&& pred) const {
    const bool in = incoming.has_quorum(pred);
    const bool out = outgoing.has_quorum(pred);
    return in && out;
  }

  /// Equal when both halves are equal (each compared order-insensitively).
  friend bool operator==(const quorum_config&, const quorum_config&) = default;
};

}  // namespace v0
}  // namespace raft
