// examples/kv/disk_log.hpp - a durable, checksummed Log policy for raft::node (POSIX).
//
// On-disk layout of a data directory:
//
//   LOCK                      flock()ed while a process uses the directory
//   hardstate                 term and vote, replaced atomically (see below)
//   <first-index>.seg         log segments, 20-digit zero-padded first index
//   snap-<index>-<term>       the snapshot (both numbers 20-digit zero-padded)
//
// Segment file:  header := "KVSEG001" first_index:u64 crc32c(previous 16 bytes):u32     (20 bytes)
//                record := length:u32 body_crc:u32 header_crc:u32 body[length]
//                          header_crc = crc32c of the 8 bytes before it
//                body   := type:u8(1) term:u64 index:u64 kind:u8 data[...]             an entry
//                        | type:u8(2) term:u64 index:u64 kind:u8(config) data_size:u32
//                          data[data_size] conf[...]                a configuration entry
//                The record type is the version of a record: type 2 (configuration
//                entries, whose `conf` - raft::encode_config_entry - is stored
//                after the payload) came with membership changes. A reader that
//                predates it refuses a type-2 record by name ("unknown record
//                type 2"); this one checks that a type-2 record is a config
//                entry whose conf decodes, and that no config entry is type 1.
// Snapshot file: header := "KVSNAP02" index:u64 term:u64 size:u64 crc32c(data):u32
//                          membership_size:u32 crc32c(membership):u32
//                          crc32c(previous 44 bytes):u32                       (48 bytes)
//                data       := the application's snapshot bytes [size]
//                membership := raft::snapshot::membership [membership_size]
//                (encode_config_entry: the cluster membership as of the
//                snapshot's index; empty for a snapshot of an older format).
//                "KVSNAP01" files (written before membership changes: a
//                40-byte header without the two membership fields, no
//                membership) are still read, with an empty membership.
// After the last record a segment may hold zeros: space written ahead
// (preallocation; disk_log_options::preallocate_bytes), in chunks that grow
// with the segment from 4 KiB up to 1 MiB. Records are later written over
// them, so fdatasync() has data to flush but no file size or block map to
// commit (on ext4: no journal commit; about 150 us instead of 230 us here).
// All integers little-endian. Records never span segments; a segment is
// created (temp file, fsync, rename, directory fsync) when the active one
// would exceed `segment_bytes`, after the active one was synced. So every
// segment but the last is complete and synced, and only the last can end in
// a torn write.
//
// Write path. append(), truncate_after(), save_hard_state() and
// install_snapshot() only change memory (reads observe them at once: every
// entry after the snapshot is kept in memory, which is the cache reads are
// served from). sync() makes them durable in the order that keeps every crash
// state valid:
//   1. hard state: write hardstate.tmp, fsync, rename over hardstate, fsync
//      the directory. First, because the node refuses a log holding a term
//      later than its hard state's.
//   2. snapshot, if install_snapshot() was called: write snap-<i>-<t>.tmp
//      (header and data), fsync, rename, then unlink the segments it made
//      obsolete and the previous snapshot file, fsync the directory. See
//      "Snapshots" below for why every intermediate state is recoverable.
//   3. truncation, if truncate_after() went below what is on disk: unlink the
//      later segments, ftruncate() the segment holding the cut, fsync it and
//      the directory. Overwriting never happens: the file is always a prefix
//      of valid records plus, at worst, one torn record at its end.
//   4. every entry not yet on disk, encoded into one buffer, pwrite()n to the
//      active segment (rolling over as needed), then one fdatasync() for all
//      of them: group commit.
//
// Asynchronous flushing. sync() is three calls a caller may also make
// separately: write_out() does steps 1-4 except the final fdatasync() of
// step 4 and returns a flush_ticket naming the active segment; flush(ticket)
// is that fdatasync(), and touches nothing but the ticket, so it may run on a
// writer thread while the event loop goes on appending and calling
// write_out() again (every record written before a flush started is covered
// by it: group commit across calls); mark_durable(ticket) then tells the log.
// Steps 1-3 and the sealing of a full segment stay synchronous inside
// write_out(), except that removing the files a snapshot made obsolete is
// left to the ticket (flush_ticket::unlink: unlinking a segment can take
// milliseconds; a writer thread does it after its fdatasync, and open()
// removes what a crash left). needs_quiesce() says when the next write_out()
// cuts the log; the caller then lets its running flushes finish first, so no
// file is truncated under a flush. What stays true:
//  * the hard state is durable before write_out() writes any entry, so no
//    entry of a term reaches the disk ahead of that term's hard state;
//  * a segment is fsynced before the next one is created (whatever flushes
//    are outstanding): every segment but the last is complete and synced,
//    and only the last can end in a torn write - records written but not yet
//    flushed are all in the last segment;
//  * a snapshot file is durable before any segment it covers is removed, and
//    a file left for later removal never has a name the log may create
//    again (segments starting after the snapshot's index are removed at
//    once, before the next segment is created);
//  * segment files are shared with the tickets that name them (log_file):
//    the log closing a segment (snapshot, cut, roll-over) never closes the
//    descriptor of a flush still running on it;
//  * what is durable is what a returned flush covered: entries a process
//    crash cannot lose (they are in the kernel once write_out() returned) but
//    a machine crash may, and only those after durable_last(). A ticket
//    overtaken by a truncation counts only up to the cut (mark_durable).
// The caller keeps the Log contract by reporting a raft::log_write to the node
// only once the flush of a write_out() made after that write has returned.
//
// Recovery (open()). The newest snapshot file is loaded and checked first
// (header checksum, size, data checksum); older ones and unfinished
// snap-*.tmp files are removed. Then segments are read in order and every
// record checked; records at or below the snapshot's index are checked but
// not kept, and segments that hold nothing after it are removed.
//  * In any segment, zeros from a record boundary to the end of the file are
//    space written ahead (or never written): the segment ends there, and they
//    stay (nothing to warn about, nothing to cut).
//  * In the last segment, a record that is cut short (fewer bytes than its
//    header, or than its verified length), and a final record whose header
//    or body checksum fails with nothing but zeros after it (a write cut
//    short in preallocated space) are a torn write: the file is cut back to
//    the last good record (and the caller is warned with file, offset and
//    bytes dropped). Nothing that sync() or a flush() returned for can
//    be torn. (A machine crash may write back the unflushed pages of the
//    last segment in any order; a hole of zeros followed by records - not
//    only zeros to the end - is then refused as corruption below, as it was
//    for a multi-page write before asynchronous flushing. Killing the
//    process never leaves one.)
//  * Everything open() keeps counts as durable from then on (the node is
//    built from it), so open() ends by fsyncing the last segment and the
//    directory: a process that died between a write and its fsync - after
//    write_out(), or after a rename before the directory fsync - may have
//    left records or a name only in the kernel.
//  * Anything else - a bad record with valid records after it, a bad record
//    in a sealed segment, a bad segment header, an index out of sequence, a
//    corrupt hardstate file, a corrupt snapshot file - throws kv::log_error
//    naming the file and the byte offset, and changes nothing on disk. Data
//    is never silently dropped. (A damaged newest snapshot is refused even
//    if an older one exists: it was fsynced before its rename, so damage
//    means the disk is lying, and a human should look.)
//
// Snapshots. install_snapshot(s) keeps the entries after s.index if the log
// holds s.index with term s.term, otherwise drops the whole log (the
// raft::log_store rule), in memory at once and on disk at the next sync():
// the snapshot file is made durable first, then the segments whose entries
// are all at or below s.index are unlinked - oldest first when the suffix is
// kept, newest first when the whole log goes - and the next entry written
// starts a new segment, so that the next snapshot can unlink the current one:
// the on-disk log stays bounded by what was written between two snapshots
// (plus one segment_bytes at most). A crash between those steps leaves the
// new snapshot next to (part of) the old segments; open() then applies the
// same rule to what it finds: the entry at the snapshot's index on disk has
// the snapshot's term - keep what follows - or not - drop it. Because
// segments are unlinked from one end only, the ones left are contiguous and
// still show the entry at the snapshot's index whenever they hold anything
// after it.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <raft/raft.hpp>

