// raft/concepts.hpp - the four policy concepts, and checks with readable errors.
//
// Each policy is a C++20 concept. raft::node does not just constrain its
// parameters with them (which yields a wall of "constraints not satisfied"
// notes); it runs the matching check_*() below, whose static_asserts name the
// missing member and show how to write it.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "message.hpp"
#include "types.hpp"
#include "wire.hpp"

namespace raft {
inline namespace v0 {

// ---------------------------------------------------------------- Transport

template <class T>
concept transport_types = requires {
  typename T::node_id;
  typename T::payload;
};

template <class T>
concept transport =
    transport_types<T> && std::regular<typename T::node_id> && std::copyable<typename T::payload> &&
    std::default_initializable<typename T::payload> &&
    requires(byte_writer& w, byte_reader& r, const typename T::node_id& id, const typename T::payload& p) {
      T::encode_id(w, id);
      { T::decode_id(r) } -> std::same_as<std::optional<typename T::node_id>>;
      T::encode_payload(w, p);
      { T::decode_payload(r) } -> std::same_as<std::optional<typename T::payload>>;
      { T::payload_size(p) } -> std::convertible_to<std::size_t>;
    };

template <class T>
consteval bool check_transport() {
  static_assert(requires { typename T::node_id; } || !requires { T::node_id; },
                "raft: the Transport policy's `node_id` is a value, not a type. Write `using node_id = std::uint64_t;` "
                "instead of e.g. `static constexpr int node_id = ...;`");
  static_assert(requires { typename T::node_id; } || requires { T::node_id; },
                "raft: the Transport policy has no member type `node_id`. Add e.g. `using node_id = std::uint64_t;`");
  static_assert(requires { typename T::payload; },
                "raft: the Transport policy has no member type `payload`. Add e.g. `using payload = raft::bytes;` "
                "(the type of a client command)");
  if constexpr (transport_types<T>) {
    using id = typename T::node_id;
    using pl = typename T::payload;
    static_assert(std::regular<id>,
                  "raft: Transport::node_id must be regular (copyable, default-constructible, ==). "
                  "If you wrote `static constexpr int node_id = ...`, make it a type: `using node_id = int;`");
    static_assert(std::copyable<pl> && std::default_initializable<pl>,
                  "raft: Transport::payload must be copyable and default-constructible");
    static_assert(requires(byte_writer& w, const id& i) { T::encode_id(w, i); },
                  "raft: the Transport policy needs `static void encode_id(raft::byte_writer&, const node_id&)`");
    static_assert(requires(byte_reader& r) {
                    { T::decode_id(r) } -> std::same_as<std::optional<id>>;
                  },
                  "raft: the Transport policy needs `static std::optional<node_id> decode_id(raft::byte_reader&)`");
    static_assert(requires(byte_writer& w, const pl& p) { T::encode_payload(w, p); },
                  "raft: the Transport policy needs `static void encode_payload(raft::byte_writer&, const payload&)`");
    static_assert(requires(byte_reader& r) {
                    { T::decode_payload(r) } -> std::same_as<std::optional<pl>>;
                  },
                  "raft: the Transport policy needs `static std::optional<payload> decode_payload(raft::byte_reader&)`");
    static_assert(requires(const pl& p) {
                    { T::payload_size(p) } -> std::convertible_to<std::size_t>;
                  },
                  "raft: the Transport policy needs `static std::size_t payload_size(const payload&)` "
                  "(bytes counted against config.max_append_bytes)");
  }
  return transport<T>;
}

// ---------------------------------------------------------------------- Log

/// The durable state of a node: hard state, the entry log, and the snapshot
/// point (index and term of the last entry compacted away).
///
/// Durability contract. The node writes to its Log during its inputs
/// (tick, step, propose, persisted, ...), through save_hard_state(), append(),
/// truncate_after() and install_snapshot(), and reads back through the const
/// members; reads must observe every write at once. A Log may buffer those
/// writes. Each call that wrote is one numbered write, named by the output's
/// `persist` (a raft::log_write); the caller makes it durable - at once or in
/// the background, several at a time - and reports it with
/// node::persisted(). Writes must become durable in the order they were
/// made: a report covers every earlier write. The node holds back every
/// message that promises durable state (an append acknowledgement, a vote
/// grant, an installed snapshot) until the report, and a leader counts its own
/// log toward commitment only up to what was reported (thesis §10.2.1).
///
/// The rule a Log must keep across a crash: the hard state (term, vote) is
/// durable before or together with any entry of a newer term (the node
/// always saves it first, so flushing in order suffices). A node built from
/// a Log that breaks it is refused with a message saying so.
///
/// A Log whose every write is durable when the call that made it returns
/// declares `static constexpr bool durable_on_write = true;` - memory_log
/// does - and the node then counts each write as durable at once, so nobody
/// needs to call persisted().
///
/// Snapshots. install_snapshot() stores a snapshot and drops the entries it
/// covers (the node calls it when the application compacts, and when a
/// follower receives one from the leader); snapshot_index(), snapshot_term()
/// snapshot_data() and snapshot_membership() describe the stored one. Like every other write it may
/// be buffered until the caller flushes (the node sets `persist`), but the
/// flush must make the snapshot durable before or together with dropping the
/// covered entries, never after.
template <class L>
concept log_store =
    requires {
      typename L::node_id;
      typename L::payload;
    } &&
    requires(L& l, const L& cl, index_t i, entry<typename L::payload>&& e,
             const hard_state<typename L::node_id>& hs, const snapshot& snap) {
      { cl.hard_state() } -> std::convertible_to<hard_state<typename L::node_id>>;
      l.save_hard_state(hs);
      { cl.snapshot_index() } -> std::same_as<index_t>;
      { cl.snapshot_term() } -> std::same_as<term_t>;
      { cl.first_index() } -> std::same_as<index_t>;
      { cl.last_index() } -> std::same_as<index_t>;
      { cl.term_at(i) } -> std::same_as<term_t>;
      { cl.entry_at(i) } -> std::same_as<const entry<typename L::payload>&>;
      l.append(std::move(e));
      l.truncate_after(i);
      l.install_snapshot(snap);
      { cl.snapshot_data() } -> std::convertible_to<raft::bytes>;
      { cl.snapshot_membership() } -> std::convertible_to<raft::bytes>;
    };

template <class L, class Transport>
consteval bool check_log() {
  static_assert(requires { typename L::node_id; },
                "raft: the Log policy has no member type `node_id`. Add `using node_id = <Transport>::node_id;`");
  static_assert(requires { typename L::payload; },
                "raft: the Log policy has no member type `payload`. Add `using payload = <Transport>::payload;`");
  if constexpr (requires {
                  typename L::node_id;
                  typename L::payload;
                }) {
    using id = typename L::node_id;
    using pl = typename L::payload;
    using ent = entry<pl>;
    static_assert(std::same_as<id, typename Transport::node_id> && std::same_as<pl, typename Transport::payload>,
                  "raft: the Log's node_id/payload differ from the Transport's. Use raft::memory_log<YourTransport> "
                  "or declare the same types in both");
    static_assert(requires(const L& l) {
                    { l.hard_state() } -> std::convertible_to<hard_state<id>>;
                  },
                  "raft: the Log policy needs `raft::hard_state<node_id> hard_state() const`");
    static_assert(requires(L& l, const hard_state<id>& hs) { l.save_hard_state(hs); },
                  "raft: the Log policy needs `void save_hard_state(const raft::hard_state<node_id>&)`");
    static_assert(requires(const L& l) {
                    { l.snapshot_index() } -> std::same_as<index_t>;
                    { l.snapshot_term() } -> std::same_as<term_t>;
                  },
                  "raft: the Log policy needs `raft::index_t snapshot_index() const` and "
                  "`raft::term_t snapshot_term() const` (return 0 if you never compact)");
    static_assert(requires(const L& l) {
                    { l.first_index() } -> std::same_as<index_t>;
                    { l.last_index() } -> std::same_as<index_t>;
                  },
                  "raft: the Log policy needs `raft::index_t first_index() const` and `raft::index_t last_index() const`");
    static_assert(requires(const L& l, index_t i) {
                    { l.term_at(i) } -> std::same_as<term_t>;
                  },
                  "raft: the Log policy needs `raft::term_t term_at(raft::index_t) const`");
    static_assert(requires(const L& l, index_t i) {
                    { l.entry_at(i) } -> std::same_as<const ent&>;
                  },
                  "raft: the Log policy needs `const raft::entry<payload>& entry_at(raft::index_t) const` "
                  "(a reference, valid at least until the Log is next modified)");
    static_assert(requires(L& l, ent&& e) { l.append(std::move(e)); },
                  "raft: the Log policy needs `void append(raft::entry<payload>&&)`");
    static_assert(requires(L& l, index_t i) { l.truncate_after(i); },
                  "raft: the Log policy needs `void truncate_after(raft::index_t)` (drop every entry after it)");
    static_assert(requires(L& l, const snapshot& s) { l.install_snapshot(s); },
                  "raft: the Log policy needs `void install_snapshot(const raft::snapshot&)` (store it durably; keep "
                  "the entries after s.index if the entry at s.index has term s.term, else drop the whole log)");
    static_assert(requires(const L& l) {
                    { l.snapshot_data() } -> std::convertible_to<raft::bytes>;
                  },
                  "raft: the Log policy needs `raft::bytes snapshot_data() const` (the stored snapshot, empty if none)");
    static_assert(requires(const L& l) {
                    { l.snapshot_membership() } -> std::convertible_to<raft::bytes>;
                  },
                  "raft: the Log policy needs `raft::bytes snapshot_membership() const` (the `membership` of the "
                  "stored snapshot, stored with it by install_snapshot; empty if none)");
  }
  return log_store<L>;
}

// -------------------------------------------------------------------- Clock

/// advance() is called once per node tick; now() is a monotonic reading.
template <class C>
concept clock_source = requires(C& c, const C& cc) {
  c.advance();
  { cc.now() } -> std::convertible_to<std::uint64_t>;
};

template <class C>
consteval bool check_clock() {
  static_assert(requires(C& c) { c.advance(); },
                "raft: the Clock policy needs `void advance()` (called once per node tick)");
  static_assert(requires(const C& c) {
                  { c.now() } -> std::convertible_to<std::uint64_t>;
                },
                "raft: the Clock policy needs `std::uint64_t now() const` (a monotonic reading)");
  return clock_source<C>;
}

// ------------------------------------------------------------------- Random

template <class R>
concept random_source = requires(R& r, std::uint64_t s) {
  r.seed(s);
  { r.next() } -> std::convertible_to<std::uint64_t>;
};

template <class R>
consteval bool check_random() {
  static_assert(requires(R& r, std::uint64_t s) { r.seed(s); },
                "raft: the Random policy needs `void seed(std::uint64_t)` (the node seeds it from "
                "config.random_seed and its id)");
  static_assert(requires(R& r) {
                  { r.next() } -> std::convertible_to<std::uint64_t>;
                },
                "raft: the Random policy needs `std::uint64_t next()` (uniform 64-bit values)");
  return random_source<R>;
}

}  // namespace v0
}  // namespace raft
