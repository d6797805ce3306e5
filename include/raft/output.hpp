// raft/output.hpp - everything one call into the node produced.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <vector>

#include "assert.hpp"

#include "message.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

/// A change of role, term or known leader, in the order it happened.
template <class NodeId>
struct state_change {
  raft::role role = raft::role::follower;
  term_t term;
  std::optional<NodeId> leader;
  friend bool operator==(const state_change&, const state_change&) = default;
};

template <class Transport, class Log, class Clock, class Random>
class node;

/// The entries an output says to apply: a view of the consecutive indexes
/// [first_index(), last_index()] of the node's Log, read in place. Handing
/// out a view instead of copies keeps the apply path free of per-entry
/// reference counting. It reads like a container of `const entry&`:
///
///     for (const auto& e : out.committed) apply(e);
///
/// The entries stay readable until the Log drops them: apply them before
/// compacting past them (node::compact). An output collects committed
/// entries of one node only.
template <class Payload>
class committed_entries {
 public:
  using entry_type = entry<Payload>;
  using value_type = entry_type;
  using size_type = std::size_t;

  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = entry_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const entry_type*;
    using reference = const entry_type&;

    iterator() = default;
    reference operator*() const { return view_->at_(i_); }
    pointer operator->() const { return &view_->at_(i_); }
    iterator& operator++() {
      i_ = i_.next();
      return *this;
    }
    iterator operator++(int) {
      iterator t = *this;
      ++*this;
      return t;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }

   private:
    friend class committed_entries;
    iterator(const committed_entries* v, index_t i) : view_(v), i_(i) {}
    const committed_entries* view_ = nullptr;
    index_t i_;
  };

  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] size_type size() const noexcept { return count_; }
  [[nodiscard]] index_t first_index() const noexcept { return first_; }
  /// Index of the last entry (first_index() - 1 when empty).
  [[nodiscard]] index_t last_index() const noexcept { return index_t{first_.value + count_ - 1}; }
  [[nodiscard]] iterator begin() const { return iterator(this, first_); }
  [[nodiscard]] iterator end() const { return iterator(this, first_ + count_); }
  [[nodiscard]] const entry_type& operator[](size_type k) const {
    RAFT_ASSERT(k < count_, "committed_entries: position out of range");
    return at_(first_ + k);
  }
  [[nodiscard]] const entry_type& front() const { return (*this)[0]; }
  [[nodiscard]] const entry_type& back() const { return (*this)[count_ - 1]; }

  /// Copies of the entries (their payloads are shared, not duplicated).
  [[nodiscard]] std::vector<entry_type> to_vector() const { return std::vector<entry_type>(begin(), end()); }
  operator std::vector<entry_type>() const { return to_vector(); }  // NOLINT: implicit by design
  friend bool operator==(const committed_entries& a, const std::vector<entry_type>& b) {
    if (a.size() != b.size()) return false;
    std::size_t k = 0;
    for (const auto& e : a)
      if (!(e == b[k++])) return false;
    return true;
  }

  void clear() noexcept {
    count_ = 0;
    log_ = nullptr;
  }

 private:
  template <class, class, class, class>
  friend class node;
  using accessor = const entry_type& (*)(const void*, index_t);

  const entry_type& at_(index_t i) const { return get_(log_, i); }

  /// Appends indexes [from, to] of `log`.
  void extend_(const void* log, accessor get, index_t from, index_t to) {
    if (to < from) return;
    if (count_ == 0) {
      log_ = log;
      get_ = get;
      first_ = from;
    } else {
      RAFT_ASSERT(log_ == log, "an output collects the committed entries of one node only: clear() it in between");
      RAFT_ASSERT(from == first_ + count_, "committed entries must be contiguous");
    }
    count_ += static_cast<std::size_t>(distance(from, to) + 1);
  }
  /// Forgets every index up to and including `i` (covered by a snapshot).
  void drop_through_(index_t i) {
    if (count_ == 0 || i < first_) return;
    const std::uint64_t drop = std::min<std::uint64_t>(distance(first_, i) + 1, count_);
    first_ = first_ + drop;
    count_ -= static_cast<std::size_t>(drop);
  }

  const void* log_ = nullptr;
  accessor get_ = nullptr;
  index_t first_;
  std::size_t count_ = 0;
};

