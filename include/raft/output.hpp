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

/// A read that is safe to serve now (thesis §6.4): answer request `id` from
/// the state machine once it has applied through `index` (which the entries
/// of this output's `committed`, applied first, guarantee).
struct read_state {
  std::uint64_t id = 0;  ///< The id given to node::read_index().
  index_t index;         ///< The read index: serve from state applied at least this far.
  friend bool operator==(const read_state&, const read_state&) = default;
};

/// How a leadership transfer (node::transfer_leadership) went.
enum class transfer_outcome : std::uint8_t {
  started,    ///< This leader began bringing the target up to date; proposals are refused meanwhile.
  succeeded,  ///< The target became leader (this node heard from it in a newer term).
  aborted,    ///< It did not happen within an election timeout, or was superseded.
};

[[nodiscard]] constexpr const char* to_string(transfer_outcome o) noexcept {
  switch (o) {
    case transfer_outcome::started: return "started";
    case transfer_outcome::succeeded: return "succeeded";
    case transfer_outcome::aborted: return "aborted";
  }
  return "?";
}

template <class NodeId>
struct transfer_event {
  NodeId target{};
  transfer_outcome outcome = transfer_outcome::started;
  friend bool operator==(const transfer_event&, const transfer_event&) = default;
};

template <class Transport, class Log, class Clock, class Random, class Trace>
class node;

/// Names one write of a node's Log (raft/node.hpp, "Durability"): every
/// call into the node that changed the Log is one write, numbered 1, 2, ...
/// for the lifetime of the node object. Writes become durable in that order,
/// so reporting one reports every earlier one too.
///
/// `last_index`/`last_term` name the Log's last entry as that write left it.
/// They let the node recognise a report for entries that were truncated and
/// replaced since (it then counts as durable only the prefix the current log
/// still shares with that write), and refuse a token it never issued.
struct log_write {
  std::uint64_t seq = 0;  ///< Position in the node's sequence of writes (0: none).
  index_t last_index;     ///< The Log's last index after this write.
  term_t last_term;       ///< The term of that entry (or of the snapshot point).
  friend bool operator==(const log_write&, const log_write&) = default;
};

/// What node::persisted() made of a durability report.
enum class persist_status : std::uint8_t {
  ok,       ///< New: the write and every earlier one count as durable now.
  stale,    ///< Already known durable (an older or repeated report): nothing to do.
  unknown,  ///< This node never issued that write (a token from another node or
            ///< node object, or one whose index/term was altered): refused.
};

[[nodiscard]] constexpr const char* to_string(persist_status s) noexcept {
  switch (s) {
    case persist_status::ok: return "ok";
    case persist_status::stale: return "already durable";
    case persist_status::unknown: return "not a write this node issued";
  }
  return "?";
}

