// tests/sim/history.hpp - a linearizability checker for the simulator's
// client operations: writes (proposals) and reads (node::read_index).
//
// The state machine of the simulator is the committed log itself: its state
// after applying k entries is "the first k committed entries". A write is an
// entry; it returns its log index. A read returns the state it saw, which
// the simulator records as the applied index of the node that answered it
// (after that output's committed entries were applied). State Machine Safety
// (checked by the cluster after every event) makes every applied prefix a
// prefix of the one committed sequence, so "the read saw index k" says
// exactly which writes it saw: those at indexes 1..k.
//
// Why a floor suffices. Writes are totally ordered by log index. Then the
// history is linearizable iff
//   (R) every completed read observed an index >= its floor: the largest of
//       the index of every write that completed before the read was invoked
//       and the index observed by every read that completed before it was
//       invoked; and
//   (W) every completed write got an index > its floor: the largest index
//       of a write, or observed by a read, that completed before the write
//       was invoked.
// Given (R) and (W), this order is a linearization: a write at index k at
// position (k, 0), a read that observed k at position (k, 1), reads at the
// same position in order of completion, writes that never completed at their
// index if some read observed them (dropped otherwise). Every read returns
// exactly the writes before it. Real time is respected: if a completes
// before b is invoked, then - b a read: (R) puts a's index or observation
// <= b's observation, so a comes first (equal positions: a write precedes a
// read, and reads with equal observations are ordered by completion); b a
// write: (W) puts b's index above a's, so a comes first. Conversely, a read
// that observed less than its floor missed a write (or a state another read
// already showed) that completed before it began: no linearization exists.
// (W) holds for any correct Raft (a completed write is committed, and a later
// proposal lands after every committed entry), but it costs nothing to check.
//
// Failed reads (out.failed_reads) and writes that never completed (their
// node crashed, or another entry took their index) returned nothing and
// constrain nothing. The "floor" is kept as a running maximum: monotone, so
// its value at an operation's invocation is the maximum over exactly the
// operations that completed before it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace sim {

/// What the simulator throws when a check fails.
struct violation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class history {
 public:
  /// `seed` only labels the violations it raises.
  explicit history(std::uint64_t seed = 0) : seed_(seed) {}

  struct read_rec {
    std::uint64_t node = 0;
    std::uint64_t invoked = 0;   // sim time
    std::uint64_t floor = 0;     // the running floor at invocation
    bool done = false;
    bool failed = false;         // completed with no value
    std::uint64_t completed = 0; // sim time
    std::uint64_t observed = 0;  // applied index seen (when !failed)
  };
  struct write_rec {
    std::uint64_t node = 0;
    std::uint64_t invoked = 0;
    std::uint64_t floor = 0;
    bool done = false;
    std::uint64_t completed = 0;
    std::uint64_t index = 0;
  };

  // ---------------------------------------------------------------- reads

  /// A client read begins at `node`; returns its id (fresh, never 0).
  std::uint64_t invoke_read(std::uint64_t node, std::uint64_t now) {
    now_ = now;
    const std::uint64_t id = next_read_++;
    reads_.emplace(id, read_rec{node, now, floor_, false, false, 0, 0});
    return id;
  }
  /// Read `id` returned the state at applied index `observed` at `node`.
  void complete_read(std::uint64_t id, std::uint64_t node, std::uint64_t observed, std::uint64_t now) {
    now_ = now;
    read_rec& r = pending_read_(id, node, "answered");
    r.done = true;
    r.completed = now;
    r.observed = observed;
    ++reads_ok_;
    if (observed < r.floor)
      fail_("Linearizability: read " + std::to_string(id) + " at node " + std::to_string(node) + " observed applied index " +
            std::to_string(observed) + " below its floor " + std::to_string(r.floor) +
            " (a write, or a read, that completed before this read was invoked saw index " + std::to_string(r.floor) +
            "); invoked t=" + std::to_string(r.invoked) + ", completed t=" + std::to_string(now));
    raise_(observed);
  }
  /// Read `id` will never be answered (out.failed_reads, or a refusal).
  void fail_read(std::uint64_t id, std::uint64_t node, std::uint64_t now) {
    now_ = now;
    read_rec& r = pending_read_(id, node, "failed");
    r.done = true;
    r.failed = true;
    r.completed = now;
    ++reads_failed_;
  }
  /// The node holding read `id` crashed: the client never hears back.
  void abandon_read(std::uint64_t id) { reads_.erase(id); }

  // --------------------------------------------------------------- writes

  std::uint64_t invoke_write(std::uint64_t node, std::uint64_t now) {
    now_ = now;
    const std::uint64_t id = next_write_++;
    writes_.emplace(id, write_rec{node, now, floor_, false, 0, 0});
    return id;
  }
  /// Write `id` is known committed at `index` (the client learned it).
  void complete_write(std::uint64_t id, std::uint64_t index, std::uint64_t now) {
    now_ = now;
    auto it = writes_.find(id);
    if (it == writes_.end() || it->second.done) fail_("history: write " + std::to_string(id) + " completed twice or never began");
    write_rec& w = it->second;
    w.done = true;
    w.completed = now;
    w.index = index;
    ++writes_ok_;
    if (index <= w.floor)
      fail_("Linearizability: write " + std::to_string(id) + " proposed at node " + std::to_string(w.node) +
            " committed at index " + std::to_string(index) + ", not above its floor " + std::to_string(w.floor) +
            " (an operation that completed before it was invoked saw that index); invoked t=" +
            std::to_string(w.invoked) + ", completed t=" + std::to_string(now));
    raise_(index);
  }
  /// Write `id` will never complete (its index went to another entry, or its node crashed).
  void abandon_write(std::uint64_t id) { writes_.erase(id); }

  // -------------------------------------------------------------- queries

  [[nodiscard]] const read_rec* read(std::uint64_t id) const {
    auto it = reads_.find(id);
    return it == reads_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] std::uint64_t floor() const { return floor_; }
  [[nodiscard]] std::uint64_t reads_ok() const { return reads_ok_; }
  [[nodiscard]] std::uint64_t reads_failed() const { return reads_failed_; }
  [[nodiscard]] std::uint64_t writes_ok() const { return writes_ok_; }

 private:
  read_rec& pending_read_(std::uint64_t id, std::uint64_t node, const char* how) {
    auto it = reads_.find(id);
    if (it == reads_.end())
      fail_("history: node " + std::to_string(node) + " " + how + " read " + std::to_string(id) + ", which was never invoked");
    if (it->second.node != node)
      fail_("history: node " + std::to_string(node) + " " + how + " read " + std::to_string(id) + ", which was invoked at node " +
            std::to_string(it->second.node));
    if (it->second.done)
      fail_("history: node " + std::to_string(node) + " " + how + " read " + std::to_string(id) + ", which already " +
            (it->second.failed ? "failed" : "completed"));
    return it->second;
  }
  void raise_(std::uint64_t v) {
    if (v > floor_) floor_ = v;
  }

  [[noreturn]] void fail_(const std::string& what) const {
    throw violation("seed " + std::to_string(seed_) + " at t=" + std::to_string(now_) + ": " + what);
  }

  std::uint64_t seed_;
  std::uint64_t now_ = 0;  // time of the call being checked (for messages)
  std::uint64_t floor_ = 0;
  std::uint64_t next_read_ = 1, next_write_ = 1;
  std::uint64_t reads_ok_ = 0, reads_failed_ = 0, writes_ok_ = 0;
  std::unordered_map<std::uint64_t, read_rec> reads_;
  std::unordered_map<std::uint64_t, write_rec> writes_;
};

}  // namespace sim
