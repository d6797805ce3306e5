// examples/kv/flusher.hpp - a writer thread that makes disk_log writes durable
// while the event loop goes on.
//
// The event loop calls disk_log::write_out() (the pwrite()s), hands the
// ticket to submit() together with a tag - kv-server's is the raft::log_write
// to report - and carries on: sends the output's messages, applies, polls.
// The writer thread runs disk_log::flush(ticket) (one fdatasync) and then
// makes event_fd() readable; the loop, polling it, calls take_done(), marks
// the log durable up to the ticket (disk_log::mark_durable) and reports the
// tag to the node (node::persisted). After signalling, the writer removes the
// files the ticket lists as obsolete (disk_log::remove_obsolete).
//
// Group commit. One job is flushed at a time. Jobs submitted meanwhile are
// merged into one: the newest ticket and tag stand for all of them, because
// an fdatasync covers every record written before it started, and a
// durability report covers every earlier write. So one fdatasync serves
// everything the loop wrote while the previous one ran, from any number of
// iterations and clients. Completions merge the same way: take_done() returns
// only the newest.
//
// Ordering. Jobs complete in the order they were submitted (one thread, one
// job at a time), and a job is started only after submit() returned, hence
// after its write_out() returned: the flush that completes a tag covers the
// writes that tag names.
//
// Threads. submit(), take_done(), wait_idle(), idle() and the statistics are
// for the one thread that owns the log (the event loop). The writer thread
// touches only the tickets' files (fdatasync on a descriptor the ticket keeps
// open) and this object's state, under its mutex; it never sees the log.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "disk_log.hpp"

namespace kv {

template <class Tag>
class flusher {
 public:
  struct completion {
    flush_ticket ticket;     ///< the newest ticket flushed: disk_log::mark_durable() it
    Tag tag;                 ///< its tag
    std::uint64_t jobs = 0;  ///< submitted jobs it completes (merged ones included)
  };

  /// `before_flush`, if set, runs on the writer thread before each flush (tests use it to hold the writer).
  explicit flusher(std::function<void()> before_flush = {}) : before_flush_(std::move(before_flush)) {
    efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) throw log_error(std::string("flusher: eventfd: ") + std::strerror(errno));
    thread_ = std::thread([this] { run_(); });
  }
  flusher(const flusher&) = delete;
  flusher& operator=(const flusher&) = delete;
  /// Flushes what was submitted, then stops the thread.
  ~flusher() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    work_cv_.notify_all();
    thread_.join();
    ::close(efd_);
  }

  /// Readable (POLLIN) when a completion may be waiting: call take_done().
  [[nodiscard]] int event_fd() const noexcept { return efd_; }

  /// Queues a flush of `t` (from write_out(), which has returned), merged with
  /// a job still waiting to start.
  void submit(flush_ticket t, Tag tag) {
    {
      std::lock_guard<std::mutex> lk(m_);
      std::uint64_t jobs = 1;
      if (pending_) {
        jobs += pending_->jobs;
        // The newer ticket covers the older one; keep the file to sync if
        // only the older one names it, and the files to remove of both.
        if (t.file == nullptr) t.file = std::move(pending_->ticket.file);
        t.unlink.insert(t.unlink.begin(), std::make_move_iterator(pending_->ticket.unlink.begin()),
                        std::make_move_iterator(pending_->ticket.unlink.end()));
      }
      pending_ = completion{std::move(t), std::move(tag), jobs};
      ++submitted_;
    }
    work_cv_.notify_one();
  }

  /// True if a completion (or a failure) waits to be taken: a cheap check
  /// without a system call, for a loop that looks between polls.
  [[nodiscard]] bool done_waiting() const noexcept { return done_waiting_.load(std::memory_order_acquire); }

  /// The newest completion not yet taken, if any; does not block. Throws
  /// log_error if a flush failed (then nothing after the last successful one
  /// may be trusted, and the log must not be used again).
  std::optional<completion> take_done() {
    std::uint64_t n = 0;
    [[maybe_unused]] const auto r = ::read(efd_, &n, sizeof n);  // first, so a later completion signals again
    std::lock_guard<std::mutex> lk(m_);
    return take_locked_();
  }

  /// Blocks until every submitted job is flushed; returns the newest
  /// completion not yet taken, if any. Throws like take_done().
  std::optional<completion> wait_idle() {
    std::unique_lock<std::mutex> lk(m_);
    idle_cv_.wait(lk, [&] { return !pending_ && !running_; });
    return take_locked_();
  }

  /// No job waiting or running (a completion may still wait to be taken).
  [[nodiscard]] bool idle() const {
    std::lock_guard<std::mutex> lk(m_);
    return !pending_ && !running_;
  }

  /// fdatasync() calls made, and jobs submitted, so far.
  [[nodiscard]] std::uint64_t flushes() const {
    std::lock_guard<std::mutex> lk(m_);
    return flushes_;
  }
  [[nodiscard]] std::uint64_t submitted() const {
    std::lock_guard<std::mutex> lk(m_);
    return submitted_;
  }

 private:
  std::optional<completion> take_locked_() {
    if (!error_.empty()) throw log_error(error_);
    done_waiting_.store(false, std::memory_order_relaxed);
    return std::exchange(done_, std::nullopt);
  }

  void run_() {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      work_cv_.wait(lk, [&] { return stop_ || pending_.has_value(); });
      if (!pending_) return;  // stopping, and nothing left to flush
      completion job = std::move(*pending_);
      pending_.reset();
      running_ = true;
      lk.unlock();
      if (before_flush_) before_flush_();
      std::string error;
      try {
        disk_log::flush(job.ticket);
      } catch (const log_error& e) {
        error = e.what();
      }
      // Obsolete files go after the completion is signalled: removing one can
      // take milliseconds, and nothing waits for it but wait_idle().
      flush_ticket cleanup;
      cleanup.unlink = std::move(job.ticket.unlink);
      lk.lock();
      if (job.ticket.file != nullptr) ++flushes_;
      if (!error.empty() && error_.empty()) error_ = std::move(error);
      if (done_) job.jobs += done_->jobs;
      done_ = std::move(job);
      done_waiting_.store(true, std::memory_order_release);
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto w = ::write(efd_, &one, sizeof one);
      if (!cleanup.unlink.empty()) {
        lk.unlock();
        try {
          disk_log::remove_obsolete(cleanup);
        } catch (const log_error& e) {
          error = e.what();
        }
        lk.lock();
        if (!error.empty() && error_.empty()) error_ = std::move(error);
      }
      running_ = false;
      idle_cv_.notify_all();
    }
  }

  std::function<void()> before_flush_;
  int efd_ = -1;
  mutable std::mutex m_;
  std::condition_variable work_cv_;  // a job was submitted, or stop_
  std::condition_variable idle_cv_;  // a job completed
  std::optional<completion> pending_;  // submitted, not started (merged)
  std::optional<completion> done_;     // completed, not taken (merged)
  bool running_ = false;
  bool stop_ = false;
  std::string error_;  // the first flush failure; sticky
  std::atomic<bool> done_waiting_{false};  // done_ is set or error_ is (written under m_)
  std::uint64_t flushes_ = 0;
  std::uint64_t submitted_ = 0;
  std::thread thread_;  // last: starts once everything above is built
};

}  // namespace kv
