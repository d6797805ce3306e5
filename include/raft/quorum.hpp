// raft/quorum.hpp - majority arithmetic, kept apart from the role logic.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <span>

#include "types.hpp"

namespace raft {
inline namespace v0 {

/// Number of votes that make a majority of `n` voters.
[[nodiscard]] constexpr std::size_t quorum_size(std::size_t n) noexcept { return n / 2 + 1; }

/// The highest index that at least a majority of the given match indexes have
/// reached (the leader's own last index included by the caller). Reorders
/// `matches` in place; O(n). Returns 0 for an empty span.
[[nodiscard]] inline index_t majority_index(std::span<index_t> matches) noexcept {
  if (matches.empty()) return index_t{};
  // Sorted descending, position n/2 is the largest value that n/2 + 1
  // entries are greater than or equal to.
  auto mid = matches.begin() + static_cast<std::ptrdiff_t>(matches.size() / 2);
  std::nth_element(matches.begin(), mid, matches.end(), std::greater<>{});
  return *mid;
}

enum class vote_outcome { pending, won, lost };

/// Outcome of an election among `voters` voters with the given tallies.
[[nodiscard]] constexpr vote_outcome tally(std::size_t voters, std::size_t granted, std::size_t rejected) noexcept {
  const std::size_t q = quorum_size(voters);
  if (granted >= q) return vote_outcome::won;
  if (rejected > voters - q) return vote_outcome::lost;  // a majority can no longer be reached
  return vote_outcome::pending;
}

}  // namespace v0
}  // namespace raft
