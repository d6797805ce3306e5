// tests/kv/client.hpp - the client side of the history-checking end-to-end
// tests (kv-e2e, kv-membership): a client thread's requests through a node,
// following redirects, and what each answer says of the operation's effect
// (acknowledged, failed without effect, unknown); then, with the clients
// stopped, the barrier write, the final reads and the checks of the recorded
// history. What differs between the tests (which operations, keys and nodes
// the clients choose) stays in each test.
#pragma once

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "cluster.hpp"
#include "linearizability.hpp"

namespace kvtest {

/// How a client's operation ended.
enum class fate {
  acked,    ///< answered 200 or 404: it took effect, and a read's result is known
  failed,   ///< never reached a server, or answered as not applied: no effect
  unknown,  ///< no answer, 504, or 503 without X-Outcome: not-applied: it may have taken effect
};

/// What an answer (other than a redirect) says of a request's effect:
/// 200/404 acknowledged; 503 with X-Outcome: not-applied, or 421 (misdirected:
/// not executed), failed; 504, or another 503, unknown. Nothing for an answer
/// no request should get.
inline std::optional<fate> classify(int status, std::string_view x_outcome) {
  if (status == 200 || status == 404) return fate::acked;
  if ((status == 503 && x_outcome == "not-applied") || status == 421) return fate::failed;
  if (status == 504 || status == 503) return fate::unknown;
  return std::nullopt;
}

/// One operation of a client's history (a test derives its own to add fields).
struct record {
  operation op;             // kind, value, result and times, as the linearizability check needs them
  std::string key;
  std::uint64_t client = 0; // X-Client-Id: op.client + 1
  std::uint64_t seq = 0;    // writes only: X-Request-Id
  fate f = fate::failed;
  int status = 0;           // the last HTTP status; negative: unexpected (-307: a redirect to no known node)
};

/// A client thread: its random choices, its request ids and its connections
/// to the nodes (one each, opened on first use).
class client {
 public:
  /// Client `index` (0-based) of a run with `seed`.
  client(const cluster& cl, int index, std::uint64_t seed)
      : rng(seed * 1000003 + static_cast<std::uint64_t>(index)), cl_(cl), index_(index) {}

  std::mt19937_64 rng;  // every random choice of this client

  [[nodiscard]] std::uint64_t id() const { return static_cast<std::uint64_t>(index_) + 1; }

  /// Makes `r` this client's next operation, of kind `k`. A write gets the
  /// next request id - never one of an earlier write, even one that got no
  /// answer (it may have taken effect: its id would be deduplicated) - and a
  /// put the value "c<client>-<seq>", written by no other operation.
  void prepare(record& r, operation::kind k) {
    r.op.k = k;
    r.op.client = index_;
    r.client = id();
    if (k == operation::kind::get) return;
    r.seq = ++seq_;
    if (k == operation::kind::put) r.op.value = "c" + std::to_string(id()) + "-" + std::to_string(r.seq);
  }

  /// Sends `r`'s operation on /kv/KEY`query` through `node` (0: none, so it
  /// fails), following up to 4 redirects, and records in `r` the call and
  /// return times, how it ended and, acknowledged, its result.
  void perform(record& r, std::uint64_t node, const std::string& query = {}) {
    const bool write = r.op.k != operation::kind::get;
    const std::string method = !write ? "GET" : r.op.k == operation::kind::put ? "PUT" : "DELETE";
    const std::string path = "/kv/" + r.key + query;
    const std::string headers =
        write ? "X-Client-Id: " + std::to_string(r.client) + "\r\nX-Request-Id: " + std::to_string(r.seq) + "\r\n"
              : std::string();
    r.op.call = kv::now_us();
    for (int hop = 0; hop < 5 && node != 0; ++hop) {
      auto res = conn(node).request(method, path, r.op.value, headers, 2500);
      if (res.what == kv::http_client::outcome::not_sent) break;  // never reached a server: failed
      if (res.what == kv::http_client::outcome::no_response) {
        r.f = fate::unknown;
        break;
      }
      r.status = res.resp.status;
      if (r.status == 307) {
        auto u = kv::parse_url(res.resp.header("location"));
        node = u ? cl_.id_of_http_port(u->first.port) : 0;
        if (node == 0) r.status = -307;
        continue;
      }
      if (const auto f = classify(r.status, res.resp.header("x-outcome"))) {
        r.f = *f;
      } else {
        r.f = fate::failed;
        r.status = -r.status;  // unexpected: reported by tally()
      }
      if (r.f == fate::acked) {
        r.op.found = r.status == 200;
        if (r.op.k == operation::kind::get) r.op.out = res.resp.body;
      }
      break;
    }
    r.op.ret = kv::now_us();
    r.op.known = r.f == fate::acked;
  }

