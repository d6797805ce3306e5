// raft/types.hpp - strong types for terms, log indexes and sizes.
//
// A term and a log index are both 64-bit counters, and mixing them up is one
// of the classic Raft bugs (compare a term with an index, pass prev_index where
// prev_term was meant). Here they are distinct types: `term_t{3} < index_t{4}`
// does not compile. Arithmetic is limited to what the algorithm needs.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>

namespace raft {
inline namespace v0 {

namespace detail {
template <class Tag>
struct counter {
  std::uint64_t value = 0;

  constexpr counter() noexcept = default;
  constexpr explicit counter(std::uint64_t v) noexcept : value(v) {}

  friend constexpr auto operator<=>(counter, counter) noexcept = default;
  friend constexpr bool operator==(counter, counter) noexcept = default;

  friend std::ostream& operator<<(std::ostream& os, counter c) { return os << c.value; }
};
}  // namespace detail

/// A Raft term (paper §5.1). Term 0 means "no term": no entry and no leader
/// ever carries it; the first election produces term 1.
struct term_t : detail::counter<term_t> {
  using counter::counter;
  [[nodiscard]] constexpr term_t next() const noexcept { return term_t{value + 1}; }
};

/// A position in the replicated log. Index 0 is the empty prefix (the log's
/// first real entry has index 1, as in the paper).
struct index_t : detail::counter<index_t> {
  using counter::counter;
  [[nodiscard]] constexpr index_t next() const noexcept { return index_t{value + 1}; }
  /// The previous index; prev() of 0 is 0 (never underflows).
  [[nodiscard]] constexpr index_t prev() const noexcept { return index_t{value == 0 ? 0 : value - 1}; }
  [[nodiscard]] constexpr index_t operator+(std::uint64_t n) const noexcept { return index_t{value + n}; }
};

/// Number of indexes from `a` to `b` (b - a); 0 when `b` is before `a`.
[[nodiscard]] constexpr std::uint64_t distance(index_t a, index_t b) noexcept {
  return b.value >= a.value ? b.value - a.value : 0;
}

[[nodiscard]] constexpr index_t min(index_t a, index_t b) noexcept { return a < b ? a : b; }
[[nodiscard]] constexpr index_t max(index_t a, index_t b) noexcept { return a < b ? b : a; }

/// The role a node plays (paper Figure 4, with the pre-candidate of
/// PreVote, thesis §9.6: it asks whether it could win before campaigning).
enum class role : std::uint8_t { follower, pre_candidate, candidate, leader };

[[nodiscard]] constexpr const char* to_string(role r) noexcept {
  switch (r) {
    case role::follower: return "follower";
    case role::pre_candidate: return "pre-candidate";
    case role::candidate: return "candidate";
    case role::leader: return "leader";
  }
  return "?";
}

}  // namespace v0
}  // namespace raft

template <>
struct std::hash<raft::term_t> {
  std::size_t operator()(raft::term_t t) const noexcept { return std::hash<std::uint64_t>{}(t.value); }
};
template <>
struct std::hash<raft::index_t> {
  std::size_t operator()(raft::index_t i) const noexcept { return std::hash<std::uint64_t>{}(i.value); }
};
