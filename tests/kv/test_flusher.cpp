// tests/kv/test_flusher.cpp - kv::flusher, the writer thread of kv-server's
// asynchronous durability: order, merging (group commit), its eventfd,
// failures, and a raft::node on a disk_log flushed by it.
#include <catch2/catch.hpp>

#include <poll.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

#include "disk_log.hpp"
#include "flusher.hpp"

namespace fs = std::filesystem;
using kv::disk_log;
using raft::index_t;
using raft::term_t;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "kv-flusher-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t + "/data";
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(fs::path(path).parent_path(), ec);
  }
};

/// Holds the writer thread before each flush until released.
struct gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;  // flushes that reached the gate
  void pass() {
    std::unique_lock<std::mutex> lk(m);
    ++waiting;
    cv.notify_all();
    cv.wait(lk, [&] { return open; });
  }
  void wait_for(int n) {
    std::unique_lock<std::mutex> lk(m);
    cv.wait(lk, [&] { return waiting >= n; });
  }
  void release() {
    std::lock_guard<std::mutex> lk(m);
    open = true;
    cv.notify_all();
  }
};

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

disk_log::entry_type entry_at(std::uint64_t i, std::uint64_t term = 1) {
  disk_log::entry_type e;
  e.term = term_t{term};
  e.index = index_t{i};
  e.data = raft::bytes("value-" + std::to_string(i));
  return e;
}

}  // namespace

TEST_CASE("flusher: one flush at a time, in order; jobs that wait are merged (group commit)", "[kv][flusher]") {
  temp_dir d;
  auto l = disk_log::open(d.path);
  gate g;
  kv::flusher<int> f([&] { g.pass(); });
  CHECK(f.idle());
  l.append(entry_at(1));
  f.submit(l.write_out(), 1);
  g.wait_for(1);  // job 1 is being flushed
  CHECK_FALSE(f.idle());
  for (int k = 2; k <= 4; ++k) {
    l.append(entry_at(static_cast<std::uint64_t>(k)));
    f.submit(l.write_out(), k);  // wait behind job 1, merged into one
  }
  CHECK_FALSE(f.take_done());  // nothing finished yet
  g.release();
  auto c = f.wait_idle();
  REQUIRE(c);
  CHECK(c->tag == 4);   // the newest stands for all
  CHECK(c->jobs == 4);  // job 1, then 2-4 merged
  CHECK(c->ticket.upto == 4);
  CHECK(f.flushes() == 2);
  CHECK(f.submitted() == 4);
  l.mark_durable(c->ticket);
  CHECK(l.durable_last() == index_t{4});
  CHECK_FALSE(l.dirty());
  CHECK_FALSE(f.wait_idle());  // taken
}

TEST_CASE("flusher: its eventfd says when a completion waits", "[kv][flusher]") {
  temp_dir d;
  auto l = disk_log::open(d.path);
  kv::flusher<int> f;
  CHECK_FALSE(readable(f.event_fd(), 0));
  l.append(entry_at(1));
  f.submit(l.write_out(), 7);
  REQUIRE(readable(f.event_fd(), 5000));
  auto c = f.take_done();
  REQUIRE(c);
  CHECK(c->tag == 7);
  CHECK_FALSE(readable(f.event_fd(), 0));  // take_done() consumed the signal
  l.mark_durable(c->ticket);
  // A job with nothing to fdatasync completes in order too, without a flush.
  f.submit(l.write_out(), 8);
  REQUIRE(readable(f.event_fd(), 5000));
  c = f.take_done();
  REQUIRE(c);
  CHECK(c->tag == 8);
  CHECK(c->ticket.file == nullptr);
  CHECK(f.flushes() == 1);
}