#include "crc32c.hpp"

namespace kv {

/// A failure to read or write the log: corruption found at open(), or an I/O
/// error. After an I/O error in sync() the log must not be used again (a
/// failed fsync may have dropped dirty pages: retrying could report success
/// for data that is gone).
struct log_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct disk_log_options {
  /// A new segment is started when the active one would grow past this.
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  /// fdatasync/fsync for real. false is only for measuring what the syncs
  /// cost; a node running without them can lose acknowledged writes.
  bool fsync = true;
  /// Receives warnings (a torn tail that was truncated, a stale temp file).
  std::function<void(const std::string&)> warn;
  /// Zero-fill the active segment ahead of the records, in chunks that grow
  /// with the segment from 4 KiB up to this (0: never). Overwriting space
  /// that is already written leaves the file's size and block map alone, so
  /// fdatasync() has only the data to flush - no filesystem journal commit.
  std::uint64_t preallocate_bytes = std::uint64_t{1} << 20;
};

/// An open segment file. The log and every flush_ticket naming it share it;
/// the descriptor is closed when the last of them lets go, so a writer thread's
/// fdatasync() never finds its descriptor closed (or reused) under it, even
/// when the log closes the segment meanwhile (a snapshot, a cut, a roll-over).
class log_file {
 public:
  log_file(int fd, std::string path) noexcept : fd_(fd), path_(std::move(path)) {}
  ~log_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  log_file(const log_file&) = delete;
  log_file& operator=(const log_file&) = delete;
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  int fd_;
  std::string path_;
};

/// What disk_log::write_out() left to make durable: one fdatasync() of `file`
/// (disk_log::flush()), after which disk_log::mark_durable() may be told. It
/// holds nothing of the log but a reference to that file, so the flush may run
/// on another thread while the log goes on being used.
struct flush_ticket {
  /// The active segment, to fdatasync; null if nothing written is waiting for
  /// one (or fsync is off).
  std::shared_ptr<const log_file> file;
  /// Every entry up to this index is durable once that fdatasync has returned
  /// (if it started after write_out() returned).
  std::uint64_t upto = 0;
  /// The log's count of cuts and of its pwrite()s to segment files when issued:
  /// mark_durable() recognises a ticket that a later truncation or write overtook.
  std::uint64_t epoch = 0;
  std::uint64_t writes = 0;
  /// Files to remove after the flush (segments and a snapshot file made
  /// obsolete by a snapshot that is durable already). Never names a file the
  /// log may create again, so removing them late is harmless; a crash before
  /// they go leaves them to open(), which removes them.
  std::vector<std::string> unlink;
};

namespace detail {
inline void put_u32(unsigned char* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline void put_u64(unsigned char* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline std::uint32_t get_u32(const unsigned char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint64_t get_u64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::string errno_text(int e) { return std::strerror(e); }
}  // namespace detail

class disk_log {
 public:
  using node_id = std::uint64_t;
  using payload = raft::bytes;
  using entry_type = raft::entry<payload>;
  using hard_state_type = raft::hard_state<node_id>;

  static constexpr std::size_t segment_header_bytes = 20;
  static constexpr std::size_t record_header_bytes = 12;
  static constexpr std::size_t entry_body_fixed = 18;  // type, term, index, kind
  static constexpr std::size_t config_body_fixed = entry_body_fixed + 4;  // ... and data_size (type 2)
  static constexpr std::uint32_t max_record_bytes = std::uint32_t{256} << 20;
  static constexpr std::size_t hardstate_bytes = 8 + 8 + 1 + 8 + 4;
  static constexpr std::size_t snapshot_header_bytes = 8 + 8 + 8 + 8 + 4 + 4 + 4 + 4;     // KVSNAP02
  static constexpr std::size_t snapshot_v1_header_bytes = 8 + 8 + 8 + 8 + 4 + 4;          // KVSNAP01
  /// Largest snapshot membership stored (raft::max_members ids and a context
  /// fit in far less).
  static constexpr std::uint32_t max_membership_bytes = std::uint32_t{16} << 20;

  /// Opens (creating if needed) the log in `dir`, recovering from a crash as
  /// described above. Throws log_error.
  static disk_log open(const std::string& dir, disk_log_options opt = {}) {
    disk_log l;
    l.dir_ = dir;
    l.opt_ = std::move(opt);
    if (l.opt_.segment_bytes < segment_header_bytes + record_header_bytes + entry_body_fixed)
      throw log_error("disk_log: segment_bytes is too small");
    l.open_dir_();
    l.load_hard_state_();
    l.load_snapshot_();
    l.load_segments_();
    l.remove_obsolete_files_();
    // What an earlier process wrote may still be only in the kernel (it died
    // between a write and its fsync: after write_out(), or after a rename
    // before the directory fsync). The node counts everything the log holds
    // at start as durable, so make it so: the last segment (every earlier one
    // was synced before the next was created) and the directory.
    if (l.active_ != nullptr) l.fsync_fd_(l.active_fd_(), l.segs_.back().path, false);
    l.fsync_dir_();
    return l;
  }

  disk_log(disk_log&& o) noexcept { swap(o); }
  disk_log& operator=(disk_log&& o) noexcept {
    disk_log tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  disk_log(const disk_log&) = delete;
  disk_log& operator=(const disk_log&) = delete;
  /// Closes the files. Does not sync: what was not synced is lost, as in a crash.
  ~disk_log() { close_all_(); }

  // --------------------------------------------------------- raft::log_store

  [[nodiscard]] hard_state_type hard_state() const { return hs_; }
  void save_hard_state(const hard_state_type& hs) {
    if (hs == hs_) return;
    hs_ = hs;
    hs_dirty_ = true;
  }
  /// Index and term of the last entry the snapshot covers (0: no snapshot).
  [[nodiscard]] raft::index_t snapshot_index() const noexcept { return raft::index_t{snap_index_}; }
  [[nodiscard]] raft::term_t snapshot_term() const noexcept { return snap_term_; }
  [[nodiscard]] raft::index_t first_index() const noexcept { return raft::index_t{snap_index_ + 1}; }
  [[nodiscard]] raft::index_t last_index() const noexcept { return raft::index_t{snap_index_ + entries_.size()}; }
  /// Term of the entry at `i`, for snapshot_index() <= i <= last_index().
  [[nodiscard]] raft::term_t term_at(raft::index_t i) const {
    if (i.value == snap_index_) return snap_term_;
    return entry_at(i).term;
  }
  /// The entry at `i`, for first_index() <= i <= last_index().
  [[nodiscard]] const entry_type& entry_at(raft::index_t i) const {
    RAFT_ASSERT(i.value > snap_index_ && i.value - snap_index_ <= entries_.size(), "disk_log::entry_at: index out of range");
    return entries_[static_cast<std::size_t>(i.value - snap_index_ - 1)];
  }
  void append(entry_type&& e) {
    RAFT_ASSERT(e.index == last_index().next(), "disk_log::append: entry index is not last_index + 1");
    entries_.push_back(std::move(e));
  }
  /// Removes every entry after `i` (snapshot_index() <= i <= last_index()).
  void truncate_after(raft::index_t i) {
    RAFT_ASSERT(i.value >= snap_index_ && i <= last_index(), "disk_log::truncate_after: index out of range");
    entries_.resize(static_cast<std::size_t>(i.value - snap_index_));
    durable_last_ = std::min(durable_last_, i.value);
    if (i.value < written_last_) {
      written_last_ = i.value;  // entries after it must be cut from disk first
      cut_pending_ = true;
      note_cut_(i.value);
    }
  }

  /// The stored snapshot's data (empty if there is none).
  [[nodiscard]] const raft::bytes& snapshot_data() const noexcept { return snap_data_; }
  /// The stored snapshot's membership (raft::snapshot::membership; empty if
  /// there is no snapshot, or it was written before membership changes).
  [[nodiscard]] const raft::bytes& snapshot_membership() const noexcept { return snap_membership_; }

  /// Makes `snap` the stored snapshot (durable at the next sync()). If the
  /// log holds snap.index with term snap.term, the entries after it are kept;
  /// otherwise the whole log is dropped. Entries up to snap.index go.
  void install_snapshot(const raft::snapshot& snap) {
    RAFT_ASSERT(snap.index.value >= snap_index_, "disk_log::install_snapshot: snapshot older than the current one");
    RAFT_ASSERT(snap.index.value > 0 && snap.term.value > 0, "disk_log::install_snapshot: snapshot at index or term 0");
    const std::uint64_t s = snap.index.value;
    const bool keep = s <= last_index().value && term_at(snap.index) == snap.term;
    if (keep) {
      entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(s - snap_index_));
    } else {
      entries_.clear();
    }
    snap_index_ = s;
    snap_term_ = snap.term;
    snap_data_ = snap.data;
    snap_membership_ = snap.membership;
    snap_pending_ = true;
    roll_pending_ = true;
    // What the disk must lose once the snapshot file is durable (see "Snapshots").
    if (keep && written_last_ >= s) {
      // The disk agrees with memory up to written_last_ >= s: the segments
      // holding only entries <= s go, oldest first.
      while (!segs_.empty()) {
        const std::uint64_t seg_last = segs_.size() > 1 ? segs_[1].first - 1 : disk_last_();
        if (seg_last > s) break;
        if (segs_.size() == 1) close_active_();
        doomed_.push_back(segs_.front().path);
        segs_.erase(segs_.begin());
      }
      while (loc_base_ < s && !locs_.empty()) {
        locs_.pop_front();
        ++loc_base_;
      }
      if (locs_.empty()) loc_base_ = std::max(loc_base_, s);
      durable_last_ = std::max(durable_last_, s);  // covered by the snapshot (durable once snap_pending_ is false)
    } else {
      // Nothing on disk survives (a different history, or only entries the
      // snapshot covers): every segment goes, newest first.
      close_active_();
      for (auto it = segs_.rbegin(); it != segs_.rend(); ++it) doomed_.push_back(it->path);
      segs_.clear();
      locs_.clear();
      loc_base_ = s;
      written_last_ = s;
      durable_last_ = s;
      cut_pending_ = false;
      note_cut_(s);
    }
  }

  // ------------------------------------------------------------- durability

  /// True if something is written in memory but not yet durable.
  [[nodiscard]] bool dirty() const noexcept {
    return hs_dirty_ || snap_pending_ || cut_pending_ || durable_last_ < last_index().value;
  }

  /// Makes every write so far durable (see the top of this file):
  /// write_out(), flush() and mark_durable() in one call. Throws log_error on
  /// an I/O error, after which the log refuses further use.
  void sync() {
    const flush_ticket t = write_out();
    try {
      if (t.file != nullptr) {
        flush(t);
        ++syncs_;
      }
      remove_obsolete(t);
    } catch (...) {
      broken_ = true;
      throw;
    }
    mark_durable(t);
  }

  /// The first half of sync(): writes every change to the files, in the
  /// order the top of this file gives - hard state, snapshot and truncation
  /// durable before it returns (each fsynced on the spot), then the new
  /// entries pwrite()n to the active segment (a segment sealed on the way is
  /// fsynced first) - except the final fdatasync of the active segment. The
  /// returned ticket names it. Until flush(ticket) has returned, the entries
  /// it covers may be lost to a machine crash (never to a process crash: they
  /// are in the kernel). Throws log_error like sync().
  ///
  /// A caller that flushes on another thread may call write_out() again
  /// while earlier flushes run, as long as needs_quiesce() is false; otherwise
  /// it lets them finish first.
  [[nodiscard]] flush_ticket write_out() {
    if (broken_) throw log_error("disk_log: an earlier I/O error made the log unusable");
    try {
      if (hs_dirty_) write_hard_state_();
      if (snap_pending_) write_snapshot_();
      if (cut_pending_) cut_();
      if (written_last_ < last_index().value) write_entries_();
    } catch (...) {
      broken_ = true;
      throw;
    }
    return flush_ticket{opt_.fsync && active_dirty_ ? active_ : nullptr, written_last_, epoch_, writes_,
                        std::exchange(obsolete_later_, {})};
  }

  /// True if the next write_out() cuts the log (ftruncate, unlink): the
  /// caller lets its running flushes finish first, so that no file is
  /// truncated under an fdatasync of it. The other writes need no wait, as
  /// write_out() orders them itself: the hard state has its own file and is
  /// durable before any entry is written (no entry of a term reaches the disk
  /// ahead of that term's hard state); a snapshot file is durable before any
  /// segment it covers is removed, and removing or closing a file a flush is
  /// syncing does not disturb that flush (its ticket holds the descriptor);
  /// sealing a full segment fdatasyncs it in write_out() itself before the
  /// next one is created. A flush overtaken by any of these counts only for
  /// what the log still holds (mark_durable).
  [[nodiscard]] bool needs_quiesce() const noexcept { return cut_pending_; }

  /// The second half: one fdatasync() of the ticket's file (nothing if it
  /// names none). Touches nothing but the ticket, so a writer thread may call
  /// it while the log is used on another. Throws log_error; after a failure
  /// nothing written since the last successful flush may be trusted: stop
  /// using the log (as after a failed sync()).
  static void flush(const flush_ticket& t) {
    if (t.file == nullptr) return;
    if (::fdatasync(t.file->fd()) != 0) io_fail("fsync failed for", t.file->path(), errno);
  }
  /// Removes the files the ticket lists (after its flush, or any time: they
  /// are obsolete already). Like flush(), touches nothing but the ticket.
  static void remove_obsolete(const flush_ticket& t) {
    for (const std::string& f : t.unlink)
      if (::unlink(f.c_str()) != 0 && errno != ENOENT) io_fail("cannot remove", f, errno);
  }

  /// Records that flush(t) returned, for a ticket of this log's write_out().
  /// Tickets may be reported late, out of order or not at all (a later one
  /// covers the earlier ones): a report never lowers what is known durable,
  /// and one overtaken by a truncation counts only up to the cut.
  void mark_durable(const flush_ticket& t) {
    std::uint64_t upto = t.upto;
    if (t.epoch != epoch_) {
      const std::uint64_t since = epoch_ - t.epoch;  // cuts made after the ticket was issued
      if (t.epoch > epoch_ || since > cuts_.size()) return;  // not ours, or too old to tell: proves nothing
      for (std::size_t k = cuts_.size() - static_cast<std::size_t>(since); k < cuts_.size(); ++k) upto = std::min(upto, cuts_[k]);
    }
    upto = std::min(upto, written_last_);
    durable_last_ = std::max(durable_last_, upto);
    if (t.file != nullptr && t.file == active_ && t.writes == writes_) active_dirty_ = false;
  }

  /// Entries up to here are durable (or covered by the snapshot) and agree
  /// with memory; written_last() the same for written to the files.
  [[nodiscard]] raft::index_t durable_last() const noexcept { return raft::index_t{durable_last_}; }
  [[nodiscard]] raft::index_t written_last() const noexcept { return raft::index_t{written_last_}; }

  /// Test hook (kv-server --debug, SIGUSR1): cuts from the active segment
  /// every record not known durable - what a power failure at this instant may
  /// take - and returns how many entries that dropped. Sealed segments, the
  /// hard state and the snapshot are durable by construction. The log must
  /// not be used afterwards: the process is to exit, as if the machine died.
  std::uint64_t drop_unsynced_tail() {
    const std::uint64_t keep = std::max(durable_last_, loc_base_);
    if (active_ == nullptr || segs_.empty() || keep >= disk_last_()) return 0;
    const location at = locs_[static_cast<std::size_t>(keep - loc_base_)];
    if (at.seg_first != segs_.back().first) return 0;  // only the active segment holds unsynced records
    if (::ftruncate(active_->fd(), static_cast<off_t>(at.offset)) != 0) io_fail("cannot truncate", segs_.back().path, errno);
    broken_ = true;
    return disk_last_() - keep;
  }

  // ------------------------------------------------------------ statistics

  [[nodiscard]] std::uint64_t syncs() const noexcept { return syncs_; }
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return bytes_written_; }
  [[nodiscard]] std::uint64_t snapshots_written() const noexcept { return snapshots_written_; }
  [[nodiscard]] std::size_t segment_count() const noexcept { return segs_.size(); }
  /// Bytes in the segment files (headers and preallocated zeros included),
  /// as of the last write_out().
  [[nodiscard]] std::uint64_t segment_bytes() const noexcept {
    std::uint64_t n = 0;
    for (const auto& s : segs_) n += std::max(s.size, s.alloc);
    return n;
  }
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
  [[nodiscard]] std::string segment_path(std::size_t k) const { return segs_.at(k).path; }
  /// Path of the snapshot file on disk (empty if none was synced yet).
  [[nodiscard]] std::string snapshot_path() const { return snap_file_.empty() ? std::string() : path_(snap_file_); }

  /// File name of the segment whose first index is `first`.
  [[nodiscard]] static std::string segment_name(std::uint64_t first) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.seg", static_cast<unsigned long long>(first));
    return buf;
  }
  /// File name of the snapshot ending at (index, term).
  [[nodiscard]] static std::string snapshot_name(std::uint64_t index, std::uint64_t term) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "snap-%020llu-%020llu", static_cast<unsigned long long>(index),
                  static_cast<unsigned long long>(term));
    return buf;
  }