  /// The pause after an operation: `d`, and 20 ms more if it was not acknowledged.
  static void pause(const record& r, std::chrono::microseconds d) {
    std::this_thread::sleep_for(d);
    if (r.f != fate::acked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

 private:
  kv::http_client& conn(std::uint64_t id) {
    auto& p = conns_[id];
    if (!p) p = std::make_unique<kv::http_client>(cl_.http(id));
    return *p;
  }

  const cluster& cl_;
  int index_;
  std::uint64_t seq_ = 0;
  std::map<std::uint64_t, std::unique_ptr<kv::http_client>> conns_;
};

/// The histories of all clients, one after the other.
template <class R>
std::vector<R> merge(const std::vector<std::vector<R>>& hist) {
  std::vector<R> all;
  for (const auto& h : hist) all.insert(all.end(), h.begin(), h.end());
  return all;
}

struct history_counts {
  std::size_t acked = 0, acked_writes = 0, acked_reads = 0, failed = 0, unknown = 0;
};

/// Counts a history's operations by how they ended; fails for every answer
/// no request should get.
template <class R>
history_counts tally(const std::vector<R>& all) {
  static_assert(std::is_base_of_v<record, R>);
  history_counts n;
  for (const record& r : all) {
    if (r.status < 0) fail("client %" PRIu64 " got unexpected status %d", r.client, -r.status);
    if (r.f == fate::acked) {
      ++n.acked;
      (r.op.k == operation::kind::get ? n.acked_reads : n.acked_writes)++;
    }
    n.failed += r.f == fate::failed;
    n.unknown += r.f == fate::unknown;
  }
  return n;
}

/// Acknowledged writes that returned in (from, to), times in microseconds.
template <class R>
std::size_t acked_writes_between(const std::vector<R>& all, std::int64_t from, std::int64_t to) {
  static_assert(std::is_base_of_v<record, R>);
  std::size_t n = 0;
  for (const record& r : all)
    if (r.f == fate::acked && r.op.k != operation::kind::get && r.op.ret > from && r.op.ret < to) ++n;
  return n;
}

/// Whether `r` goes into its key's history for the linearizability check:
/// not if it failed without effect, nor a read that got no answer (it
/// changed nothing).
inline bool checked(const record& r) {
  return r.f == fate::acked || (r.f == fate::unknown && r.op.k != operation::kind::get);
}

/// A write through the leader among `ids` (up to 50 attempts) that every
/// node must apply before the end-of-run checks; its log index, or 0.
inline std::uint64_t barrier_write(const cluster& cl, const std::vector<std::uint64_t>& ids) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (const std::uint64_t leader = cl.wait_leader(ids, 5000); leader != 0) {
      kv::http_client c(cl.http(leader));
      auto r = c.request("PUT", "/kv/__barrier", "x", {}, 3000);
      if (r.what == kv::http_client::outcome::ok && r.resp.status == 200)
        return std::strtoull(r.resp.header("x-raft-index").c_str(), nullptr, 10);
    }
    ::usleep(100 * 1000);
  }
  return 0;
}

/// Waits until node `id` applied `index`, at most until `deadline_ms`
/// (kv::now_ms()); returns the last applied index it reported.
inline std::uint64_t wait_applied(const cluster& cl, std::uint64_t id, std::uint64_t index, std::int64_t deadline_ms) {
  std::uint64_t applied = 0;
  while (kv::now_ms() < deadline_ms) {
    auto s = cl.status(id);
    if (s && (applied = s->applied) >= index) break;
    ::usleep(50 * 1000);
  }
  return applied;
}

/// A linearizable read of `key` through the leader among `ids`, tried up to
/// `attempts` times, as the last operation of the key's history (client -1);
/// nothing if no attempt was answered 200 or 404.
inline std::optional<operation> final_read(const cluster& cl, const std::vector<std::uint64_t>& ids,
                                           const std::string& key, int attempts) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const std::uint64_t leader = cl.wait_leader(ids, 5000);
    if (leader == 0) continue;
    operation fin;
    fin.k = operation::kind::get;
    fin.client = -1;
    kv::http_client c(cl.http(leader));
    fin.call = kv::now_us();
    auto r = c.request("GET", "/kv/" + key, {}, {}, 3000);
    fin.ret = kv::now_us();
    if (r.what == kv::http_client::outcome::ok && (r.resp.status == 200 || r.resp.status == 404)) {
      fin.found = r.resp.status == 200;
      fin.out = r.resp.body;
      return fin;
    }
  }
  return std::nullopt;
}

/// Checks the history of each key; a failing one is written to
/// DIR/history-KEY.txt (the cluster's data directory, then kept).
inline void check_linearizable(const cluster& cl, const std::map<std::string, std::vector<operation>>& per_key) {
  for (const auto& [key, ops] : per_key) {
    const std::int64_t s = kv::now_ms();
    auto res = check_register(ops, 20'000'000);
    say("linearizability of %-8s: %4zu ops -> %s (%" PRIu64 " steps, %" PRId64 " ms)", key.c_str(), ops.size(),
        res.exhausted ? "INCONCLUSIVE" : res.linearizable ? "ok" : "NOT LINEARIZABLE", res.steps, kv::now_ms() - s);
    if (res.linearizable) continue;
    fail("history of key %s is %s", key.c_str(), res.exhausted ? "too hard to check (step budget)" : "not linearizable");
    const std::string file = cl.dir() + "/history-" + key + ".txt";
    if (FILE* f = std::fopen(file.c_str(), "w")) {
      for (const auto& o : ops)
        std::fprintf(f, "client %d %s %s call %" PRId64 " ret %" PRId64 " %s found=%d out=%s\n", o.client,
                     o.k == operation::kind::put ? "put" : o.k == operation::kind::get ? "get" : "del", o.value.c_str(),
                     o.call, o.known ? o.ret : -1, o.known ? "known" : "unknown", o.found ? 1 : 0, o.out.c_str());
      std::fclose(f);
      say("history written to %s", file.c_str());
    }
  }
}

}  // namespace kvtest
