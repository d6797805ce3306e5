// tests/kv/test_disk_log.cpp - kv::disk_log: round trips, group commit,
// truncation, and recovery from deliberately damaged files.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "crc32c.hpp"
#include "disk_log.hpp"

namespace fs = std::filesystem;
using kv::disk_log;
using raft::index_t;
using raft::term_t;
using entry = disk_log::entry_type;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "kv-disklog-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t + "/data";
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(fs::path(path).parent_path(), ec);
  }
};

std::vector<unsigned char> slurp(const std::string& f) {
  std::ifstream in(f, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void spit(const std::string& f, const std::vector<unsigned char>& d) {
  std::ofstream out(f, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}

std::string payload_for(std::uint64_t i) { return std::string(static_cast<std::size_t>(i % 37), static_cast<char>('a' + i % 26)); }

entry make_entry(std::uint64_t i, std::uint64_t term = 1) {
  entry e;
  e.term = term_t{term};
  e.index = index_t{i};
  if (i % 10 == 3) e.kind = raft::entry_kind::noop;
  else e.data = raft::bytes(payload_for(i));
  return e;
}

struct warnings {
  std::vector<std::string> seen;
  kv::disk_log_options opts(std::uint64_t segment_bytes = std::uint64_t{64} << 20) {
    kv::disk_log_options o;
    o.segment_bytes = segment_bytes;
    o.warn = [this](const std::string& s) { seen.push_back(s); };
    return o;
  }
};

/// Writes entries 1..n (term 1) and syncs; without preallocation, so that a
/// segment file ends at its last record (the damage tests edit the bytes).
void fill(const std::string& dir, std::uint64_t n, std::uint64_t segment_bytes = std::uint64_t{64} << 20) {
  kv::disk_log_options o;
  o.segment_bytes = segment_bytes;
  o.preallocate_bytes = 0;
  auto l = disk_log::open(dir, o);
  for (std::uint64_t i = l.last_index().value + 1; i <= n; ++i) l.append(make_entry(i));
  l.sync();
}

/// Offset of record `i` (1-based) in a single-segment log written by fill().
std::uint64_t record_offset(std::uint64_t i) {
  std::uint64_t off = disk_log::segment_header_bytes;
  for (std::uint64_t k = 1; k < i; ++k)
    off += disk_log::record_header_bytes + disk_log::entry_body_fixed + make_entry(k).data.size();
  return off;
}

void check_entries(const disk_log& l, std::uint64_t n) {
  REQUIRE(l.last_index() == index_t{n});
  for (std::uint64_t i = 1; i <= n; ++i) {
    INFO("index " << i);
    REQUIRE(l.entry_at(index_t{i}) == make_entry(i));
  }
}

std::string seg0(const std::string& dir) { return dir + "/" + disk_log::segment_name(1); }

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

/// The caller's side of the durability contract for a disk_log node: sync
/// what the output names, report it (which may release more work), repeat.
template <class Node>
void sync_and_report(Node& n, typename Node::output_type& out) {
  while (out.persist && out.persist->seq > n.durable_write()) {
    const raft::log_write w = *out.persist;
    n.log().sync();
    REQUIRE(n.persisted(w, out) == raft::persist_status::ok);
  }
}

TEST_CASE("crc32c matches the published check values", "[kv][crc]") {
  CHECK(kv::crc32c(std::string_view("123456789")) == 0xE3069283u);
  CHECK(kv::crc32c(std::string_view("")) == 0u);
  const std::vector<unsigned char> zeros(32, 0), ones(32, 0xff);
  CHECK(kv::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);  // RFC 3720 B.4
  CHECK(kv::crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  std::vector<unsigned char> inc(32);
  for (unsigned i = 0; i < 32; ++i) inc[i] = static_cast<unsigned char>(i);
  CHECK(kv::crc32c(inc.data(), inc.size()) == 0x46DD794Eu);
  // Extending in pieces equals one pass, at every split point (covers the 8-byte loop and the tail).
  const std::string s = "The quick brown fox jumps over the lazy dog, twice over.";
  for (std::size_t k = 0; k <= s.size(); ++k)
    CHECK(kv::crc32c_extend(kv::crc32c(s.data(), k), s.data() + k, s.size() - k) == kv::crc32c(std::string_view(s)));
}

TEST_CASE("disk_log: a fresh directory is an empty log", "[kv][disk_log]") {
  temp_dir d;
  auto l = disk_log::open(d.path);
  CHECK(l.last_index() == index_t{0});
  CHECK(l.first_index() == index_t{1});
  CHECK(l.term_at(index_t{0}) == term_t{0});
  CHECK(l.hard_state() == raft::hard_state<std::uint64_t>{});
  CHECK_FALSE(l.dirty());
}

TEST_CASE("disk_log: entries and hard state survive reopening", "[kv][disk_log]") {
  temp_dir d;
  {
    auto l = disk_log::open(d.path);
    for (std::uint64_t i = 1; i <= 100; ++i) l.append(make_entry(i));
    l.save_hard_state({term_t{7}, 3});
    CHECK(l.dirty());
    l.sync();
    CHECK_FALSE(l.dirty());
  }
  auto l = disk_log::open(d.path);
  check_entries(l, 100);
  CHECK(l.hard_state().term == term_t{7});
  CHECK(l.hard_state().vote == std::optional<std::uint64_t>{3});
  // A vote can be cleared again.
  l.save_hard_state({term_t{8}, std::nullopt});
  l.sync();
  auto l2 = std::move(l);  // moving keeps the lock and files
  CHECK(l2.hard_state().term == term_t{8});
  l2.append(make_entry(101));
  l2.sync();
}

TEST_CASE("disk_log: reads see unsynced writes; a crash before sync loses them", "[kv][disk_log]") {
  temp_dir d;
  fill(d.path, 5);
  {
    auto l = disk_log::open(d.path);
    l.append(make_entry(6));
    l.save_hard_state({term_t{2}, 1});
    CHECK(l.last_index() == index_t{6});
    CHECK(l.entry_at(index_t{6}) == make_entry(6));
    CHECK(l.hard_state().term == term_t{2});
    // destroyed without sync(): as if the process died
  }
  auto l = disk_log::open(d.path);
  check_entries(l, 5);
  CHECK(l.hard_state().term == term_t{0});
}

TEST_CASE("disk_log: group commit - many entries, one data sync", "[kv][disk_log]") {
  temp_dir d;
  auto l = disk_log::open(d.path);
  l.append(make_entry(1));
  l.sync();
  const auto before = l.syncs();
  for (std::uint64_t i = 2; i <= 1001; ++i) l.append(make_entry(i));
  l.sync();
  CHECK(l.syncs() - before == 1);
  l.sync();  // nothing dirty: no sync at all
  CHECK(l.syncs() - before == 1);
}

TEST_CASE("disk_log: segments roll over and reload", "[kv][disk_log]") {
  temp_dir d;
  fill(d.path, 300, 1024);
  {
    auto l = disk_log::open(d.path);
    CHECK(l.segment_count() > 5);
    check_entries(l, 300);
    for (std::uint64_t i = 301; i <= 320; ++i) l.append(make_entry(i));
    l.sync();
  }
  check_entries(disk_log::open(d.path), 320);
}

TEST_CASE("disk_log: truncate_after cuts the disk, also across segments", "[kv][disk_log]") {
  temp_dir d;
  fill(d.path, 200, 1024);
  const kv::disk_log_options small{1024, true, {}, std::uint64_t{1} << 20};
  {
    auto l = disk_log::open(d.path, small);
    const std::size_t segs_before = l.segment_count();
    l.truncate_after(index_t{10});  // into the first segment
    CHECK(l.last_index() == index_t{10});
    for (std::uint64_t i = 11; i <= 15; ++i) l.append(make_entry(i, 2));
    l.sync();
    CHECK(l.segment_count() < segs_before);
  }
  {
    auto l = disk_log::open(d.path, small);
    REQUIRE(l.last_index() == index_t{15});
    for (std::uint64_t i = 1; i <= 10; ++i) CHECK(l.entry_at(index_t{i}) == make_entry(i));
    for (std::uint64_t i = 11; i <= 15; ++i) CHECK(l.entry_at(index_t{i}) == make_entry(i, 2));
    // Truncating entries that never reached the disk needs no cut.
    for (std::uint64_t i = 16; i <= 20; ++i) l.append(make_entry(i, 2));
    l.truncate_after(index_t{17});
    l.sync();
  }
  {
    auto l = disk_log::open(d.path, small);
    CHECK(l.last_index() == index_t{17});
    CHECK(l.entry_at(index_t{17}) == make_entry(17, 2));
    l.truncate_after(index_t{0});  // to empty
    l.sync();
  }
  CHECK(disk_log::open(d.path).last_index() == index_t{0});
}

TEST_CASE("disk_log: a torn last record is truncated on restart", "[kv][disk_log][damaged]") {
  const std::uint64_t n = 20;
  const std::uint64_t last_off = record_offset(n);
  const std::uint64_t last_len = disk_log::record_header_bytes + disk_log::entry_body_fixed + make_entry(n).data.size();
  const std::uint64_t cut = GENERATE_COPY(1u, 3u, last_len - disk_log::record_header_bytes, last_len - 11, last_len - 12,
                                         last_len - 1);
  CAPTURE(cut);
  temp_dir d;
  fill(d.path, n);
  const auto full = slurp(seg0(d.path));
  REQUIRE(full.size() == last_off + last_len);
  auto torn = full;
  torn.resize(static_cast<std::size_t>(last_off + last_len - cut));
  spit(seg0(d.path), torn);
  warnings w;
  {
    auto l = disk_log::open(d.path, w.opts());
    check_entries(l, n - 1);
    REQUIRE(w.seen.size() == 1);
    CHECK(contains(w.seen[0], seg0(d.path)));
    CHECK(contains(w.seen[0], "offset " + std::to_string(last_off)));
    CHECK(fs::file_size(seg0(d.path)) == last_off);
    // Writing continues where the good records end.
    l.append(make_entry(n));
    l.sync();
  }
  check_entries(disk_log::open(d.path), n);
  // The same records again (then the zeros written ahead of the next ones).
  auto after = slurp(seg0(d.path));
  CHECK(std::all_of(after.begin() + static_cast<std::ptrdiff_t>(std::min(after.size(), full.size())), after.end(),
                    [](unsigned char c) { return c == 0; }));
  after.resize(full.size());
  CHECK(after == full);
}

TEST_CASE("disk_log: garbage after the last record is a torn write", "[kv][disk_log][damaged]") {
  temp_dir d;
  fill(d.path, 10);
  const auto good = slurp(seg0(d.path));
  SECTION("a few bytes of a header") {
    auto f = good;
    for (unsigned char c : {0x17, 0x00, 0x00, 0x00, 0xde}) f.push_back(c);
    spit(seg0(d.path), f);
  }
  SECTION("a whole header promising more bytes than follow") {
    auto f = good;
    unsigned char h[12];
    kv::detail::put_u32(h, 1000);
    kv::detail::put_u32(h + 4, 0x12345678);
    kv::detail::put_u32(h + 8, kv::crc32c(h, 8));
    f.insert(f.end(), h, h + 12);
    f.resize(f.size() + 100, 0x55);
    spit(seg0(d.path), f);
  }
  SECTION("a final record whose body checksum fails") {
    auto f = good;
    f.back() ^= 0x01;
    spit(seg0(d.path), f);
  }
  SECTION("a final record cut short in preallocated space: part of it, then zeros") {
    auto f = good;
    f.resize(record_offset(10) + 20);  // its header and 8 bytes of its body
    f.resize(good.size() + 4096, 0);
    spit(seg0(d.path), f);
  }
  SECTION("part of a header in preallocated space, then zeros") {
    auto f = good;
    f.resize(f.size() + 4096, 0);
    f[good.size()] = 0x17;
    f[good.size() + 1] = 0x2a;
    spit(seg0(d.path), f);
  }
  warnings w;
  auto l = disk_log::open(d.path, w.opts());
  REQUIRE(w.seen.size() == 1);
  CHECK(contains(w.seen[0], "torn"));
  if (l.last_index() == index_t{10}) {
    CHECK(slurp(seg0(d.path)) == good);
  } else {
    // Only the flipped final record may go.
    check_entries(l, 9);
    CHECK(fs::file_size(seg0(d.path)) == record_offset(10));
  }
}

TEST_CASE("disk_log: zeros after the last record are preallocated space: kept, no warning", "[kv][disk_log]") {
  temp_dir d;
  fill(d.path, 10);
  auto f = slurp(seg0(d.path));
  const std::size_t records_end = f.size();
  f.resize(records_end + 4096, 0);  // also what a file that grew but whose data never got written looks like
  spit(seg0(d.path), f);
  {
    warnings w;
    auto l = disk_log::open(d.path, w.opts());
    CHECK(w.seen.empty());
    check_entries(l, 10);
    CHECK(fs::file_size(seg0(d.path)) == records_end + 4096);
    l.append(make_entry(11));  // written over the zeros
    l.sync();
  }
  check_entries(disk_log::open(d.path), 11);
}

TEST_CASE("disk_log: the active segment is zero-filled ahead of its records, sealed ones keep their zeros",
          "[kv][disk_log]") {
  temp_dir d;
  kv::disk_log_options o;
  o.segment_bytes = 64 * 1024;
  o.preallocate_bytes = 16 * 1024;
  std::uint64_t n = 0;
  {
    auto l = disk_log::open(d.path, o);
    for (n = 1; l.segment_count() < 3; ++n) {
      l.append(make_entry(n));
      if (n % 7 == 0) l.sync();
    }
    l.sync();
    --n;
    const auto size = fs::file_size(l.segment_path(2));
    CHECK(size > l.segment_bytes() - fs::file_size(l.segment_path(0)) - fs::file_size(l.segment_path(1)) - 1);
    CHECK(size % 4096 == 0);  // zeros up to a 4 KiB boundary past the records
    CHECK(fs::file_size(l.segment_path(0)) <= o.segment_bytes);
    // A record boundary followed by zeros in a sealed segment is its end, too.
    const auto seg1 = slurp(l.segment_path(1));
    CHECK(seg1.back() == 0);
  }
  warnings w;
  auto l = disk_log::open(d.path, w.opts(64 * 1024));
  CHECK(w.seen.empty());
  check_entries(l, n);
}

TEST_CASE("disk_log: corruption before the tail refuses to start, naming file and offset", "[kv][disk_log][damaged]") {
  temp_dir d;
  fill(d.path, 20);
  const auto good = slurp(seg0(d.path));
  auto bad = good;
  std::uint64_t where = 0;
  std::string why;
  SECTION("a flipped bit in a record body") {
    where = record_offset(7);
    bad[static_cast<std::size_t>(where + disk_log::record_header_bytes + 3)] ^= 0x10;
    why = "body checksum";
  }
  SECTION("a damaged record length") {
    where = record_offset(7);
    bad[static_cast<std::size_t>(where)] ^= 0x40;
    why = "header checksum";
  }
  SECTION("zeros in the middle, valid records after") {
    where = record_offset(5);
    for (std::uint64_t k = where; k < record_offset(8); ++k) bad[static_cast<std::size_t>(k)] = 0;
    why = "header checksum";
  }
  SECTION("a damaged segment header") {
    bad[9] ^= 0x01;
    where = 0;
    why = "segment header";
  }
  spit(seg0(d.path), bad);
  try {
    (void)disk_log::open(d.path);
    FAIL("open() accepted a corrupt log");
  } catch (const kv::log_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(contains(msg, seg0(d.path)));
    CHECK(contains(msg, "offset " + std::to_string(where)));
    CHECK(contains(msg, why));
  }
  CHECK(slurp(seg0(d.path)) == bad);  // untouched
}

TEST_CASE("disk_log: a damaged record at the end of a sealed segment is corruption, not a torn tail",
          "[kv][disk_log][damaged]") {
  temp_dir d;
  fill(d.path, 200, 1024);
  std::string first_seg;
  {
    auto l = disk_log::open(d.path);
    REQUIRE(l.segment_count() > 2);
    first_seg = l.segment_path(0);
  }
  auto f = slurp(first_seg);
  f.back() ^= 0x01;
  spit(first_seg, f);
  try {
    (void)disk_log::open(d.path);
    FAIL("open() accepted a corrupt sealed segment");
  } catch (const kv::log_error& e) {
    CHECK(contains(e.what(), first_seg));
    CHECK(contains(e.what(), "checksum"));
  }
}

TEST_CASE("disk_log: a missing segment refuses to start", "[kv][disk_log][damaged]") {
  temp_dir d;
  fill(d.path, 200, 1024);
  std::string second;
  {
    auto l = disk_log::open(d.path);
    REQUIRE(l.segment_count() > 2);
    second = l.segment_path(1);
  }
  fs::remove(second);
  try {
    (void)disk_log::open(d.path);
    FAIL("open() accepted a log with a hole");
  } catch (const kv::log_error& e) {
    CHECK(contains(e.what(), "missing"));
  }
}

TEST_CASE("disk_log: hard state files", "[kv][disk_log][damaged]") {
  temp_dir d;
  {
    auto l = disk_log::open(d.path);
    l.save_hard_state({term_t{5}, 2});
    l.sync();
  }
  const std::string hs = d.path + "/hardstate";
  SECTION("a leftover temp file from a crash mid-write is ignored") {
    spit(hs + ".tmp", {1, 2, 3});
    {
      auto l = disk_log::open(d.path);
      CHECK(l.hard_state().term == term_t{5});
      CHECK(l.hard_state().vote == std::optional<std::uint64_t>{2});
      l.save_hard_state({term_t{6}, 1});
      l.sync();  // replaces the stale temp file
    }
    CHECK(disk_log::open(d.path).hard_state().term == term_t{6});
  }
  SECTION("a corrupt hardstate refuses to start") {
    auto f = slurp(hs);
    f[9] ^= 0x01;
    spit(hs, f);
    try {
      (void)disk_log::open(d.path);
      FAIL("open() accepted a corrupt hard state");
    } catch (const kv::log_error& e) {
      CHECK(contains(e.what(), hs));
      CHECK(contains(e.what(), "checksum"));
    }
  }
  SECTION("a truncated hardstate refuses to start") {
    auto f = slurp(hs);
    f.resize(10);
    spit(hs, f);
    CHECK_THROWS_AS(disk_log::open(d.path), kv::log_error);
  }
}

TEST_CASE("disk_log: one process per directory", "[kv][disk_log]") {
  temp_dir d;
  auto l = disk_log::open(d.path);
  try {
    (void)disk_log::open(d.path);
    FAIL("opened a directory twice");
  } catch (const kv::log_error& e) {
    CHECK(contains(e.what(), "in use"));
  }
}

TEST_CASE("disk_log: drives a raft::node across restarts", "[kv][disk_log][node]") {
  using node = raft::node<raft::default_transport, disk_log>;
  temp_dir d;
  raft::config<std::uint64_t> cfg{.id = 1, .voters = {1}, .election_ticks = 10, .heartbeat_ticks = 1};
  node::output_type out;
  std::vector<node::entry_type> applied;
  {
    node n(cfg, disk_log::open(d.path));
    n.campaign(out);
    sync_and_report(n, out);  // the candidate's own vote counts once durable
    REQUIRE(n.is_leader());
    for (int i = 0; i < 50; ++i) (void)n.propose(raft::bytes("cmd" + std::to_string(i)), out);
    REQUIRE(out.persist);
    sync_and_report(n, out);  // the leader commits what it reported durable
    applied = out.committed;
    out.clear();
    CHECK(applied.size() == 51);  // the leader's noop, then the commands
  }
  node n(cfg, disk_log::open(d.path));
  CHECK(n.term() == term_t{1});
  CHECK(n.voted_for() == std::optional<std::uint64_t>{1});
  CHECK(n.last_index() == index_t{51});
  n.campaign(out);
  sync_and_report(n, out);
  REQUIRE(n.is_leader());
  // Re-elected in term 2: everything is committed again and re-applied in order.
  REQUIRE(out.committed.size() == 52);
  for (std::size_t i = 0; i < 51; ++i) CHECK(out.committed[i] == applied[i]);
  CHECK(out.committed[51].term == term_t{2});
}

// ------------------------------------------------------------------ snapshots

namespace {

raft::snapshot snap_at(std::uint64_t index, std::uint64_t term, const std::string& data = "") {
  return raft::snapshot{index_t{index}, term_t{term}, raft::bytes(data.empty() ? "state@" + std::to_string(index) : data)};
}

/// Names of the files in `dir` ending in `suffix`, sorted.
std::vector<std::string> files_ending(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.ends_with(suffix)) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}
std::vector<std::string> snapshot_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("snap-", 0) == 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}
std::uint64_t seg_first(const std::string& name) { return std::stoull(name.substr(0, 20)); }

void check_range(const disk_log& l, std::uint64_t from, std::uint64_t to, std::uint64_t term = 1) {
  REQUIRE(l.first_index() == index_t{from});
  REQUIRE(l.last_index() == index_t{to});
  for (std::uint64_t i = from; i <= to; ++i) {
    INFO("index " << i);
    REQUIRE(l.entry_at(index_t{i}) == make_entry(i, term));
  }
}

/// Copies of every segment file, to put back later (a crash before compaction unlinked them).
std::vector<std::pair<std::string, std::vector<unsigned char>>> save_segments(const std::string& dir) {
  std::vector<std::pair<std::string, std::vector<unsigned char>>> out;
  for (const auto& n : files_ending(dir, ".seg")) out.emplace_back(n, slurp(dir + "/" + n));
  return out;
}

}  // namespace

TEST_CASE("disk_log: install_snapshot keeps the suffix when the entry at its index has its term", "[kv][disk_log][snapshot]") {
  temp_dir d;
  fill(d.path, 300, 1024);
  const kv::disk_log_options small{1024, true, {}, std::uint64_t{1} << 20};
  const auto segs_before = files_ending(d.path, ".seg");
  REQUIRE(segs_before.size() > 5);
  {
    auto l = disk_log::open(d.path, small);
    l.install_snapshot(snap_at(200, 1));
    // In memory at once.
    CHECK(l.snapshot_index() == index_t{200});
    CHECK(l.snapshot_term() == term_t{1});
    CHECK(l.term_at(index_t{200}) == term_t{1});
    CHECK(l.snapshot_data() == raft::bytes("state@200"));
    check_range(l, 201, 300);
    CHECK(l.dirty());
    l.sync();
    CHECK_FALSE(l.dirty());
    CHECK(l.snapshots_written() == 1);
    CHECK(snapshot_files(d.path) == std::vector<std::string>{disk_log::snapshot_name(200, 1)});
  }
  // Only whole segments holding nothing after 200 are gone; the one holding 201 stays.
  const auto segs = files_ending(d.path, ".seg");
  REQUIRE_FALSE(segs.empty());
  CHECK(segs.size() < segs_before.size());
  CHECK(seg_first(segs[0]) <= 201);
  if (segs.size() > 1) CHECK(seg_first(segs[1]) > 201);
  for (const auto& s : segs_before)
    if (std::find(segs.begin(), segs.end(), s) == segs.end()) {
      auto next = std::upper_bound(segs_before.begin(), segs_before.end(), s);
      REQUIRE(next != segs_before.end());
      CHECK(seg_first(*next) <= 201);  // everything in the removed segment was <= 200
    }
  // Restart from snapshot + tail.
  warnings w;
  {
    auto l = disk_log::open(d.path, w.opts(1024));
    CHECK(w.seen.empty());
    CHECK(l.snapshot_index() == index_t{200});
    CHECK(l.snapshot_term() == term_t{1});
    CHECK(l.snapshot_data() == raft::bytes("state@200"));
    check_range(l, 201, 300);
    // Writing continues, and a later snapshot replaces the file.
    for (std::uint64_t i = 301; i <= 320; ++i) l.append(make_entry(i));
    l.install_snapshot(snap_at(310, 1));
    l.sync();
    CHECK(snapshot_files(d.path) == std::vector<std::string>{disk_log::snapshot_name(310, 1)});
  }
  auto l = disk_log::open(d.path, w.opts(1024));
  CHECK(w.seen.empty());
  CHECK(l.snapshot_data() == raft::bytes("state@310"));
  check_range(l, 311, 320);
}

TEST_CASE("disk_log: install_snapshot drops the whole log when it does not hold the snapshot's entry",
          "[kv][disk_log][snapshot]") {
  temp_dir d;
  fill(d.path, 100, 1024);
  std::uint64_t index = 0, term = 0;
  SECTION("same index, other term") {
    index = 60;
    term = 2;
  }
  SECTION("beyond the last entry") {
    index = 150;
    term = 1;
  }
  CAPTURE(index, term);
  {
    auto l = disk_log::open(d.path);
    l.install_snapshot(snap_at(index, term));
    CHECK(l.snapshot_index() == index_t{index});
    CHECK(l.first_index() == index_t{index + 1});
    CHECK(l.last_index() == index_t{index});
    CHECK(l.term_at(index_t{index}) == term_t{term});
    l.sync();
    CHECK(files_ending(d.path, ".seg").empty());
    CHECK(l.segment_count() == 0);
    // The log goes on after the snapshot, in a segment named after it.
    l.append(make_entry(index + 1, 2));
    l.sync();
    CHECK(files_ending(d.path, ".seg") == std::vector<std::string>{disk_log::segment_name(index + 1)});
  }
  auto l = disk_log::open(d.path);
  CHECK(l.snapshot_index() == index_t{index});
  CHECK(l.snapshot_term() == term_t{term});
  check_range(l, index + 1, index + 1, 2);
}

TEST_CASE("disk_log: restart right after a snapshot with no later entries", "[kv][disk_log][snapshot]") {
  temp_dir d;
  fill(d.path, 50, 1024);
  {
    auto l = disk_log::open(d.path);
    l.install_snapshot(snap_at(50, 1));
    l.sync();
    CHECK(l.segment_bytes() == 0);
  }
  CHECK(files_ending(d.path, ".seg").empty());
  {
    auto l = disk_log::open(d.path);
    CHECK(l.snapshot_index() == index_t{50});
    CHECK(l.first_index() == index_t{51});
    CHECK(l.last_index() == index_t{50});
    CHECK(l.term_at(index_t{50}) == term_t{1});
    CHECK(l.snapshot_data() == raft::bytes("state@50"));
    CHECK_FALSE(l.dirty());
    l.append(make_entry(51));
    l.sync();
  }
  auto l = disk_log::open(d.path);
  check_range(l, 51, 51);
}

TEST_CASE("disk_log: snapshots over unsynced entries and pending cuts", "[kv][disk_log][snapshot]") {
  temp_dir d;
  SECTION("entries after the durable ones, snapshot in the middle of them") {
    fill(d.path, 20, 1024);
    {
      auto l = disk_log::open(d.path);
      for (std::uint64_t i = 21; i <= 40; ++i) l.append(make_entry(i));
      l.install_snapshot(snap_at(30, 1));
      check_range(l, 31, 40);
      l.sync();
    }
    check_range(disk_log::open(d.path), 31, 40);
  }
  SECTION("a truncation not yet on disk, then a snapshot of the new history") {
    fill(d.path, 40, 1024);
    {
      auto l = disk_log::open(d.path);
      l.truncate_after(index_t{20});
      for (std::uint64_t i = 21; i <= 35; ++i) l.append(make_entry(i, 2));
      l.install_snapshot(snap_at(25, 2));
      check_range(l, 26, 35, 2);
      l.sync();
    }
    auto l = disk_log::open(d.path);
    CHECK(l.snapshot_term() == term_t{2});
    check_range(l, 26, 35, 2);
  }
  SECTION("a truncation after the snapshot point is still cut from disk") {
    fill(d.path, 40, 1024);
    {
      auto l = disk_log::open(d.path);
      l.install_snapshot(snap_at(10, 1));
      l.truncate_after(index_t{30});
      for (std::uint64_t i = 31; i <= 33; ++i) l.append(make_entry(i, 2));
      l.sync();
    }
    auto l = disk_log::open(d.path);
    REQUIRE(l.first_index() == index_t{11});
    REQUIRE(l.last_index() == index_t{33});
    for (std::uint64_t i = 11; i <= 30; ++i) CHECK(l.entry_at(index_t{i}) == make_entry(i));
    for (std::uint64_t i = 31; i <= 33; ++i) CHECK(l.entry_at(index_t{i}) == make_entry(i, 2));
  }
  SECTION("a crash before sync loses the snapshot like any other write") {
    fill(d.path, 40, 1024);
    {
      auto l = disk_log::open(d.path);
      l.install_snapshot(snap_at(30, 1));
    }
    auto l = disk_log::open(d.path);
    CHECK(l.snapshot_index() == index_t{0});
    check_entries(l, 40);
  }
}

TEST_CASE("disk_log: repeated compaction keeps the segment files bounded", "[kv][disk_log][snapshot]") {
  temp_dir d;
  auto l = disk_log::open(d.path);  // 64 MiB segments: only compaction's own roll-over frees space
  std::uint64_t most = 0;
  std::size_t most_files = 0;
  for (std::uint64_t i = 1; i <= 3000; ++i) {
    l.append(make_entry(i));
    if (i % 7 == 0) l.sync();
    if (i % 100 == 0) {
      l.install_snapshot(snap_at(i - 10, 1));  // keeps a short suffix, as a leader with entries in flight
      l.sync();
    }
    most = std::max(most, l.segment_bytes());
    most_files = std::max(most_files, files_ending(d.path, ".seg").size());
  }
  l.sync();
  INFO("largest total of segment files: " << most << " bytes, " << most_files << " files");
  // 3000 entries take about 140 KB; two snapshot intervals take about 12 KB
  // (with the zeros written ahead in each segment, at most 16 KiB).
  CHECK(most <= 16 * 1024);
  CHECK(most_files <= 3);
  CHECK(snapshot_files(d.path).size() == 1);
  CHECK(l.segment_bytes() ==
        [&] {
          std::uint64_t n = 0;
          for (const auto& f : files_ending(d.path, ".seg")) n += fs::file_size(d.path + "/" + f);
          return n;
        }());
}

TEST_CASE("disk_log: a crash between writing the snapshot and removing what it covers", "[kv][disk_log][snapshot]") {
  temp_dir d;
  fill(d.path, 100, 1024);
  const auto old = save_segments(d.path);
  SECTION("suffix kept: the covered segments come back and are removed again") {
    {
      auto l = disk_log::open(d.path);
      l.install_snapshot(snap_at(60, 1));
      l.sync();
    }
    for (const auto& [n, data] : old) spit(d.path + "/" + n, data);
    warnings w;
    auto l = disk_log::open(d.path, w.opts());
    check_range(l, 61, 100);
    CHECK_FALSE(w.seen.empty());  // it said what it removed
    for (const auto& s : files_ending(d.path, ".seg"))
      CHECK(std::count_if(old.begin(), old.end(), [&](const auto& o) { return o.first == s; }) == 1);
    CHECK(files_ending(d.path, ".seg").size() < old.size());
  }
  SECTION("a contradicting log left next to the snapshot is dropped, as install_snapshot would") {
    {
      auto l = disk_log::open(d.path);
      l.install_snapshot(snap_at(60, 2));
      l.sync();
    }
    // All of the old log back, or only its older segments (the newest ones go first).
    const std::size_t back = GENERATE_COPY(old.size(), old.size() / 2);
    CAPTURE(back);
    for (std::size_t k = 0; k < back; ++k) spit(d.path + "/" + old[k].first, old[k].second);
    warnings w;
    {
      auto l = disk_log::open(d.path, w.opts());
      CHECK(l.snapshot_index() == index_t{60});
      CHECK(l.last_index() == index_t{60});
      CHECK(files_ending(d.path, ".seg").empty());
      l.append(make_entry(61, 2));
      l.sync();
    }
    check_range(disk_log::open(d.path), 61, 61, 2);
  }
  SECTION("the previous snapshot file is still there") {
    {
      auto l = disk_log::open(d.path);
      l.install_snapshot(snap_at(30, 1));
      l.sync();
    }
    const auto first = slurp(d.path + "/" + disk_log::snapshot_name(30, 1));
    {
      auto l = disk_log::open(d.path);
      l.install_snapshot(snap_at(70, 1));
      l.sync();
    }
    spit(d.path + "/" + disk_log::snapshot_name(30, 1), first);
    auto l = disk_log::open(d.path);
    CHECK(l.snapshot_index() == index_t{70});
    CHECK(l.snapshot_data() == raft::bytes("state@70"));
    check_range(l, 71, 100);
    CHECK(snapshot_files(d.path) == std::vector<std::string>{disk_log::snapshot_name(70, 1)});
  }
}

TEST_CASE("disk_log: a torn snapshot temp file is ignored and removed", "[kv][disk_log][snapshot][damaged]") {
  temp_dir d;
  fill(d.path, 100);
  {
    auto l = disk_log::open(d.path);
    l.install_snapshot(snap_at(40, 1));
    l.sync();
  }
  // A later snapshot whose writing crashed before its rename.
  const std::string tmp = d.path + "/" + disk_log::snapshot_name(90, 1) + ".tmp";
  spit(tmp, {'K', 'V', 'S', 'N', 'A', 'P', 0, 1, 2});
  warnings w;
  auto l = disk_log::open(d.path, w.opts());
  CHECK(l.snapshot_index() == index_t{40});
  CHECK(l.snapshot_data() == raft::bytes("state@40"));
  check_range(l, 41, 100);
  REQUIRE(w.seen.size() == 1);
  CHECK(contains(w.seen[0], tmp));
  CHECK_FALSE(fs::exists(tmp));
}

TEST_CASE("disk_log: a damaged snapshot file refuses to start, naming file and offset", "[kv][disk_log][snapshot][damaged]") {
  temp_dir d;
  fill(d.path, 100);
  {
    auto l = disk_log::open(d.path);
    l.install_snapshot(snap_at(40, 1, std::string(3000, 's')));
    l.sync();
  }
  std::string file = d.path + "/" + disk_log::snapshot_name(40, 1);
  const auto good = slurp(file);
  REQUIRE(good.size() == disk_log::snapshot_header_bytes + 3000);
  auto bad = good;
  std::uint64_t where = 0;
  std::string why;
  SECTION("a flipped bit in the data") {
    bad[disk_log::snapshot_header_bytes + 1234] ^= 0x04;
    where = disk_log::snapshot_header_bytes;
    why = "data checksum";
  }
  SECTION("a flipped bit in the header") {
    bad[20] ^= 0x01;
    where = 44;
    why = "header checksum";
  }
  SECTION("cut short") {
    bad.resize(bad.size() - 100);
    where = 24;
    why = "promises 3000 data bytes";
  }
  SECTION("shorter than its header") {
    bad.resize(30);
    where = 0;
    why = "shorter than the snapshot header";
  }
  SECTION("bad magic") {
    bad[0] = 'X';
    where = 0;
    why = "magic";
  }
  SECTION("renamed: the name disagrees with the header") {
    fs::remove(file);
    file = d.path + "/" + disk_log::snapshot_name(41, 1);
    where = 8;
    why = "disagrees with the file name";
  }
  spit(file, bad);
  try {
    (void)disk_log::open(d.path);
    FAIL("open() accepted a damaged snapshot");
  } catch (const kv::log_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(contains(msg, file));
    CHECK(contains(msg, "offset " + std::to_string(where)));
    CHECK(contains(msg, why));
  }
  CHECK(slurp(file) == bad);  // untouched
  CHECK_FALSE(files_ending(d.path, ".seg").empty());
}

TEST_CASE("disk_log: a segment gap after the snapshot refuses to start", "[kv][disk_log][snapshot][damaged]") {
  temp_dir d;
  fill(d.path, 300, 1024);
  {
    auto l = disk_log::open(d.path);
    l.install_snapshot(snap_at(100, 1));
    l.sync();
  }
  const auto segs = files_ending(d.path, ".seg");
  REQUIRE(segs.size() > 2);
  fs::remove(d.path + "/" + segs[0]);  // the one holding 101
  try {
    (void)disk_log::open(d.path);
    FAIL("open() accepted a hole after the snapshot");
  } catch (const kv::log_error& e) {
    CHECK(contains(e.what(), "missing"));
    CHECK(contains(e.what(), segs[1]));
  }
}

TEST_CASE("disk_log: a raft::node compacts, restarts from snapshot and tail, and hands the snapshot out first",
          "[kv][disk_log][node][snapshot]") {
  using node = raft::node<raft::default_transport, disk_log>;
  temp_dir d;
  raft::config<std::uint64_t> cfg{.id = 1, .voters = {1}, .election_ticks = 10, .heartbeat_ticks = 1};
  node::output_type out;
  std::vector<node::entry_type> applied;
  const std::uint64_t tail = GENERATE(0u, 5u);  // commands after the snapshot (0: restart right after it)
  CAPTURE(tail);
  {
    node n(cfg, disk_log::open(d.path));
    n.campaign(out);
    sync_and_report(n, out);
    REQUIRE(n.is_leader());
    for (int i = 0; i < 30; ++i) (void)n.propose(raft::bytes("cmd" + std::to_string(i)), out);
    sync_and_report(n, out);
    applied = out.committed;
    out.clear();
    REQUIRE(n.applied_index() == index_t{31});
    CHECK(n.compact(index_t{40}, raft::bytes("x"), out) == raft::compact_status::beyond_applied);
    REQUIRE(n.compact(index_t{31}, raft::bytes("state@31"), out) == raft::compact_status::ok);
    CHECK(out.persist);
    sync_and_report(n, out);
    out.clear();
    for (std::uint64_t i = 0; i < tail; ++i) (void)n.propose(raft::bytes("late" + std::to_string(i)), out);
    sync_and_report(n, out);
    out.clear();
    CHECK(n.log().first_index() == index_t{32});
  }
  node n(cfg, disk_log::open(d.path));
  CHECK(n.last_index() == index_t{31 + tail});
  CHECK(n.commit_index() == index_t{31});
  n.tick(out);  // any first input
  REQUIRE(out.snapshot);
  CHECK(out.snapshot->index == index_t{31});
  CHECK(out.snapshot->term == term_t{1});
  CHECK(out.snapshot->data == raft::bytes("state@31"));
  CHECK(out.committed.empty());
  out.clear();
  n.campaign(out);
  sync_and_report(n, out);
  REQUIRE(n.is_leader());
  CHECK_FALSE(out.snapshot);
  // Applying continues right after the snapshot: the tail, then the new term's noop.
  REQUIRE(out.committed.size() == tail + 1);
  for (std::uint64_t i = 0; i < tail; ++i) {
    CHECK(out.committed[i].index == index_t{32 + i});
    CHECK(out.committed[i].data == raft::bytes("late" + std::to_string(i)));
  }
  CHECK(out.committed.back().term == term_t{2});
}

// ------------------------------------------------ write_out / flush / mark_durable

TEST_CASE("disk_log: write_out without a flush - a process crash keeps the entries, a power failure may take only those after the last mark",
          "[kv][disk_log][async]") {
  temp_dir d;
  fill(d.path, 5);
  {
    auto l = disk_log::open(d.path);
    for (std::uint64_t i = 6; i <= 10; ++i) l.append(make_entry(i));
    const kv::flush_ticket t1 = l.write_out();
    REQUIRE(t1.file != nullptr);
    CHECK(t1.upto == 10);
    CHECK(l.written_last() == index_t{10});
    CHECK(l.durable_last() == index_t{5});
    CHECK(l.dirty());  // written, not yet durable
    disk_log::flush(t1);
    l.mark_durable(t1);
    CHECK(l.durable_last() == index_t{10});
    CHECK_FALSE(l.dirty());
    for (std::uint64_t i = 11; i <= 15; ++i) l.append(make_entry(i));
    (void)l.write_out();
    CHECK(l.durable_last() == index_t{10});
    // destroyed without the flush: the process died; its writes are in the kernel
  }
  {
    auto l = disk_log::open(d.path);
    check_entries(l, 15);
    CHECK(l.durable_last() == index_t{15});  // open() made them durable
    CHECK(l.drop_unsynced_tail() == 0);      // so a power failure now takes nothing
  }
  {
    auto l = disk_log::open(d.path);
    for (std::uint64_t i = 16; i <= 20; ++i) l.append(make_entry(i));
    const kv::flush_ticket t = l.write_out();
    for (std::uint64_t i = 21; i <= 25; ++i) l.append(make_entry(i));
    (void)l.write_out();
    disk_log::flush(t);  // covers 16..20 (and, in truth, 21..25: but nobody said so)
    l.mark_durable(t);
    CHECK(l.durable_last() == index_t{20});
    CHECK(l.drop_unsynced_tail() == 5);  // a power failure: what was not reported durable may go
  }
  auto l = disk_log::open(d.path);
  check_entries(l, 20);
}

TEST_CASE("disk_log: mark_durable - late, repeated and out-of-order reports never lower what is durable",
          "[kv][disk_log][async]") {
  temp_dir d;
  auto l = disk_log::open(d.path);
  for (std::uint64_t i = 1; i <= 10; ++i) l.append(make_entry(i));
  const kv::flush_ticket t1 = l.write_out();
  for (std::uint64_t i = 11; i <= 20; ++i) l.append(make_entry(i));
  const kv::flush_ticket t2 = l.write_out();
  REQUIRE(t1.file != nullptr);
  CHECK(t2.file == t1.file);  // the same active segment
  disk_log::flush(t2);
  l.mark_durable(t2);
  CHECK(l.durable_last() == index_t{20});
  CHECK_FALSE(l.dirty());
  l.mark_durable(t1);  // late
  l.mark_durable(t2);  // repeated
  CHECK(l.durable_last() == index_t{20});
  // Nothing written since: nothing to flush.
  const kv::flush_ticket t3 = l.write_out();
  CHECK(t3.file == nullptr);
  CHECK(t3.upto == 20);
  // The hard state is durable when write_out() returns: still nothing to flush.
  l.save_hard_state({term_t{3}, 1});
  CHECK(l.dirty());
  const kv::flush_ticket t4 = l.write_out();
  CHECK(t4.file == nullptr);
  CHECK_FALSE(l.dirty());
  // A flush that started after t1's writes but before later ones: marking t1
  // must not mark the later entries (they may not be in that flush).
  for (std::uint64_t i = 21; i <= 25; ++i) l.append(make_entry(i));
  const kv::flush_ticket t5 = l.write_out();
  l.mark_durable(t1);
  CHECK(l.durable_last() == index_t{20});
  CHECK(l.dirty());
  disk_log::flush(t5);
  l.mark_durable(t5);
  CHECK(l.durable_last() == index_t{25});
  CHECK_FALSE(l.dirty());
}

TEST_CASE("disk_log: a ticket overtaken by a truncation counts only up to the cut", "[kv][disk_log][async]") {
  temp_dir d;
  SECTION("reported before the cut is written") {
    auto l = disk_log::open(d.path);
    for (std::uint64_t i = 1; i <= 20; ++i) l.append(make_entry(i));
    const kv::flush_ticket t1 = l.write_out();  // its flush is still running
    l.truncate_after(index_t{12});
    CHECK(l.needs_quiesce());  // the cut must not run under that flush
    disk_log::flush(t1);
    l.mark_durable(t1);
    CHECK(l.durable_last() == index_t{12});  // 13..20 are gone from memory
    for (std::uint64_t i = 13; i <= 16; ++i) l.append(make_entry(i, 2));
    const kv::flush_ticket t2 = l.write_out();  // the cut (ftruncate, fsync), then 13..16 of term 2
    CHECK(l.durable_last() == index_t{12});
    disk_log::flush(t2);
    l.mark_durable(t2);
    CHECK(l.durable_last() == index_t{16});
    CHECK_FALSE(l.dirty());
  }
  SECTION("reported after the new entries were written") {
    {
      auto l = disk_log::open(d.path);
      for (std::uint64_t i = 1; i <= 20; ++i) l.append(make_entry(i));
      const kv::flush_ticket t1 = l.write_out();
      l.truncate_after(index_t{12});
      for (std::uint64_t i = 13; i <= 16; ++i) l.append(make_entry(i, 2));
      (void)l.write_out();
      disk_log::flush(t1);
      l.mark_durable(t1);  // a late report of the old ticket: says nothing about 13..16 of term 2
      CHECK(l.durable_last() == index_t{12});
      CHECK(l.dirty());
      CHECK(l.drop_unsynced_tail() == 4);
    }
    auto l = disk_log::open(d.path);
    check_entries(l, 12);
  }
}

TEST_CASE("disk_log: only a cut waits for running flushes; a roll-over and a snapshot order themselves",
          "[kv][disk_log][async]") {
  temp_dir d;
  {
    auto l = disk_log::open(d.path, kv::disk_log_options{1024, true, {}, std::uint64_t{1} << 20});
    CHECK_FALSE(l.needs_quiesce());
    std::uint64_t i = 1;
    for (; i <= 10; ++i) l.append(make_entry(i));
    const kv::flush_ticket t0 = l.write_out();  // outstanding from here on
    REQUIRE(t0.file != nullptr);
    // Enough for several roll-overs: each seals (fdatasyncs) the full segment itself.
    for (; i <= 80; ++i) l.append(make_entry(i));
    CHECK_FALSE(l.needs_quiesce());
    const kv::flush_ticket t1 = l.write_out();
    REQUIRE(l.segment_count() > 2);
    const std::uint64_t last_first = seg_first(fs::path(l.segment_path(l.segment_count() - 1)).filename().string());
    CHECK(l.durable_last().value == last_first - 1);  // the sealed ones are durable
    CHECK(t1.file != t0.file);
    // A snapshot over the first segments: written and durable in write_out(),
    // the covered segments left to the ticket.
    l.install_snapshot(snap_at(40, 1));
    CHECK_FALSE(l.needs_quiesce());
    l.save_hard_state({term_t{2}, 1});
    CHECK_FALSE(l.needs_quiesce());
    const std::size_t segs_before = files_ending(d.path, ".seg").size();
    kv::flush_ticket t2 = l.write_out();
    CHECK(snapshot_files(d.path).size() == 1);
    CHECK_FALSE(t2.unlink.empty());
    CHECK(files_ending(d.path, ".seg").size() == segs_before);  // still there
    CHECK_NOTHROW(disk_log::flush(t0));                         // an old flush still works
    l.mark_durable(t0);
    disk_log::flush(t2);
    disk_log::remove_obsolete(t2);
    l.mark_durable(t2);
    CHECK(files_ending(d.path, ".seg").size() == segs_before - t2.unlink.size());
    CHECK(l.durable_last() == index_t{80});
    // A cut does wait.
    l.truncate_after(index_t{70});
    CHECK(l.needs_quiesce());
    l.sync();
    CHECK_FALSE(l.needs_quiesce());
  }
  auto l = disk_log::open(d.path);
  CHECK(l.snapshot_index() == index_t{40});
  check_range(l, 41, 70);
}

TEST_CASE("disk_log: a contradicting log dropped whole - segments after the snapshot's index go at once, the rest later",
          "[kv][disk_log][async][snapshot]") {
  temp_dir d;
  fill(d.path, 100, 1024);
  const auto segs = files_ending(d.path, ".seg");
  REQUIRE(segs.size() >= 3);
  const std::uint64_t f = seg_first(segs[1]);  // a segment starting at f: the snapshot ends at f - 1
  {
    auto l = disk_log::open(d.path, kv::disk_log_options{1024, true, {}, std::uint64_t{1} << 20});
    l.install_snapshot(snap_at(f - 1, 2));  // term 2: the log holds term 1 there, so it all goes
    const kv::flush_ticket t = l.write_out();
    // Segments starting after f - 1 were removed at once: one of them has the
    // name the next segment takes.
    const auto left = files_ending(d.path, ".seg");
    REQUIRE(left.size() == 1);
    CHECK(seg_first(left[0]) < f);
    CHECK(t.unlink.size() == 1);
    l.append(make_entry(f, 2));
    l.sync();  // creates segment f again
    disk_log::remove_obsolete(t);  // late: must not touch the new segment f
    CHECK(files_ending(d.path, ".seg") == std::vector<std::string>{disk_log::segment_name(f)});
  }
  auto l = disk_log::open(d.path);
  CHECK(l.snapshot_index() == index_t{f - 1});
  check_range(l, f, f, 2);
}

TEST_CASE("disk_log: a segment is made durable before the next one starts, whatever flushes are outstanding",
          "[kv][disk_log][async]") {
  temp_dir d;
  std::uint64_t last_first = 0;
  {
    auto l = disk_log::open(d.path, kv::disk_log_options{1024, true, {}, std::uint64_t{1} << 20});
    for (std::uint64_t i = 1; i <= 200; ++i) {
      l.append(make_entry(i));
      if (i % 5 == 0) (void)l.write_out();  // and never flushed by the caller
    }
    REQUIRE(l.segment_count() > 5);
    last_first = seg_first(fs::path(l.segment_path(l.segment_count() - 1)).filename().string());
    CHECK(l.durable_last().value >= last_first - 1);  // sealed ones are durable
    l.drop_unsynced_tail();  // a power failure: only the last segment loses records
  }
  auto l = disk_log::open(d.path);  // no "damaged sealed segment": they are complete
  REQUIRE(l.last_index().value >= last_first - 1);
  for (std::uint64_t i = 1; i <= l.last_index().value; ++i) CHECK(l.entry_at(index_t{i}) == make_entry(i));
}

TEST_CASE("disk_log: a ticket keeps its segment open after the log closed it", "[kv][disk_log][async]") {
  temp_dir d;
  auto l = disk_log::open(d.path);
  for (std::uint64_t i = 1; i <= 10; ++i) l.append(make_entry(i));
  kv::flush_ticket t = l.write_out();
  REQUIRE(t.file != nullptr);
  const int fd = t.file->fd();
  l.install_snapshot(snap_at(10, 1));  // covers the only segment: the log closes it
  l.sync();                            // and unlinks it
  CHECK(files_ending(d.path, ".seg").empty());
  CHECK(::fcntl(fd, F_GETFD) != -1);  // the ticket still holds it: a flush never finds it closed
  CHECK_NOTHROW(disk_log::flush(t));
  l.mark_durable(t);
  CHECK(l.durable_last() == index_t{10});
  t = {};
  CHECK(::fcntl(fd, F_GETFD) == -1);  // the last holder let go
}

TEST_CASE("disk_log: the hard state of a new term is durable before any entry of that term is written",
          "[kv][disk_log][async]") {
  temp_dir d;
  fill(d.path, 5);
  {
    auto l = disk_log::open(d.path);
    l.save_hard_state({term_t{2}, 1});
    for (std::uint64_t i = 6; i <= 10; ++i) l.append(make_entry(i, 2));
    (void)l.write_out();
    CHECK(l.drop_unsynced_tail() == 5);  // a power failure before the flush
  }
  auto l = disk_log::open(d.path);
  CHECK(l.hard_state().term == term_t{2});
  check_entries(l, 5);
  // The node accepts it (it refuses a log whose entries are newer than its hard state).
  raft::config<std::uint64_t> cfg{.id = 1, .voters = {1, 2, 3}, .election_ticks = 10, .heartbeat_ticks = 1};
  CHECK_NOTHROW(raft::node<raft::default_transport, disk_log>(cfg, std::move(l)));
}

// ------------------------------------------------ configuration entries and snapshot membership

namespace {

using members = raft::membership<std::uint64_t>;

raft::bytes conf_blob(std::vector<std::uint64_t> voters, std::vector<std::uint64_t> learners = {},
                      const std::string& context = "") {
  members m;
  m.voters = std::move(voters);
  m.learners = std::move(learners);
  return raft::encode_config_entry<raft::default_transport>(m, raft::bytes(context));
}

entry config_entry(std::uint64_t i, raft::bytes conf, std::uint64_t term = 1) {
  entry e;
  e.term = term_t{term};
  e.index = index_t{i};
  e.kind = raft::entry_kind::config;
  e.conf = std::move(conf);
  return e;
}

/// Entries 1..n, config entries at 4 and 9 (with a context), the rest as make_entry.
entry mixed_entry(std::uint64_t i) {
  if (i == 4) return config_entry(4, conf_blob({1, 2, 3}, {4}, "4=127.0.0.1:7004,127.0.0.1:8004"));
  if (i == 9) return config_entry(9, conf_blob({1, 2, 3, 4}));
  return make_entry(i);
}

}  // namespace

TEST_CASE("disk_log: configuration entries keep their conf across reopen, segments and snapshots",
          "[kv][disk_log][membership]") {
  temp_dir d;
  const kv::disk_log_options small{512, true, {}, 0};  // several segments
  {
    auto l = disk_log::open(d.path, small);
    for (std::uint64_t i = 1; i <= 40; ++i) l.append(mixed_entry(i));
    l.sync();
    REQUIRE(l.segment_count() > 1);
  }
  {
    auto l = disk_log::open(d.path, small);
    REQUIRE(l.last_index() == index_t{40});
    for (std::uint64_t i = 1; i <= 40; ++i) {
      INFO("index " << i);
      REQUIRE(l.entry_at(index_t{i}) == mixed_entry(i));
    }
    const auto c = raft::decode_config_entry<raft::default_transport>(l.entry_at(index_t{4}).conf);
    REQUIRE(c);
    CHECK(c->members.learners == std::vector<std::uint64_t>{4});
    CHECK(c->context == raft::bytes("4=127.0.0.1:7004,127.0.0.1:8004"));
    CHECK(l.snapshot_membership().empty());
    // A snapshot carries the membership as of its index; the tail keeps its config entry.
    raft::snapshot s = snap_at(6, 1, "state@6");
    s.membership = conf_blob({1, 2, 3}, {4});
    l.install_snapshot(s);
    CHECK(l.snapshot_membership() == s.membership);
    l.sync();
  }
  auto l = disk_log::open(d.path, small);
  CHECK(l.snapshot_index() == index_t{6});
  CHECK(l.snapshot_data() == raft::bytes("state@6"));
  CHECK(l.snapshot_membership() == conf_blob({1, 2, 3}, {4}));
  for (std::uint64_t i = 7; i <= 40; ++i) {
    INFO("index " << i);
    REQUIRE(l.entry_at(index_t{i}) == mixed_entry(i));
  }
}

TEST_CASE("disk_log: a raft::node changes membership, compacts and restarts with the right configuration",
          "[kv][disk_log][membership][node]") {
  using node = raft::node<raft::default_transport, disk_log>;
  temp_dir d;
  raft::config<std::uint64_t> cfg{.id = 1, .voters = {1}, .election_ticks = 10, .heartbeat_ticks = 1};
  node::output_type out;
  const bool compact = GENERATE(false, true);
  CAPTURE(compact);
  {
    node n(cfg, disk_log::open(d.path));
    n.campaign(out);
    sync_and_report(n, out);
    REQUIRE(n.is_leader());
    (void)n.propose(raft::bytes("a"), out);
    sync_and_report(n, out);
    const auto r = n.change_membership(
        raft::conf_change<std::uint64_t>{.changes = {{raft::change_type::add_learner, 7}},
                                         .how = raft::transition::automatic,
                                         .context = raft::bytes("where 7 lives")},
        out);
    REQUIRE(r.ok());
    sync_and_report(n, out);  // commits: the learner does not count
    REQUIRE(n.commit_index() == r.index);
    out.clear();
    if (compact) REQUIRE(n.compact(n.applied_index(), raft::bytes("state"), out) == raft::compact_status::ok);
    sync_and_report(n, out);
    out.clear();
  }
  node n(raft::config<std::uint64_t>{.id = 1, .voters = {1}, .election_ticks = 10, .heartbeat_ticks = 1},
         disk_log::open(d.path));
  CHECK(n.configuration().voters == std::vector<std::uint64_t>{1});
  CHECK(n.configuration().learners == std::vector<std::uint64_t>{7});
  if (compact) {
    CHECK(n.log().snapshot_index() == index_t{3});
    CHECK_FALSE(n.log().snapshot_membership().empty());
  } else {
    const auto& e = n.log().entry_at(index_t{3});
    REQUIRE(e.kind == raft::entry_kind::config);
    const auto c = raft::decode_config_entry<raft::default_transport>(e.conf);
    REQUIRE(c);
    CHECK(c->context == raft::bytes("where 7 lives"));
  }
}

TEST_CASE("disk_log: a damaged configuration record refuses to start, naming file and offset",
          "[kv][disk_log][membership][damaged]") {
  temp_dir d;
  {
    kv::disk_log_options o;
    o.preallocate_bytes = 0;
    auto l = disk_log::open(d.path, o);
    for (std::uint64_t i = 1; i <= 12; ++i) l.append(mixed_entry(i));
    l.sync();
  }
  // Offset of record 4 (the first config record).
  std::uint64_t off = disk_log::segment_header_bytes;
  for (std::uint64_t k = 1; k < 4; ++k) off += disk_log::record_header_bytes + disk_log::entry_body_fixed + make_entry(k).data.size();
  const std::string file = seg0(d.path);
  const auto good = slurp(file);
  auto bad = good;
  unsigned char* rec = bad.data() + off;
  const std::uint32_t len = kv::detail::get_u32(rec);
  unsigned char* body = rec + disk_log::record_header_bytes;
  REQUIRE(body[0] == 2);
  // Rewrites the record's checksums, so that only the content is wrong.
  auto reseal = [&] {
    kv::detail::put_u32(rec + 4, kv::crc32c(body, len));
    kv::detail::put_u32(rec + 8, kv::crc32c(rec, 8));
  };
  std::string why;
  SECTION("a flipped bit in the conf (checksum caught)") {
    body[len - 3] ^= 0x20;
    why = "record body checksum mismatch";
  }
  SECTION("a conf that does not decode (checksum fixed up)") {
    body[disk_log::config_body_fixed] = 99;  // unknown config format
    reseal();
    why = "does not decode";
  }
  SECTION("a payload size past the record (checksum fixed up)") {
    kv::detail::put_u32(body + disk_log::entry_body_fixed, len);
    reseal();
    why = "promises";
  }
  SECTION("a config entry stored as a plain record (checksum fixed up)") {
    body[0] = 1;
    reseal();
    why = "stored without its configuration";
  }
  SECTION("a configuration record of another kind (checksum fixed up)") {
    body[17] = static_cast<unsigned char>(raft::entry_kind::command);
    reseal();
    why = "another kind";
  }
  SECTION("a record type from the future (checksum fixed up)") {
    body[0] = 3;
    reseal();
    why = "unknown record type 3";
  }
  spit(file, bad);
  try {
    (void)disk_log::open(d.path);
    FAIL("open() accepted a damaged configuration record");
  } catch (const kv::log_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(contains(msg, file));
    CHECK(contains(msg, "offset " + std::to_string(off)));
    CHECK(contains(msg, why));
  }
  CHECK(slurp(file) == bad);  // untouched
}

TEST_CASE("disk_log: snapshot membership - damage is refused, KVSNAP01 files still load",
          "[kv][disk_log][membership][snapshot][damaged]") {
  temp_dir d;
  fill(d.path, 20);
  const raft::bytes m = conf_blob({1, 2, 3}, {4});
  {
    auto l = disk_log::open(d.path);
    raft::snapshot s = snap_at(10, 1, "state@10");
    s.membership = m;
    l.install_snapshot(s);
    l.sync();
  }
  const std::string file = d.path + "/" + disk_log::snapshot_name(10, 1);
  const auto good = slurp(file);
  REQUIRE(good.size() == disk_log::snapshot_header_bytes + 8 + m.size());
  SECTION("a flipped bit in the membership") {
    auto bad = good;
    bad[disk_log::snapshot_header_bytes + 8 + 2] ^= 0x01;
    spit(file, bad);
    try {
      (void)disk_log::open(d.path);
      FAIL("open() accepted a damaged snapshot membership");
    } catch (const kv::log_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(contains(msg, file));
      CHECK(contains(msg, "offset " + std::to_string(disk_log::snapshot_header_bytes + 8)));
      CHECK(contains(msg, "membership checksum mismatch"));
    }
    CHECK(slurp(file) == bad);
  }
  SECTION("a membership that does not decode (checksums fixed up)") {
    auto bad = good;
    unsigned char* mb = bad.data() + disk_log::snapshot_header_bytes + 8;
    mb[0] = 77;  // unknown config format
    kv::detail::put_u32(bad.data() + 40, kv::crc32c(mb, m.size()));
    kv::detail::put_u32(bad.data() + 44, kv::crc32c(bad.data(), 44));
    spit(file, bad);
    try {
      (void)disk_log::open(d.path);
      FAIL("open() accepted a snapshot membership that does not decode");
    } catch (const kv::log_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(contains(msg, "does not decode"));
    }
  }
  SECTION("a newer snapshot format is refused by name") {
    auto bad = good;
    bad[7] = '9';
    spit(file, bad);
    try {
      (void)disk_log::open(d.path);
      FAIL("open() accepted an unknown snapshot format");
    } catch (const kv::log_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(contains(msg, "unknown snapshot format KVSNAP09"));
    }
  }
  SECTION("a KVSNAP01 file (before membership changes) loads with an empty membership") {
    std::vector<unsigned char> v1(disk_log::snapshot_v1_header_bytes);
    std::memcpy(v1.data(), "KVSNAP01", 8);
    std::memcpy(v1.data() + 8, good.data() + 8, 28);  // index, term, size, data crc
    kv::detail::put_u32(v1.data() + 36, kv::crc32c(v1.data(), 36));
    v1.insert(v1.end(), good.begin() + disk_log::snapshot_header_bytes, good.begin() + disk_log::snapshot_header_bytes + 8);
    spit(file, v1);
    auto l = disk_log::open(d.path);
    CHECK(l.snapshot_index() == index_t{10});
    CHECK(l.snapshot_data() == raft::bytes("state@10"));
    CHECK(l.snapshot_membership().empty());
    check_range(l, 11, 20);
  }
}