 private:
  struct segment {
    std::uint64_t first = 1;  // index of its first record
    std::string path;
    std::uint64_t size = 0;   // bytes of header and records (where the next record goes)
    std::uint64_t alloc = 0;  // bytes in the file: size, plus zeros written ahead (preallocation)
  };
  struct location {
    std::uint64_t seg_first = 0;  // the segment holding the record, by its first index
    std::uint64_t offset = 0;
  };

  disk_log() = default;

  void swap(disk_log& o) noexcept {
    std::swap(dir_, o.dir_);
    std::swap(opt_, o.opt_);
    std::swap(lock_fd_, o.lock_fd_);
    std::swap(dir_fd_, o.dir_fd_);
    std::swap(active_, o.active_);
    std::swap(active_dirty_, o.active_dirty_);
    std::swap(writes_, o.writes_);
    std::swap(hs_, o.hs_);
    std::swap(hs_dirty_, o.hs_dirty_);
    std::swap(snap_index_, o.snap_index_);
    std::swap(snap_term_, o.snap_term_);
    std::swap(snap_data_, o.snap_data_);
    std::swap(snap_membership_, o.snap_membership_);
    std::swap(snap_file_, o.snap_file_);
    std::swap(snap_pending_, o.snap_pending_);
    std::swap(roll_pending_, o.roll_pending_);
    std::swap(entries_, o.entries_);
    std::swap(locs_, o.locs_);
    std::swap(loc_base_, o.loc_base_);
    std::swap(segs_, o.segs_);
    std::swap(doomed_, o.doomed_);
    std::swap(obsolete_, o.obsolete_);
    std::swap(obsolete_later_, o.obsolete_later_);
    std::swap(durable_last_, o.durable_last_);
    std::swap(written_last_, o.written_last_);
    std::swap(epoch_, o.epoch_);
    std::swap(cuts_, o.cuts_);
    std::swap(cut_pending_, o.cut_pending_);
    std::swap(broken_, o.broken_);
    std::swap(syncs_, o.syncs_);
    std::swap(bytes_written_, o.bytes_written_);
    std::swap(snapshots_written_, o.snapshots_written_);
    std::swap(buf_, o.buf_);
    std::swap(next_index_, o.next_index_);
    std::swap(prev_term_, o.prev_term_);
    std::swap(term_at_snap_, o.term_at_snap_);
  }

