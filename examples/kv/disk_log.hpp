// examples/kv/disk_log.hpp - a durable, checksummed Log policy for raft::node (POSIX).
//
// On-disk layout of a data directory:
//
//   LOCK                      flock()ed while a process uses the directory
//   hardstate                 term and vote, replaced atomically (see below)
//   <first-index>.seg         log segments, 20-digit zero-padded first index
//
// Segment file:  header := "KVSEG001" first_index:u64 crc32c(previous 16 bytes):u32     (20 bytes)
//                record := length:u32 body_crc:u32 header_crc:u32 body[length]
//                          header_crc = crc32c of the 8 bytes before it
//                body   := type:u8(1 = entry) term:u64 index:u64 kind:u8 data[...]
// All integers little-endian. Records never span segments; a segment is
// created (temp file, fsync, rename, directory fsync) when the active one
// would exceed `segment_bytes`, after the active one was synced. So every
// segment but the last is complete and synced, and only the last can end in
// a torn write.
//
// Write path. append(), truncate_after() and save_hard_state() only change
// memory (reads observe them at once: the whole log is kept in memory, which
// is the cache reads are served from). sync() makes them durable in the order
// that keeps every crash state valid:
//   1. hard state: write hardstate.tmp, fsync, rename over hardstate, fsync
//      the directory. First, because the node refuses a log holding a term
//      later than its hard state's.
//   2. truncation, if truncate_after() went below what is on disk: unlink the
//      later segments, ftruncate() the segment holding the cut, fsync it and
//      the directory. Overwriting never happens: the file is always a prefix
//      of valid records plus, at worst, one torn record at its end.
//   3. every entry not yet on disk, encoded into one buffer, pwrite()n to the
//      active segment (rolling over as needed), then one fdatasync() for all
//      of them: group commit.
//
// Recovery (open()). Segments are read in order and every record checked.
//  * In the last segment, a record that is cut short (fewer bytes than its
//    header, or than its verified length), a final record whose body checksum
//    fails, and a region of only zero bytes are a torn write: the file is cut
//    back to the last good record (and the caller is warned with file, offset
//    and bytes dropped). Nothing that sync() returned for can be torn.
//  * Anything else - a bad record with valid records after it, a bad record
//    in a sealed segment, a bad segment header, an index out of sequence, a
//    corrupt hardstate file - throws kv::log_error naming the file and the
//    byte offset, and changes nothing on disk. Data is never silently dropped.
//
// Snapshots (not implemented yet; the raft core has no snapshot support).
// The format is laid out for them: a snapshot would be written as
// `snap-<index>-<term>` (temp file, fsync, rename, directory fsync) and
// snapshot_index()/snapshot_term() would return its point; compaction then
// unlinks every segment whose successor starts at or below snapshot_index+1,
// and open() skips records at or below the snapshot's index in the first
// remaining segment. The in-memory vector would keep an offset (first_index_).
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
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
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
  static constexpr std::uint32_t max_record_bytes = std::uint32_t{256} << 20;
  static constexpr std::size_t hardstate_bytes = 8 + 8 + 1 + 8 + 4;

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
    l.load_segments_();
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
  [[nodiscard]] raft::index_t snapshot_index() const noexcept { return raft::index_t{}; }
  [[nodiscard]] raft::term_t snapshot_term() const noexcept { return raft::term_t{}; }
  [[nodiscard]] raft::index_t first_index() const noexcept { return raft::index_t{1}; }
  [[nodiscard]] raft::index_t last_index() const noexcept { return raft::index_t{entries_.size()}; }
  [[nodiscard]] raft::term_t term_at(raft::index_t i) const {
    if (i.value == 0) return raft::term_t{};
    return entry_at(i).term;
  }
  [[nodiscard]] const entry_type& entry_at(raft::index_t i) const {
    RAFT_ASSERT(i.value >= 1 && i.value <= entries_.size(), "disk_log::entry_at: index out of range");
    return entries_[static_cast<std::size_t>(i.value - 1)];
  }
  void append(entry_type&& e) {
    RAFT_ASSERT(e.index == last_index().next(), "disk_log::append: entry index is not last_index + 1");
    entries_.push_back(std::move(e));
  }
  void truncate_after(raft::index_t i) {
    RAFT_ASSERT(i.value <= entries_.size(), "disk_log::truncate_after: index out of range");
    entries_.resize(static_cast<std::size_t>(i.value));
    if (i.value < durable_last_) {
      durable_last_ = i.value;  // entries after it must be cut from disk first
      cut_pending_ = true;
    }
  }

  // --------------------------------------------------------------- snapshots
  //
  // Not implemented yet (see "Snapshots" at the top of this file). These two
  // members exist so that disk_log keeps satisfying raft::log_store once the
  // core's snapshot API (raft::snapshot, Log::install_snapshot and
  // Log::snapshot_data) lands; templated so that they compile against a core
  // that does not have raft::snapshot yet. kv-server never compacts, so no
  // leader ever has to send it a snapshot and install_snapshot is never
  // called in practice; if it were, it refuses loudly instead of pretending.

  /// The stored snapshot's data: none yet.
  [[nodiscard]] raft::bytes snapshot_data() const { return {}; }
  template <class Snapshot>
  void install_snapshot(const Snapshot&) {
    throw log_error("disk_log: install_snapshot is not supported yet (snapshot files are future work)");
  }

  // ------------------------------------------------------------- durability

  /// True if something is written in memory but not yet durable.
  [[nodiscard]] bool dirty() const noexcept { return hs_dirty_ || cut_pending_ || durable_last_ < entries_.size(); }

  /// Makes every write so far durable (see the top of this file). Throws
  /// log_error on an I/O error, after which the log refuses further use.
  void sync() {
    if (broken_) throw log_error("disk_log: an earlier I/O error made the log unusable");
    if (!dirty()) return;
    try {
      if (hs_dirty_) write_hard_state_();
      if (cut_pending_) cut_();
      if (durable_last_ < entries_.size()) write_entries_();
    } catch (...) {
      broken_ = true;
      throw;
    }
  }

  // ------------------------------------------------------------ statistics

  [[nodiscard]] std::uint64_t syncs() const noexcept { return syncs_; }
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return bytes_written_; }
  [[nodiscard]] std::size_t segment_count() const noexcept { return segs_.size(); }
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
  [[nodiscard]] std::string segment_path(std::size_t k) const { return segs_.at(k).path; }

  /// File name of the segment whose first index is `first`.
  [[nodiscard]] static std::string segment_name(std::uint64_t first) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.seg", static_cast<unsigned long long>(first));
    return buf;
  }

 private:
  struct segment {
    std::uint64_t first = 1;  // index of its first record
    std::string path;
    std::uint64_t size = 0;  // bytes, header included
  };
  struct location {
    std::uint32_t seg = 0;
    std::uint64_t offset = 0;
  };

  disk_log() = default;

  void swap(disk_log& o) noexcept {
    std::swap(dir_, o.dir_);
    std::swap(opt_, o.opt_);
    std::swap(lock_fd_, o.lock_fd_);
    std::swap(dir_fd_, o.dir_fd_);
    std::swap(active_fd_, o.active_fd_);
    std::swap(hs_, o.hs_);
    std::swap(hs_dirty_, o.hs_dirty_);
    std::swap(entries_, o.entries_);
    std::swap(locs_, o.locs_);
    std::swap(segs_, o.segs_);
    std::swap(durable_last_, o.durable_last_);
    std::swap(cut_pending_, o.cut_pending_);
    std::swap(broken_, o.broken_);
    std::swap(syncs_, o.syncs_);
    std::swap(bytes_written_, o.bytes_written_);
    std::swap(buf_, o.buf_);
  }

  void close_all_() noexcept {
    if (active_fd_ >= 0) ::close(active_fd_);
    if (dir_fd_ >= 0) ::close(dir_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    active_fd_ = dir_fd_ = lock_fd_ = -1;
  }

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

  /// Writes `data` to `name` atomically: temp file, fsync, rename, directory fsync.
  void write_atomically_(const std::string& name, const unsigned char* data, std::size_t n) {
    const std::string tmp = path_(name + ".tmp");
    const std::string dst = path_(name);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) io_fail("cannot create", tmp, errno);
    try {
      pwrite_all_(fd, data, n, 0, tmp);
      fsync_fd_(fd, tmp, false);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), dst.c_str()) != 0) io_fail("cannot rename into place", dst, errno);
    fsync_dir_();
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

  void load_segments_() {
    std::vector<std::uint64_t> firsts;
    DIR* dp = ::opendir(dir_.c_str());
    if (dp == nullptr) io_fail("cannot list", dir_, errno);
    while (const dirent* de = ::readdir(dp)) {
      const std::string name = de->d_name;
      if (name.size() == 24 && name.ends_with(".seg") &&
          std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; })) {
        firsts.push_back(std::stoull(name.substr(0, 20)));
      } else if (name.ends_with(".seg.tmp")) {
        // A segment whose creation crashed before its rename: never part of the log.
        warn_("disk_log: removing unfinished segment " + path_(name));
        ::unlink(path_(name).c_str());
      }
    }
    ::closedir(dp);
    std::sort(firsts.begin(), firsts.end());
    for (std::size_t k = 0; k < firsts.size(); ++k) {
      const bool last = k + 1 == firsts.size();
      segment s;
      s.first = firsts[k];
      s.path = path_(segment_name(firsts[k]));
      if (s.first != entries_.size() + 1)
        corrupt(s.path, 0,
                "segment starts at index " + std::to_string(s.first) + " but the log so far ends at " +
                    std::to_string(entries_.size()) + " (a segment is missing or misnamed)");
      segs_.push_back(s);
      load_segment_(segs_.size() - 1, last);
    }
    durable_last_ = entries_.size();
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
    while (off < n) {
      const unsigned char* p = d.data() + off;
      const std::uint64_t left = n - off;
      auto zeros_to_end = [&] { return std::all_of(p, d.data() + n, [](unsigned char c) { return c == 0; }); };
      if (left < record_header_bytes) {
        if (last) { torn = "incomplete record header"; break; }
        corrupt(s.path, off, "incomplete record header in a sealed segment");
      }
      const std::uint32_t len = detail::get_u32(p);
      const std::uint32_t body_crc = detail::get_u32(p + 4);
      if (detail::get_u32(p + 8) != crc32c(p, 8)) {
        if (last && zeros_to_end()) { torn = "zero-filled tail"; break; }
        corrupt(s.path, off, "record header checksum mismatch");
      }
      if (len < entry_body_fixed || len > max_record_bytes) corrupt(s.path, off, "impossible record length " + std::to_string(len));
      if (len > left - record_header_bytes) {
        if (last) { torn = "record cut short"; break; }
        corrupt(s.path, off, "record extends past the end of a sealed segment");
      }
      const unsigned char* body = p + record_header_bytes;
      if (crc32c(body, len) != body_crc) {
        if (last && off + record_header_bytes + len == n) { torn = "final record's checksum fails"; break; }
        corrupt(s.path, off, "record body checksum mismatch");
      }
      if (body[0] != 1) corrupt(s.path, off, "unknown record type " + std::to_string(body[0]));
      entry_type e;
      e.term = raft::term_t{detail::get_u64(body + 1)};
      e.index = raft::index_t{detail::get_u64(body + 9)};
      if (body[17] >= raft::entry_kind_count) corrupt(s.path, off, "bad entry kind");
      e.kind = static_cast<raft::entry_kind>(body[17]);
      if (e.index.value != entries_.size() + 1)
        corrupt(s.path, off, "entry index " + std::to_string(e.index.value) + " out of sequence (expected " +
                                 std::to_string(entries_.size() + 1) + ")");
      if (e.term.value == 0 || (!entries_.empty() && e.term < entries_.back().term))
        corrupt(s.path, off, "entry term " + std::to_string(e.term.value) + " out of order");
      if (len > entry_body_fixed) e.data = raft::bytes(body + entry_body_fixed, len - entry_body_fixed);
      entries_.push_back(std::move(e));
      locs_.push_back(location{static_cast<std::uint32_t>(k), off});
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
  }

  void open_active_() {
    if (active_fd_ >= 0) ::close(active_fd_);
    active_fd_ = ::open(segs_.back().path.c_str(), O_WRONLY | O_CLOEXEC);
    if (active_fd_ < 0) io_fail("cannot open", segs_.back().path, errno);
  }

  /// Creates segment `<first>.seg` (temp file, fsync, rename, dir fsync) and
  /// makes it the active one.
  void new_segment_(std::uint64_t first) {
    unsigned char h[segment_header_bytes];
    std::memcpy(h, "KVSEG001", 8);
    detail::put_u64(h + 8, first);
    detail::put_u32(h + 16, crc32c(h, 16));
    write_atomically_(segment_name(first), h, sizeof h);
    segs_.push_back(segment{first, path_(segment_name(first)), segment_header_bytes});
    open_active_();
  }

  // ----------------------------------------------------------------- write

  /// Cuts the disk back to entries [1, durable_last_].
  void cut_() {
    const std::uint64_t keep = durable_last_;
    if (keep < locs_.size()) {
      const location at = locs_[static_cast<std::size_t>(keep)];  // where entry keep+1 starts
      if (active_fd_ >= 0) {
        ::close(active_fd_);
        active_fd_ = -1;
      }
      while (segs_.size() > at.seg + 1) {
        if (::unlink(segs_.back().path.c_str()) != 0) io_fail("cannot remove", segs_.back().path, errno);
        segs_.pop_back();
      }
      open_active_();
      if (::ftruncate(active_fd_, static_cast<off_t>(at.offset)) != 0) io_fail("cannot truncate", segs_.back().path, errno);
      segs_.back().size = at.offset;
      fsync_fd_(active_fd_, segs_.back().path, false);
      fsync_dir_();
      locs_.resize(static_cast<std::size_t>(keep));
    }
    cut_pending_ = false;
  }

  void write_entries_() {
    if (segs_.empty()) new_segment_(durable_last_ + 1);
    buf_.clear();
    std::uint64_t buf_start = segs_.back().size;
    for (std::uint64_t i = durable_last_ + 1; i <= entries_.size(); ++i) {
      const entry_type& e = entries_[static_cast<std::size_t>(i - 1)];
      const std::size_t len = entry_body_fixed + e.data.size();
      if (len > max_record_bytes) throw log_error("disk_log: entry " + std::to_string(i) + " is too large");
      const std::uint64_t rec = record_header_bytes + len;
      segment& s = segs_.back();
      if (s.size > segment_header_bytes && s.size + rec > opt_.segment_bytes) {
        // Seal the active segment (its records are synced), start the next.
        flush_buf_(buf_start);
        fsync_fd_(active_fd_, s.path, true);
        new_segment_(i);
        buf_start = segs_.back().size;
      }
      const std::size_t at = buf_.size();
      buf_.resize(at + rec);
      unsigned char* p = buf_.data() + at;
      unsigned char* body = p + record_header_bytes;
      body[0] = 1;
      detail::put_u64(body + 1, e.term.value);
      detail::put_u64(body + 9, e.index.value);
      body[17] = static_cast<unsigned char>(e.kind);
      if (!e.data.empty()) std::memcpy(body + entry_body_fixed, e.data.data(), e.data.size());
      detail::put_u32(p, static_cast<std::uint32_t>(len));
      detail::put_u32(p + 4, crc32c(body, len));
      detail::put_u32(p + 8, crc32c(p, 8));
      locs_.push_back(location{static_cast<std::uint32_t>(segs_.size() - 1), segs_.back().size});
      segs_.back().size += rec;
    }
    flush_buf_(buf_start);
    fsync_fd_(active_fd_, segs_.back().path, true);
    durable_last_ = entries_.size();
  }

  void flush_buf_(std::uint64_t at) {
    if (buf_.empty()) return;
    pwrite_all_(active_fd_, buf_.data(), buf_.size(), at, segs_.back().path);
    buf_.clear();
  }

  std::string dir_;
  disk_log_options opt_;
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  int active_fd_ = -1;
  hard_state_type hs_{};
  bool hs_dirty_ = false;
  std::vector<entry_type> entries_;  // entries_[k] has index k + 1
  std::vector<location> locs_;       // where entries 1..locs_.size() are on disk
  std::vector<segment> segs_;
  std::uint64_t durable_last_ = 0;   // entries 1..durable_last_ are on disk (and in memory)
  bool cut_pending_ = false;
  bool broken_ = false;
  std::uint64_t syncs_ = 0;
  std::uint64_t bytes_written_ = 0;
  std::vector<unsigned char> buf_;
};

static_assert(raft::check_log<disk_log, raft::default_transport>());

}  // namespace kv