/// The entries an output says to apply: a view of the consecutive indexes
/// [first_index(), last_index()] of the node's Log, read in place. Handing
/// out a view instead of copies keeps the apply path free of per-entry
/// reference counting. It reads like a container of `const entry&`:
///
///     for (const auto& e : out.committed) apply(e);
///
/// How long the entries stay valid: until the node is destroyed, or until
/// the Log drops them (node::compact past them, or a snapshot installed from
/// the leader), whichever comes first. Moving the node does not invalidate
/// them (the node keeps its Log at a fixed address). compact() with this
/// output refuses (compact_status::unapplied) to drop entries of it the caller
/// has not read yet, and once it compacts past entries that were read, they
/// leave the view. Reading an entry the Log already dropped (through another
/// output's view) is caught: RAFT_ASSERT fires with "committed entries read
/// after the Log dropped them" instead of reading freed memory. So: apply
/// `committed` before calling compact() past it. An output collects committed
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
    read_upto_ = index_t{};
  }

 private:
  template <class, class, class, class, class>
  friend class node;
  using accessor = const entry_type& (*)(const void*, index_t);
  using first_accessor = index_t (*)(const void*);

  const entry_type& at_(index_t i) const {
    RAFT_ASSERT(i >= first_of_(log_),
                "committed entries read after the Log dropped them: apply out.committed before compacting past it");
    if (i > read_upto_) read_upto_ = i;
    return get_(log_, i);
  }

  /// Appends indexes [from, to] of `log`.
  void extend_(const void* log, accessor get, first_accessor first, index_t from, index_t to) {
    if (to < from) return;
    if (count_ == 0) {
      log_ = log;
      get_ = get;
      first_of_ = first;
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
  /// Whether this view holds entries of `log` at or below `i` that the
  /// caller has not read yet (so has not applied).
  [[nodiscard]] bool holds_unread_upto_(const void* log, index_t i) const noexcept {
    if (count_ == 0 || log_ != log) return false;
    const index_t from = max(first_, read_upto_.next());
    return from <= min(i, last_index());
  }

  const void* log_ = nullptr;
  accessor get_ = nullptr;
  first_accessor first_of_ = nullptr;
  index_t first_;
  std::size_t count_ = 0;
  mutable index_t read_upto_;  // highest index the caller has read
};

/// The messages of an output, in the order they were produced. It reads like
/// a std::vector. Reading the elements in any way (iterating, indexing,
/// copying or moving the list) "takes" them: from then on the node adds new
/// entries to fresh messages instead of growing an AppendEntries already in
/// the list (automatic batching, see output). So a caller who copies or moves
/// the messages out without clear() can never send an append that later grew
/// behind its back. size() and empty() do not take anything.
template <class Message>
class message_list {
 public:
  using value_type = Message;
  using size_type = std::size_t;
  using iterator = typename std::vector<Message>::iterator;
  using const_iterator = typename std::vector<Message>::const_iterator;

  message_list() = default;
  message_list(const message_list& o) : v_((o.taken_ = true, o.v_)) {}
  message_list(message_list&& o) noexcept : v_((o.taken_ = true, std::move(o.v_))) {}
  message_list& operator=(const message_list& o) {
    o.taken_ = true;
    v_ = o.v_;
    taken_ = true;
    return *this;
  }
  message_list& operator=(message_list&& o) noexcept {
    o.taken_ = true;
    v_ = std::move(o.v_);
    taken_ = true;
    return *this;
  }
  ~message_list() = default;

  [[nodiscard]] size_type size() const noexcept { return v_.size(); }
  [[nodiscard]] bool empty() const noexcept { return v_.empty(); }
  [[nodiscard]] size_type capacity() const noexcept { return v_.capacity(); }
  void reserve(size_type n) { v_.reserve(n); }

  iterator begin() noexcept { return take_().begin(); }
  iterator end() noexcept { return take_().end(); }
  const_iterator begin() const noexcept { return take_().begin(); }
  const_iterator end() const noexcept { return take_().end(); }
  Message& operator[](size_type k) { return take_()[k]; }
  const Message& operator[](size_type k) const { return take_()[k]; }
  Message& at(size_type k) { return take_().at(k); }
  const Message& at(size_type k) const { return take_().at(k); }
  Message& front() { return take_().front(); }
  const Message& front() const { return take_().front(); }
  Message& back() { return take_().back(); }
  const Message& back() const { return take_().back(); }
  /// The underlying vector (takes the messages).
  [[nodiscard]] std::vector<Message>& vector() noexcept { return take_(); }
  [[nodiscard]] const std::vector<Message>& vector() const noexcept { return take_(); }

  void push_back(const Message& m) { v_.push_back(m); }
  void push_back(Message&& m) { v_.push_back(std::move(m)); }
  /// Empties the list and ends "taken": the node may batch into it again.
  void clear() noexcept {
    v_.clear();
    taken_ = false;
  }

  const_iterator cbegin() const noexcept { return take_().cbegin(); }
  const_iterator cend() const noexcept { return take_().cend(); }
  /// Copies (or, from an rvalue, moves) the messages into a vector.
  operator std::vector<Message>() const& { return take_(); }  // NOLINT: implicit by design
  operator std::vector<Message>() && { return std::move(take_()); }  // NOLINT: implicit by design

  friend bool operator==(const message_list& a, const std::vector<Message>& b) { return a.take_() == b; }
  friend bool operator==(const message_list& a, const message_list& b) { return a.take_() == b.take_(); }

 private:
  template <class, class, class, class, class>
  friend class node;
  std::vector<Message>& take_() noexcept {
    taken_ = true;
    return v_;
  }
  const std::vector<Message>& take_() const noexcept {
    taken_ = true;
    return v_;
  }
  // Node-side access that does not take the messages.
  [[nodiscard]] bool taken_by_caller_() const noexcept { return taken_; }
  [[nodiscard]] Message& peek_(size_type k) noexcept { return v_[k]; }

  std::vector<Message> v_;
  mutable bool taken_ = false;
};

/// The work a caller must carry out after tick(), step(), propose(),
/// persisted() and the other inputs. The node appends to it; the caller
/// drains it and calls clear() (which keeps the buffers' capacity, so a loop
/// that reuses one output does not allocate).
///
/// Carry it out in this order:
///  1. If `persist` is set, the node wrote to the Log. Make those writes
///     durable (a disk log: fsync) and then report it: node.persisted(*persist,
///     out2). With a Log that is durable as soon as it is written (memory_log,
///     or any Log declaring `durable_on_write`), the node has already counted
///     it and there is nothing to do. The flush may run in the background
///     while you go on: nothing below waits for it (asynchronous durability).
///  2. Send `messages`, in any order (Raft tolerates loss and reordering). They
///     never include a promise the Log has not kept yet: acknowledgements of
///     appended entries and granted votes wait inside the node until
///     persisted() reports the write they depend on, and come out in the output
///     of that call. Send the messages once you are done filling this output:
///     until you read them, the node may still add entries to an AppendEntries
///     it put here earlier (that is how many propose() calls become one message
///     per follower); once read, they are never changed.
///  3. If `snapshot` is set, restore the state machine from it (it replaces
///     everything up to snapshot->index).
///  4. Apply `committed` to the state machine, in order. Entries of kind noop
///     carry no command but are part of the gapless index sequence. After a
///     snapshot they continue at snapshot->index + 1. They may be applied
///     before this node's own copy is durable: they are committed, i.e. durable
///     on a majority.
///  5. Answer the reads in `reads` (after applying `committed`), and fail the
///     ones in `failed_reads` (this node lost track of them: leadership or
///     the leader changed; retry them, on the new leader).
///  6. React to `changes` (role, term or leader changed) and `transfers`.
template <class NodeId, class Payload>
struct output {
  using message_type = message<NodeId, Payload>;
  using entry_type = entry<Payload>;

  /// The newest Log write made into this output, to make durable and report.
  std::optional<log_write> persist;
  message_list<message_type> messages;
  committed_entries<Payload> committed;
  std::optional<raft::snapshot> snapshot;
  std::vector<state_change<NodeId>> changes;
  /// Reads now safe to serve, and reads that never will be (by request id).
  std::vector<read_state> reads;
  std::vector<std::uint64_t> failed_reads;
  std::vector<transfer_event<NodeId>> transfers;

  void clear() noexcept {
    persist.reset();
    snapshot.reset();
    messages.clear();
    committed.clear();
    changes.clear();
    reads.clear();
    failed_reads.clear();
    transfers.clear();
  }
  [[nodiscard]] bool empty() const noexcept {
    return !persist && messages.empty() && committed.empty() && !snapshot && changes.empty() && reads.empty() &&
           failed_reads.empty() && transfers.empty();
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
  leader_active,   ///< A vote or pre-vote request of a newer term while this node hears from a
                   ///< leader (check_quorum's leader stickiness, thesis §4.2.3): ignored.
  dropped,         ///< A forwarded proposal this node cannot take (not leader, transferring,
                   ///< over max_uncommitted_bytes): dropped.
};

[[nodiscard]] constexpr const char* to_string(step_status s) noexcept {
  switch (s) {
    case step_status::ok: return "ok";
    case step_status::stale_term: return "stale term";
    case step_status::not_for_me: return "addressed to another node";
    case step_status::unknown_sender: return "unknown sender";
    case step_status::malformed: return "malformed message";
    case step_status::unexpected: return "unexpected in this role";
    case step_status::leader_active: return "ignored: a leader is active";
    case step_status::dropped: return "forwarded proposal dropped";
  }
  return "?";
}

enum class propose_status : std::uint8_t {
  ok,           ///< Appended to the leader's log at `index`; not yet committed.
  not_leader,   ///< This node is not the leader; `leader` is the one it knows, if any.
  empty_batch,  ///< propose_batch() of an empty range: nothing was appended.
  dropped,      ///< Over config.max_uncommitted_bytes: nothing was appended; retry later.
  transferring, ///< A leadership transfer is under way: nothing was appended; retry on the new leader.
  forwarded,    ///< Sent to the leader `leader` (config.forward_proposals); the outcome is not reported.
};

[[nodiscard]] constexpr const char* to_string(propose_status s) noexcept {
  switch (s) {
    case propose_status::ok: return "ok";
    case propose_status::not_leader: return "not leader";
    case propose_status::empty_batch: return "empty batch";
    case propose_status::dropped: return "dropped: too many uncommitted bytes";
    case propose_status::transferring: return "leadership transfer in progress";
    case propose_status::forwarded: return "forwarded to the leader";
  }
  return "?";
}

enum class compact_status : std::uint8_t {
  ok,              ///< The snapshot is stored and the log prefix it covers dropped.
  beyond_applied,  ///< The index was not yet handed out for applying: refused.
  not_newer,       ///< The index is not after the current snapshot: refused.
  unapplied,       ///< The output passed to compact() still holds committed entries up to the
                   ///< index, not yet applied: apply them first. Refused.
};

[[nodiscard]] constexpr const char* to_string(compact_status s) noexcept {
  switch (s) {
    case compact_status::ok: return "ok";
    case compact_status::beyond_applied: return "snapshot index beyond the applied index";
    case compact_status::not_newer: return "snapshot index not after the current snapshot";
    case compact_status::unapplied: return "the output still holds committed entries up to that index: apply them first";
  }
  return "?";
}

template <class NodeId>
struct propose_result {
  propose_status status = propose_status::not_leader;
  index_t index;  ///< ok: index of the (last) appended entry.
  term_t term;    ///< ok: the term it was appended in. The entry is committed iff the
                  ///< entry applied at `index` has this term.
  std::optional<NodeId> leader;  ///< not_leader, forwarded: the leader this node knows of, if any.

  [[nodiscard]] bool ok() const noexcept { return status == propose_status::ok; }
};

/// How a read must be confirmed (thesis §6.4).
enum class read_mode : std::uint8_t {
  read_index,  ///< Confirm leadership with one heartbeat round (shared by every read waiting for it).
  lease,       ///< Serve at once while the leader's lease holds (config.lease_reads); otherwise as read_index.
};

enum class read_status : std::uint8_t {
  ok,              ///< Accepted: the answer comes in a later output's `reads` or `failed_reads`.
  no_leader,       ///< This node knows no leader to ask: retry later or elsewhere.
  lease_disabled,  ///< read_mode::lease without config.lease_reads: refused.
  too_many,        ///< This node already tracks config.max_pending_reads reads: refused.
};

[[nodiscard]] constexpr const char* to_string(read_status s) noexcept {
  switch (s) {
    case read_status::ok: return "ok";
    case read_status::no_leader: return "no leader known";
    case read_status::lease_disabled: return "lease reads are disabled (config.lease_reads)";
    case read_status::too_many: return "too many pending reads";
  }
  return "?";
}

enum class transfer_status : std::uint8_t {
  started,         ///< Under way: out.transfers says how it ends.
  in_progress,     ///< A transfer to the same target is already under way.
  not_leader,      ///< Only the leader can transfer leadership.
  unknown_target,  ///< The target is not a member of the configuration.
  is_self,         ///< The target is this node, which already leads.
  not_voter,       ///< The target is a learner: it cannot be elected.
  witness,         ///< The target is a witness: it holds no payloads and never leads.
};

[[nodiscard]] constexpr const char* to_string(transfer_status s) noexcept {
  switch (s) {
    case transfer_status::started: return "started";
    case transfer_status::in_progress: return "already in progress";
    case transfer_status::not_leader: return "not leader";
    case transfer_status::unknown_target: return "target is not a member";
    case transfer_status::is_self: return "target is this node";
    case transfer_status::not_voter: return "target is a learner";
    case transfer_status::witness: return "target is a witness";
  }
  return "?";
}

}  // namespace v0
}  // namespace raft