/// The work a caller must carry out after tick(), step() or propose(). The
/// node appends to it; the caller drains it and calls clear() (which keeps the
/// buffers' capacity, so a loop that reuses one output does not allocate).
///
/// Carry it out in this order:
///  1. If `persist` is set, make the Log's writes durable (memory_log: nothing
///     to do; a disk log: fsync). Several outputs may share one flush, as long
///     as none of their messages has been sent yet.
///  2. Send `messages`, in any order (Raft tolerates loss and reordering).
///     Send them once you are done filling this output: until then the node
///     may still add entries to an AppendEntries it put here earlier (that is
///     how many propose() calls become one message per follower).
///  3. If `snapshot` is set, restore the state machine from it (it replaces
///     everything up to snapshot->index).
///  4. Apply `committed` to the state machine, in order. Entries of kind noop
///     carry no command but are part of the gapless index sequence. After a
///     snapshot they continue at snapshot->index + 1.
///  5. React to `changes` (e.g. redirect clients when the leader changed).
template <class NodeId, class Payload>
struct output {
  using message_type = message<NodeId, Payload>;
  using entry_type = entry<Payload>;

  bool persist = false;
  std::vector<message_type> messages;
  committed_entries<Payload> committed;
  std::optional<raft::snapshot> snapshot;
  std::vector<state_change<NodeId>> changes;

  void clear() noexcept {
    persist = false;
    snapshot.reset();
    messages.clear();
    committed.clear();
    changes.clear();
  }
  [[nodiscard]] bool empty() const noexcept {
    return !persist && messages.empty() && committed.empty() && !snapshot && changes.empty();
  }
};

/// What step() did with a message.
enum class step_status : std::uint8_t {
  ok,              ///< Handled (which may mean "handled by replying with a rejection").
  stale_term,      ///< From an older term: answered with our term where useful, otherwise ignored.
  not_for_me,      ///< Addressed to another node: ignored.
  unknown_sender,  ///< The sender is not a member (or is this node): ignored.
  malformed,       ///< Contradicts itself or the protocol (e.g. non-contiguous entries): ignored.
  unexpected,      ///< Valid but meaningless in this role and term (e.g. a late vote): ignored.
};

[[nodiscard]] constexpr const char* to_string(step_status s) noexcept {
  switch (s) {
    case step_status::ok: return "ok";
    case step_status::stale_term: return "stale term";
    case step_status::not_for_me: return "addressed to another node";
    case step_status::unknown_sender: return "unknown sender";
    case step_status::malformed: return "malformed message";
    case step_status::unexpected: return "unexpected in this role";
  }
  return "?";
}

enum class propose_status : std::uint8_t {
  ok,          ///< Appended to the leader's log at `index`; not yet committed.
  not_leader,  ///< This node is not the leader; `leader` is the one it knows, if any.
};

[[nodiscard]] constexpr const char* to_string(propose_status s) noexcept {
  return s == propose_status::ok ? "ok" : "not leader";
}

enum class compact_status : std::uint8_t {
  ok,              ///< The snapshot is stored and the log prefix it covers dropped.
  beyond_applied,  ///< The index was not yet handed out for applying: refused.
  not_newer,       ///< The index is not after the current snapshot: refused.
};

[[nodiscard]] constexpr const char* to_string(compact_status s) noexcept {
  switch (s) {
    case compact_status::ok: return "ok";
    case compact_status::beyond_applied: return "snapshot index beyond the applied index";
    case compact_status::not_newer: return "snapshot index not after the current snapshot";
  }
  return "?";
}

template <class NodeId>
struct propose_result {
  propose_status status = propose_status::not_leader;
  index_t index;  ///< ok: index of the (last) appended entry.
  term_t term;    ///< ok: the term it was appended in. The entry is committed iff the
                  ///< entry applied at `index` has this term.
  std::optional<NodeId> leader;  ///< not_leader: the leader this node knows of, if any.

  [[nodiscard]] bool ok() const noexcept { return status == propose_status::ok; }
};

}  // namespace v0
}  // namespace raft