TEST_CASE("flusher: obsolete files are removed after the flush, those of merged jobs too", "[kv][flusher]") {
  temp_dir d;
  auto l = disk_log::open(d.path);  // creates the directory
  std::vector<std::string> files;
  for (int k = 0; k < 3; ++k) {
    files.push_back(d.path + "/obsolete-" + std::to_string(k));
    std::FILE* f = std::fopen(files.back().c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
  }
  gate g;
  kv::flusher<int> f([&] { g.pass(); });
  l.append(entry_at(1));
  f.submit(l.write_out(), 1);
  g.wait_for(1);
  kv::flush_ticket a = l.write_out(), b = l.write_out();
  a.unlink = {files[0], files[1]};
  b.unlink = {files[2]};
  f.submit(std::move(a), 2);  // a and b wait behind job 1: merged
  f.submit(std::move(b), 3);
  for (const auto& p : files) CHECK(fs::exists(p));
  g.release();
  auto c = f.wait_idle();  // idle: the files are gone too
  REQUIRE(c);
  CHECK(c->tag == 3);
  for (const auto& p : files) CHECK_FALSE(fs::exists(p));
}

TEST_CASE("flusher: a failed fdatasync is reported, and nothing after it counts", "[kv][flusher]") {
  kv::flusher<int> f;
  // A descriptor that fdatasync() refuses (EBADF), standing in for a failing disk.
  kv::flush_ticket bad;
  bad.file = std::make_shared<const kv::log_file>(-1, "/nonexistent/segment");
  bad.upto = 1;
  f.submit(bad, 1);
  CHECK_THROWS_WITH(f.wait_idle(), Catch::Contains("fsync failed for /nonexistent/segment"));
  f.submit(kv::flush_ticket{}, 2);  // a later job succeeds, but the failure sticks
  CHECK_THROWS_AS(f.wait_idle(), kv::log_error);
  CHECK_THROWS_AS(f.take_done(), kv::log_error);
}

TEST_CASE("flusher: a raft::node on a disk_log flushed by the writer commits only what was reported durable",
          "[kv][flusher][node]") {
  using node = raft::node<raft::default_transport, disk_log>;
  temp_dir d;
  raft::config<std::uint64_t> cfg{.id = 1, .voters = {1}, .election_ticks = 10, .heartbeat_ticks = 1};
  node::output_type out;
  std::vector<node::entry_type> applied;
  std::uint64_t submitted = 0;
  {
    node n(cfg, disk_log::open(d.path));
    gate g;
    kv::flusher<raft::log_write> f([&] { g.pass(); });
    // The event loop's side: write out what the output names and hand it over.
    auto write_out = [&] {
      while (out.persist && out.persist->seq > submitted) {
        const raft::log_write w = *out.persist;
        f.submit(n.log().write_out(), w);
        submitted = w.seq;
      }
    };
    auto on_done = [&] {
      REQUIRE(readable(f.event_fd(), 5000));
      auto c = f.take_done();
      REQUIRE(c);
      n.log().mark_durable(c->ticket);
      if (c->tag.seq > n.durable_write()) REQUIRE(n.persisted(c->tag, out) == raft::persist_status::ok);
    };
    g.release();
    n.campaign(out);
    write_out();  // the vote
    while (!n.is_leader()) {
      on_done();  // its own vote counts once durable; winning appends the no-op
      write_out();
    }
    on_done();  // the no-op: committed once durable
    out.clear();
    // Hold the writer: the proposals are written, not durable, not committed.
    std::unique_lock<std::mutex> hold(g.m);
    g.open = false;
    hold.unlock();
    const int flushes_before = g.waiting;
    for (int i = 0; i < 20; ++i) (void)n.propose(raft::bytes("cmd" + std::to_string(i)), out);
    write_out();
    g.wait_for(flushes_before + 1);
    CHECK(out.committed.empty());
    CHECK(n.commit_index() == index_t{1});
    CHECK(n.log().written_last() == index_t{21});
    CHECK(n.log().durable_last() == index_t{1});
    g.release();
    on_done();
    CHECK(n.durable_index() == index_t{21});
    CHECK(n.commit_index() == index_t{21});
    applied = out.committed;
    out.clear();
    REQUIRE(applied.size() == 20);
    CHECK(n.log().durable_last() == index_t{21});
    CHECK_FALSE(n.log().dirty());
  }
  node n(cfg, disk_log::open(d.path));
  CHECK(n.last_index() == index_t{21});
  for (std::size_t i = 0; i < applied.size(); ++i) CHECK(n.log().entry_at(applied[i].index) == applied[i]);
}