  /// Drops the log's reference to the active segment (the descriptor closes
  /// once no flush_ticket holds it either).
  void close_active_() noexcept {
    active_.reset();
    active_dirty_ = false;  // whatever is unsynced in it: a sealed segment was synced, a doomed one does not matter
  }
  /// The log was cut at `at` (memory no longer agrees with the files after
  /// it): tickets issued before count only up to there.
  void note_cut_(std::uint64_t at) {
    ++epoch_;
    cuts_.push_back(at);
    if (cuts_.size() > 64) cuts_.pop_front();
  }
  void close_all_() noexcept {
    close_active_();
    if (dir_fd_ >= 0) ::close(dir_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    dir_fd_ = lock_fd_ = -1;
  }

  /// The first index a segment file's path names.
  [[nodiscard]] static std::uint64_t segment_first_of_(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return std::stoull(path.substr(slash == std::string::npos ? 0 : slash + 1, 20));
  }

  /// Last index whose record is on disk (written_last_ or, while a cut is
  /// pending, more).
  [[nodiscard]] std::uint64_t disk_last_() const noexcept { return loc_base_ + locs_.size(); }

  [[nodiscard]] std::string path_(const std::string& name) const { return dir_ + "/" + name; }

  [[noreturn]] static void io_fail(const std::string& what, const std::string& file, int e) {
    throw log_error("disk_log: " + what + " " + file + ": " + detail::errno_text(e));
  }
  [[noreturn]] static void corrupt(const std::string& file, std::uint64_t offset, const std::string& why) {
    throw log_error("disk_log: corrupt data in " + file + " at offset " + std::to_string(offset) + ": " + why +
                    " (refusing to start; the file was left untouched)");
  }
  void warn_(const std::string& s) const {
    if (opt_.warn) opt_.warn(s);
  }

  void fsync_fd_(int fd, const std::string& what, bool data_only) {
    if (!opt_.fsync) return;
    const int rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
    if (rc != 0) io_fail("fsync failed for", what, errno);
    ++syncs_;
  }
  void fsync_dir_() { fsync_fd_(dir_fd_, dir_, false); }

  void pwrite_all_(int fd, const unsigned char* p, std::size_t n, std::uint64_t off, const std::string& file) {
    while (n > 0) {
      const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
      if (w < 0) {
        if (errno == EINTR) continue;
        io_fail("write failed for", file, errno);
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      off += static_cast<std::uint64_t>(w);
      bytes_written_ += static_cast<std::uint64_t>(w);
    }
  }

  /// Reads up to `n` bytes at `off` into `p`; returns how many were read.
  static std::size_t pread_all_(int fd, unsigned char* p, std::size_t n, std::uint64_t off, const std::string& file) {
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd, p + got, n - got, static_cast<off_t>(off + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        io_fail("cannot read", file, errno);
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return got;
  }

  static std::vector<unsigned char> read_file_(const std::string& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) io_fail("cannot open", file, errno);
    std::vector<unsigned char> data;
    unsigned char tmp[65536];
    for (;;) {
      const ssize_t r = ::read(fd, tmp, sizeof tmp);
      if (r < 0) {
        if (errno == EINTR) continue;
        const int e = errno;
        ::close(fd);
        io_fail("cannot read", file, e);
      }
      if (r == 0) break;
      data.insert(data.end(), tmp, tmp + r);
    }
    ::close(fd);
    return data;
  }

  struct piece {
    const unsigned char* data;
    std::size_t size;
  };
  /// Writes the pieces to `name` atomically: temp file, fsync, rename, directory fsync.
  void write_atomically_(const std::string& name, std::initializer_list<piece> pieces) {
    const std::string tmp = path_(name + ".tmp");
    const std::string dst = path_(name);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) io_fail("cannot create", tmp, errno);
    try {
      std::uint64_t off = 0;
      for (const piece& p : pieces) {
        pwrite_all_(fd, p.data, p.size, off, tmp);
        off += p.size;
      }
      fsync_fd_(fd, tmp, false);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), dst.c_str()) != 0) io_fail("cannot rename into place", dst, errno);
    fsync_dir_();
  }
  void write_atomically_(const std::string& name, const unsigned char* data, std::size_t n) {
    write_atomically_(name, {piece{data, n}});
  }

  void unlink_(const std::string& file) {
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) io_fail("cannot remove", file, errno);
  }

  // ----------------------------------------------------------------- open

  void open_dir_() {
    if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) io_fail("cannot create directory", dir_, errno);
    dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) io_fail("cannot open directory", dir_, errno);
    const std::string lock = path_("LOCK");
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) io_fail("cannot open", lock, errno);
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
      throw log_error("disk_log: " + dir_ + " is in use by another process (" + lock + " is locked)");
  }

  [[nodiscard]] std::vector<std::string> list_dir_() const {
    std::vector<std::string> names;
    DIR* dp = ::opendir(dir_.c_str());
    if (dp == nullptr) io_fail("cannot list", dir_, errno);
    while (const dirent* de = ::readdir(dp)) names.emplace_back(de->d_name);
    ::closedir(dp);
    return names;
  }

  static bool all_digits(const std::string& s, std::size_t from, std::size_t n) {
    return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(from), s.begin() + static_cast<std::ptrdiff_t>(from + n),
                       [](char c) { return c >= '0' && c <= '9'; });
  }

  void load_hard_state_() {
    const std::string file = path_("hardstate");
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      if (errno == ENOENT) return;  // fresh directory (a hardstate.tmp without it: crash before the first rename)
      io_fail("cannot stat", file, errno);
    }
    const auto d = read_file_(file);
    if (d.size() != hardstate_bytes) corrupt(file, 0, "size is " + std::to_string(d.size()) + " bytes, expected " + std::to_string(hardstate_bytes));
    if (std::memcmp(d.data(), "KVHS0001", 8) != 0) corrupt(file, 0, "bad magic");
    if (detail::get_u32(d.data() + 25) != crc32c(d.data(), 25)) corrupt(file, 25, "checksum mismatch");
    if (d[16] > 1) corrupt(file, 16, "bad vote flag");
    hs_.term = raft::term_t{detail::get_u64(d.data() + 8)};
    if (d[16] == 1) hs_.vote = detail::get_u64(d.data() + 17);
  }

  void write_hard_state_() {
    unsigned char d[hardstate_bytes] = {};
    std::memcpy(d, "KVHS0001", 8);
    detail::put_u64(d + 8, hs_.term.value);
    d[16] = hs_.vote ? 1 : 0;
    detail::put_u64(d + 17, hs_.vote.value_or(0));
    detail::put_u32(d + 25, crc32c(d, 25));
    write_atomically_("hardstate", d, sizeof d);
    hs_dirty_ = false;
  }

  /// Loads the newest snapshot file, if any; removes unfinished temp files
  /// and marks older snapshot files for removal.
  void load_snapshot_() {
    struct found {
      std::uint64_t index, term;
      std::string name;
    };
    std::vector<found> snaps;
    for (const std::string& name : list_dir_()) {
      if (name.rfind("snap-", 0) != 0) continue;
      if (name.ends_with(".tmp")) {
        // A snapshot whose writing crashed before its rename: never part of the log.
        warn_("disk_log: removing unfinished snapshot file " + path_(name));
        unlink_(path_(name));
      } else if (name.size() == 46 && name[25] == '-' && all_digits(name, 5, 20) && all_digits(name, 26, 20)) {
        snaps.push_back({std::stoull(name.substr(5, 20)), std::stoull(name.substr(26, 20)), name});
      } else {
        warn_("disk_log: ignoring " + path_(name) + " (not a snapshot file name)");
      }
    }
    if (snaps.empty()) return;
    std::sort(snaps.begin(), snaps.end(),
              [](const found& a, const found& b) { return std::tie(a.index, a.term) < std::tie(b.index, b.term); });
    const found& f = snaps.back();
    const std::string file = path_(f.name);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) io_fail("cannot open", file, errno);
    struct fd_closer {
      int fd;
      ~fd_closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) io_fail("cannot stat", file, errno);
    const auto n = static_cast<std::uint64_t>(st.st_size);
    unsigned char h[snapshot_header_bytes];
    if (n < 8 || pread_all_(fd, h, 8, 0, file) != 8)
      corrupt(file, 0, "file of " + std::to_string(n) + " bytes is shorter than the snapshot header");
    const bool v1 = std::memcmp(h, "KVSNAP01", 8) == 0;
    if (!v1 && std::memcmp(h, "KVSNAP02", 8) != 0) {
      if (std::memcmp(h, "KVSNAP", 6) == 0)
        corrupt(file, 0, "unknown snapshot format " + std::string(reinterpret_cast<const char*>(h), 8) +
                             " (written by a newer kv-server?)");
      corrupt(file, 0, "bad snapshot magic");
    }
    const std::size_t hbytes = v1 ? snapshot_v1_header_bytes : snapshot_header_bytes;
    if (n < hbytes || pread_all_(fd, h, hbytes, 0, file) != hbytes)
      corrupt(file, 0, "file of " + std::to_string(n) + " bytes is shorter than the snapshot header");
    if (detail::get_u32(h + hbytes - 4) != crc32c(h, hbytes - 4))
      corrupt(file, hbytes - 4, "snapshot header checksum mismatch");
    const std::uint64_t index = detail::get_u64(h + 8), term = detail::get_u64(h + 16), size = detail::get_u64(h + 24);
    const std::uint64_t msize = v1 ? 0 : detail::get_u32(h + 36);
    if (index != f.index || term != f.term || index == 0 || term == 0)
      corrupt(file, 8, "snapshot header (index " + std::to_string(index) + ", term " + std::to_string(term) +
                           ") disagrees with the file name");
    if (msize > max_membership_bytes)
      corrupt(file, 36, "snapshot header promises an impossible membership of " + std::to_string(msize) + " bytes");
    if (size > n - hbytes || msize != n - hbytes - size)
      corrupt(file, 24, "snapshot header promises " + std::to_string(size) + " data bytes and " + std::to_string(msize) +
                            " membership bytes, the file holds " + std::to_string(n - hbytes));
    raft::bytes data = raft::bytes::for_overwrite(static_cast<std::size_t>(size));
    if (size > 0) {
      auto* dst = reinterpret_cast<unsigned char*>(data.fill_data());
      if (pread_all_(fd, dst, static_cast<std::size_t>(size), hbytes, file) != size)
        corrupt(file, hbytes, "file shrank while being read");
    }
    if (crc32c(data.data(), data.size()) != detail::get_u32(h + 32))
      corrupt(file, hbytes, "snapshot data checksum mismatch (" + std::to_string(size) + " bytes)");
    raft::bytes members;
    if (msize > 0) {
      members = raft::bytes::for_overwrite(static_cast<std::size_t>(msize));
      auto* dst = reinterpret_cast<unsigned char*>(members.fill_data());
      if (pread_all_(fd, dst, static_cast<std::size_t>(msize), hbytes + size, file) != msize)
        corrupt(file, hbytes + size, "file shrank while being read");
      if (crc32c(members.data(), members.size()) != detail::get_u32(h + 40))
        corrupt(file, hbytes + size, "snapshot membership checksum mismatch (" + std::to_string(msize) + " bytes)");
      if (!raft::decode_config_entry<raft::default_transport>(members))
        corrupt(file, hbytes + size, "snapshot membership of " + std::to_string(msize) +
                                         " bytes does not decode as a configuration");
    }
    snap_index_ = index;
    snap_term_ = raft::term_t{term};
    snap_data_ = std::move(data);
    snap_membership_ = std::move(members);
    snap_file_ = f.name;
    for (std::size_t k = 0; k + 1 < snaps.size(); ++k) obsolete_.push_back(path_(snaps[k].name));
  }

  void load_segments_() {
    std::vector<std::uint64_t> firsts;
    for (const std::string& name : list_dir_()) {
      if (name.size() == 24 && name.ends_with(".seg") && all_digits(name, 0, 20)) {
        firsts.push_back(std::stoull(name.substr(0, 20)));
      } else if (name.ends_with(".seg.tmp")) {
        // A segment whose creation crashed before its rename: never part of the log.
        warn_("disk_log: removing unfinished segment " + path_(name));
        unlink_(path_(name));
      }
    }
    std::sort(firsts.begin(), firsts.end());
    if (!firsts.empty() && firsts[0] == 0) corrupt(path_(segment_name(0)), 0, "a segment cannot start at index 0");
    const std::uint64_t s = snap_index_;
    // Segments followed by one starting at or below s + 1 hold only entries
    // the snapshot covers: left over from a crash before compaction removed them.
    std::size_t k0 = 0;
    while (k0 + 1 < firsts.size() && firsts[k0 + 1] - 1 <= s) ++k0;
    for (std::size_t k = 0; k < k0; ++k) obsolete_.push_back(path_(segment_name(firsts[k])));
    loc_base_ = s;
    next_index_ = k0 < firsts.size() ? firsts[k0] : s + 1;
    if (next_index_ == 0 || next_index_ > s + 1) {
      const std::string p = path_(segment_name(next_index_));
      corrupt(p, 0,
              "segment starts at index " + std::to_string(next_index_) + " but the log so far ends at " +
                  std::to_string(s) + (s > 0 ? " (the snapshot's index)" : "") + " (a segment is missing or misnamed)");
    }
    for (std::size_t k = k0; k < firsts.size(); ++k) {
      segment seg;
      seg.first = firsts[k];
      seg.path = path_(segment_name(firsts[k]));
      if (seg.first != next_index_)
        corrupt(seg.path, 0,
                "segment starts at index " + std::to_string(seg.first) + " but the log so far ends at " +
                    std::to_string(next_index_ - 1) + " (a segment is missing or misnamed)");
      segs_.push_back(seg);
      load_segment_(segs_.size() - 1, k + 1 == firsts.size());
    }
    if (s > 0) {
      if (term_at_snap_ && *term_at_snap_ != snap_term_.value) {
        // A crash after the snapshot file was written and before the log it
        // contradicts was removed: apply install_snapshot's rule now.
        warn_("disk_log: the log holds entry " + std::to_string(s) + " with term " + std::to_string(*term_at_snap_) +
              " but the snapshot has term " + std::to_string(snap_term_.value) + ": dropping the " +
              std::to_string(entries_.size()) + " entries after it");
        entries_.clear();
      } else if (!entries_.empty() && !term_at_snap_ && entries_.front().term < snap_term_) {
        corrupt(segs_.front().path, locs_.front().offset,
                "entry " + std::to_string(s + 1) + " has term " + std::to_string(entries_.front().term.value) +
                    ", below the snapshot's term " + std::to_string(snap_term_.value));
      }
      if (entries_.empty()) {
        // Nothing after the snapshot: every segment is obsolete, newest first.
        for (auto it = segs_.rbegin(); it != segs_.rend(); ++it) obsolete_.push_back(it->path);
        segs_.clear();
        locs_.clear();
      }
    }
    durable_last_ = written_last_ = last_index().value;
    if (!segs_.empty()) open_active_();
  }

  /// Reads segment `k` into memory. Only the last one may have a torn tail.
  void load_segment_(std::size_t k, bool last) {
    segment& s = segs_[k];
    const auto d = read_file_(s.path);
    const std::uint64_t n = d.size();
    if (n < segment_header_bytes || std::memcmp(d.data(), "KVSEG001", 8) != 0 ||
        detail::get_u32(d.data() + 16) != crc32c(d.data(), 16))
      corrupt(s.path, 0, "bad segment header");
    if (detail::get_u64(d.data() + 8) != s.first) corrupt(s.path, 8, "segment header disagrees with the file name");
    std::uint64_t off = segment_header_bytes;
    std::optional<std::string> torn;  // why the tail is torn, if it is
    // Only zeros from `from` to the end of the file.
    auto zeros_from = [&](std::uint64_t from) {
      return std::all_of(d.data() + std::min(from, n), d.data() + n, [](unsigned char c) { return c == 0; });
    };
    while (off < n) {
      const unsigned char* p = d.data() + off;
      const std::uint64_t left = n - off;
      // Zeros from a record boundary to the end: space written ahead
      // (preallocation), or never written to. The segment ends here.
      if (zeros_from(off)) break;
      if (left < record_header_bytes) {
        if (last) { torn = "incomplete record header"; break; }
        corrupt(s.path, off, "incomplete record header in a sealed segment");
      }
      const std::uint32_t len = detail::get_u32(p);
      const std::uint32_t body_crc = detail::get_u32(p + 4);
      if (detail::get_u32(p + 8) != crc32c(p, 8)) {
        // Part of a header, then only zeros: a record whose write was cut
        // short in preallocated space.
        if (last && zeros_from(off + record_header_bytes)) { torn = "record header cut short"; break; }
        corrupt(s.path, off, "record header checksum mismatch");
      }
      if (len < entry_body_fixed || len > max_record_bytes) corrupt(s.path, off, "impossible record length " + std::to_string(len));
      if (len > left - record_header_bytes) {
        if (last) { torn = "record cut short"; break; }
        corrupt(s.path, off, "record extends past the end of a sealed segment");
      }
      const unsigned char* body = p + record_header_bytes;
      if (crc32c(body, len) != body_crc) {
        // The last record, or followed by nothing but zeros (preallocated space).
        if (last && zeros_from(off + record_header_bytes + len)) { torn = "final record's checksum fails"; break; }
        corrupt(s.path, off, "record body checksum mismatch");
      }
      if (body[0] != 1 && body[0] != 2)
        corrupt(s.path, off, "unknown record type " + std::to_string(body[0]) + " (written by a newer kv-server?)");
      const bool conf_record = body[0] == 2;
      entry_type e;
      e.term = raft::term_t{detail::get_u64(body + 1)};
      e.index = raft::index_t{detail::get_u64(body + 9)};
      if (body[17] >= raft::entry_kind_count) corrupt(s.path, off, "bad entry kind");
      e.kind = static_cast<raft::entry_kind>(body[17]);
      std::size_t data_at = entry_body_fixed, data_size = len - entry_body_fixed;
      if (conf_record) {
        // A configuration entry: payload (of data_size bytes), then the conf blob.
        if (e.kind != raft::entry_kind::config) corrupt(s.path, off, "configuration record holds an entry of another kind");
        if (len < config_body_fixed) corrupt(s.path, off, "configuration record of " + std::to_string(len) + " bytes is too short");
        data_at = config_body_fixed;
        data_size = detail::get_u32(body + entry_body_fixed);
        if (data_size > len - config_body_fixed)
          corrupt(s.path, off, "configuration record promises " + std::to_string(data_size) + " payload bytes in a body of " +
                                   std::to_string(len) + " bytes");
        e.conf = raft::bytes(body + config_body_fixed + data_size, len - config_body_fixed - data_size);
        if (!raft::decode_config_entry<raft::default_transport>(e.conf))
          corrupt(s.path, off, "configuration entry " + std::to_string(e.index.value) + " holds a configuration of " +
                                   std::to_string(e.conf.size()) + " bytes that does not decode");
      } else if (e.kind == raft::entry_kind::config) {
        corrupt(s.path, off, "configuration entry " + std::to_string(e.index.value) + " stored without its configuration");
      }
      if (e.index.value != next_index_)
        corrupt(s.path, off, "entry index " + std::to_string(e.index.value) + " out of sequence (expected " +
                                 std::to_string(next_index_) + ")");
      if (e.term.value == 0 || e.term.value < prev_term_)
        corrupt(s.path, off, "entry term " + std::to_string(e.term.value) + " out of order");
      prev_term_ = e.term.value;
      ++next_index_;
      if (e.index.value == snap_index_) term_at_snap_ = e.term.value;
      if (e.index.value > snap_index_) {
        if (data_size > 0) e.data = raft::bytes(body + data_at, data_size);
        entries_.push_back(std::move(e));
        locs_.push_back(location{s.first, off});
      }
      off += record_header_bytes + len;
    }
    if (torn) {
      warn_("disk_log: " + s.path + ": torn write at offset " + std::to_string(off) + " (" + *torn + "); truncating " +
            std::to_string(n - off) + " bytes");
      const int fd = ::open(s.path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) io_fail("cannot open", s.path, errno);
      if (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
        const int e = errno;
        ::close(fd);
        io_fail("cannot truncate", s.path, e);
      }
      try {
        fsync_fd_(fd, s.path, false);
      } catch (...) {
        ::close(fd);
        throw;
      }
      ::close(fd);
    }
    s.size = off;
    s.alloc = torn ? off : n;
  }

  /// After a successful open: removes older snapshot files and segments that
  /// only held entries the snapshot covers.
  void remove_obsolete_files_() {
    if (obsolete_.empty()) return;
    for (const std::string& f : obsolete_) {
      warn_("disk_log: removing " + f + " (superseded by snapshot " + snap_file_ + ")");
      unlink_(f);
    }
    obsolete_.clear();
    fsync_dir_();
  }

  void open_active_() {
    close_active_();
    const int fd = ::open(segs_.back().path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) io_fail("cannot open", segs_.back().path, errno);
    active_ = std::make_shared<const log_file>(fd, segs_.back().path);
  }
  [[nodiscard]] int active_fd_() const noexcept { return active_->fd(); }

  /// Before the active segment stops being the last one: every record in it
  /// is made durable (only the last segment may end in a torn write), so
  /// every entry written so far is.
  void seal_active_() {
    if (active_ != nullptr && active_dirty_) fsync_fd_(active_fd_(), segs_.back().path, true);
    active_dirty_ = false;
    durable_last_ = std::max(durable_last_, disk_last_());
  }

  /// Creates segment `<first>.seg` (temp file, fsync, rename, dir fsync) and
  /// makes it the active one.
  void new_segment_(std::uint64_t first) {
    unsigned char h[segment_header_bytes];
    std::memcpy(h, "KVSEG001", 8);
    detail::put_u64(h + 8, first);
    detail::put_u32(h + 16, crc32c(h, 16));
    write_atomically_(segment_name(first), h, sizeof h);
    segs_.push_back(segment{first, path_(segment_name(first)), segment_header_bytes, segment_header_bytes});
    open_active_();
  }

  // ----------------------------------------------------------------- write

  /// Writes the snapshot file, then removes what it made obsolete.
  void write_snapshot_() {
    const std::string name = snapshot_name(snap_index_, snap_term_.value);
    if (snap_membership_.size() > max_membership_bytes)
      throw log_error("disk_log: the snapshot's membership of " + std::to_string(snap_membership_.size()) +
                      " bytes is too large");
    unsigned char h[snapshot_header_bytes];
    std::memcpy(h, "KVSNAP02", 8);
    detail::put_u64(h + 8, snap_index_);
    detail::put_u64(h + 16, snap_term_.value);
    detail::put_u64(h + 24, snap_data_.size());
    detail::put_u32(h + 32, crc32c(snap_data_.data(), snap_data_.size()));
    detail::put_u32(h + 36, static_cast<std::uint32_t>(snap_membership_.size()));
    detail::put_u32(h + 40, crc32c(snap_membership_.data(), snap_membership_.size()));
    detail::put_u32(h + 44, crc32c(h, 44));
    write_atomically_(name, {piece{h, sizeof h},
                             piece{reinterpret_cast<const unsigned char*>(snap_data_.data()), snap_data_.size()},
                             piece{reinterpret_cast<const unsigned char*>(snap_membership_.data()),
                                   snap_membership_.size()}});
    // The snapshot is durable: what it covers may go (in the order install_snapshot chose).
    // Removing a file can take milliseconds (freeing its blocks), so the
    // segments that hold only entries up to the snapshot's index, and the
    // previous snapshot file, are left to the flush of write_out()'s ticket
    // (flush_ticket::unlink; a writer thread removes them after its
    // fdatasync): no later segment can have their names, as new ones start
    // after the snapshot's index. A segment starting after it (a contradicting
    // log dropped whole) could be created again under its name: it goes now.
    // Either way newest-first order is kept when the whole log goes, as
    // segments starting after the index are the newest.
    bool removed = false;
    for (const std::string& f : doomed_) {
      if (segment_first_of_(f) > snap_index_) {
        unlink_(f);
        removed = true;
      } else {
        obsolete_later_.push_back(f);
      }
    }
    doomed_.clear();
    if (!snap_file_.empty() && snap_file_ != name) obsolete_later_.push_back(path_(snap_file_));
    snap_file_ = name;
    if (removed) fsync_dir_();
    snap_pending_ = false;
    ++snapshots_written_;
  }

  /// Cuts the disk back to entries up to written_last_.
  void cut_() {
    const std::uint64_t keep = written_last_;
    if (keep < disk_last_()) {
      const location at = locs_[static_cast<std::size_t>(keep - loc_base_)];  // where entry keep+1 starts
      close_active_();
      while (!segs_.empty() && segs_.back().first != at.seg_first) {
        unlink_(segs_.back().path);
        segs_.pop_back();
      }
      RAFT_ASSERT(!segs_.empty(), "disk_log: the segment of a record to cut is gone");
      open_active_();
      if (::ftruncate(active_fd_(), static_cast<off_t>(at.offset)) != 0) io_fail("cannot truncate", segs_.back().path, errno);
      segs_.back().size = segs_.back().alloc = at.offset;
      fsync_fd_(active_fd_(), segs_.back().path, false);
      fsync_dir_();
      locs_.resize(static_cast<std::size_t>(keep - loc_base_));
      // Earlier segments are sealed (synced), and this one was just synced whole.
      durable_last_ = keep;
    }
    cut_pending_ = false;
  }

  void write_entries_() {
    if (segs_.empty() || (roll_pending_ && segs_.back().size > segment_header_bytes)) {
      // The first entry after a snapshot starts a segment, so that the next
      // snapshot can unlink this one whole.
      if (!segs_.empty()) seal_active_();
      new_segment_(written_last_ + 1);
    }
    roll_pending_ = false;
    buf_.clear();
    std::uint64_t buf_start = segs_.back().size;
    for (std::uint64_t i = written_last_ + 1; i <= last_index().value; ++i) {
      const entry_type& e = entries_[static_cast<std::size_t>(i - snap_index_ - 1)];
      // A configuration entry is a type-2 record: payload size, payload, conf.
      const bool conf_record = e.kind == raft::entry_kind::config;
      const std::size_t len = (conf_record ? config_body_fixed + e.conf.size() : entry_body_fixed) + e.data.size();
      if (len > max_record_bytes) throw log_error("disk_log: entry " + std::to_string(i) + " is too large");
      if (!conf_record && !e.conf.empty())
        throw log_error("disk_log: entry " + std::to_string(i) + " carries a configuration but is not of kind config");
      const std::uint64_t rec = record_header_bytes + len;
      segment& s = segs_.back();
      if (s.size > segment_header_bytes && s.size + rec > opt_.segment_bytes) {
        // Seal the active segment (its records are synced), start the next.
        flush_buf_(buf_start);
        seal_active_();
        new_segment_(i);
        buf_start = segs_.back().size;
      }
      const std::size_t at = buf_.size();
      buf_.resize(at + rec);
      unsigned char* p = buf_.data() + at;
      unsigned char* body = p + record_header_bytes;
      body[0] = conf_record ? 2 : 1;
      detail::put_u64(body + 1, e.term.value);
      detail::put_u64(body + 9, e.index.value);
      body[17] = static_cast<unsigned char>(e.kind);
      std::size_t data_at = entry_body_fixed;
      if (conf_record) {
        detail::put_u32(body + entry_body_fixed, static_cast<std::uint32_t>(e.data.size()));
        data_at = config_body_fixed;
        if (!e.conf.empty()) std::memcpy(body + config_body_fixed + e.data.size(), e.conf.data(), e.conf.size());
      }
      if (!e.data.empty()) std::memcpy(body + data_at, e.data.data(), e.data.size());
      detail::put_u32(p, static_cast<std::uint32_t>(len));
      detail::put_u32(p + 4, crc32c(body, len));
      detail::put_u32(p + 8, crc32c(p, 8));
      RAFT_ASSERT(disk_last_() + 1 == i, "disk_log: record locations out of step");
      locs_.push_back(location{segs_.back().first, segs_.back().size});
      segs_.back().size += rec;
    }
    flush_buf_(buf_start);
    written_last_ = last_index().value;
    preallocate_();
  }

  /// Keeps zeros written ahead of the next record in the active segment
  /// (disk_log_options::preallocate_bytes): when less than a quarter of a
  /// chunk is left, another chunk - as large as the segment so far, from
  /// 4 KiB up to preallocate_bytes - is written after the records. Its zeros
  /// (and the new file size) become durable with the next flush; the records
  /// written over them afterwards change neither. Recovery reads zeros from
  /// a record boundary on as the end of the segment.
  void preallocate_() {
    if (opt_.preallocate_bytes == 0 || segs_.empty() || active_ == nullptr) return;
    segment& s = segs_.back();
    s.alloc = std::max(s.alloc, s.size);
    const std::uint64_t chunk = std::min(opt_.preallocate_bytes, std::max<std::uint64_t>(4096, s.size));
    if (s.alloc - s.size >= chunk / 4) return;
    std::uint64_t end = std::min((s.size + chunk + 4095) / 4096 * 4096, std::max(opt_.segment_bytes, s.size));
    if (end <= s.alloc) return;
    static const unsigned char zeros[65536] = {};
    active_dirty_ = true;
    ++writes_;
    for (std::uint64_t at = s.alloc; at < end;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof zeros, end - at));
      pwrite_all_(active_fd_(), zeros, n, at, s.path);
      at += n;
    }
    s.alloc = end;
  }

  void flush_buf_(std::uint64_t at) {
    if (buf_.empty()) return;
    active_dirty_ = true;
    ++writes_;
    pwrite_all_(active_fd_(), buf_.data(), buf_.size(), at, segs_.back().path);
    buf_.clear();
  }

  std::string dir_;
  disk_log_options opt_;
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  std::shared_ptr<const log_file> active_;  // the last segment, open for writing
  bool active_dirty_ = false;               // records were written to it since it was last known synced
  std::uint64_t writes_ = 0;                // pwrite()s of records so far (see flush_ticket)
  hard_state_type hs_{};
  bool hs_dirty_ = false;
  // The snapshot (in memory; on disk once snap_pending_ is false).
  std::uint64_t snap_index_ = 0;
  raft::term_t snap_term_{};
  raft::bytes snap_data_;
  raft::bytes snap_membership_;
  std::string snap_file_;      // name of the snapshot file on disk ("" if none)
  bool snap_pending_ = false;  // the snapshot must still be written
  bool roll_pending_ = false;  // the next entry written starts a new segment
  std::deque<entry_type> entries_;  // entries_[k] has index snap_index_ + 1 + k
  std::deque<location> locs_;       // locs_[k]: where entry loc_base_ + 1 + k is on disk
  std::uint64_t loc_base_ = 0;
  std::vector<segment> segs_;
  std::vector<std::string> doomed_;    // segment files to unlink once the pending snapshot is durable
  std::vector<std::string> obsolete_;  // open(): files to remove once everything checked out
  std::vector<std::string> obsolete_later_;  // for the next ticket to remove (see write_snapshot_)
  std::uint64_t written_last_ = 0;     // entries up to here are in the files (and in memory), or covered by the snapshot
  std::uint64_t durable_last_ = 0;     // the same, durable (fsynced); <= written_last_
  std::uint64_t epoch_ = 0;            // cuts so far: truncations below written_last_, whole-log drops
  std::deque<std::uint64_t> cuts_;     // the index each of the latest cuts kept up to (at most 64)
  bool cut_pending_ = false;
  bool broken_ = false;
  std::uint64_t syncs_ = 0;
  std::uint64_t bytes_written_ = 0;
  std::uint64_t snapshots_written_ = 0;
  std::vector<unsigned char> buf_;
  // open() only: the next index expected, the last term seen, the term of the snapshot's entry if on disk.
  std::uint64_t next_index_ = 1;
  std::uint64_t prev_term_ = 0;
  std::optional<std::uint64_t> term_at_snap_;
};

static_assert(raft::check_log<disk_log, raft::default_transport>());

}  // namespace kv
