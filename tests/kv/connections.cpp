// tests/kv/connections.cpp - connection handling of a live kv-server cluster.
//
//   kv-connections PATH-TO-kv-server
//
// Starts 3 nodes and checks:
//   1. one-request connections: PUT, GET and DELETE sent to the leader over
//      a raw socket as HTTP/1.0 (curl -0, Python's urllib) and as HTTP/1.1
//      with "Connection: close" each get their whole answer - status line,
//      headers, Content-Length bytes of body - and then the server closes
//      the connection. (The server used to mark such a connection dead while
//      the write was still waiting for its commit: the write was applied and
//      the client got an empty reply.) Also HTTP/1.0 with keep-alive, and a
//      follower's redirect over HTTP/1.0.
//   2. a restarted follower hears from the leader at once: a follower is
//      SIGKILLed, stays down 4 s while writes go on (long enough for the
//      leader's reconnect back-off to reach its 2 s maximum), and is
//      restarted; its /status must name the leader well within one election
//      timeout of the restart, its log must catch up, and the leader and its
//      term must be unchanged (the follower never timed out and started an
//      election). Twice, once per follower. (The leader used to dial the
//      restarted node only after its back-off, so the node timed out and
//      deposed the healthy leader on every restart.)
// Exit status 0 on success; about 15 s.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cluster.hpp"

using kvtest::say;

namespace {

int failures = 0;
void check(bool ok, const std::string& what, const std::string& on_failure = {}) {
  std::printf("%s: %s%s\n", ok ? "ok  " : "FAIL", what.c_str(), ok || on_failure.empty() ? "" : (" - " + on_failure).c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

constexpr int tick_ms = 10;
constexpr int election_ticks = 30;  // election timeout: 300 to 600 ms
constexpr int min_election_timeout_ms = tick_ms * election_ticks;

struct raw_answer {
  bool closed = false;  // the server closed the connection after the answer
  std::string all;      // every byte received
  int status = 0;
  std::string head;  // status line and headers
  std::string body;  // exactly Content-Length bytes, if that many arrived
  bool complete = false;  // head and the whole body arrived
};

/// Sends `request` on a fresh connection and reads until the server closes
/// it (or `timeout_ms` passes).
raw_answer raw_exchange(const kv::endpoint& ep, const std::string& request, int timeout_ms = 5000) {
  raw_answer a;
  const int fd = kv::connect_with_timeout(ep, 2000);
  if (fd < 0) return a;
  kv::write_all(fd, request.data(), request.size(), kv::now_ms() + 2000);
  const std::int64_t end = kv::now_ms() + timeout_ms;
  char buf[4096];
  while (kv::now_ms() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(1, end - kv::now_ms()))) != 1) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      a.closed = n == 0;
      break;
    }
    a.all.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto he = a.all.find("\r\n\r\n");
  if (a.all.rfind("HTTP/1.1 ", 0) != 0 || he == std::string::npos) return a;
  a.status = std::atoi(a.all.c_str() + 9);
  a.head = a.all.substr(0, he + 2);
  const std::string lower = kv::to_lower(a.head);
  const auto cl = lower.find("\r\ncontent-length:");
  if (cl == std::string::npos) return a;
  const std::size_t len = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
  if (a.all.size() - he - 4 < len) return a;
  a.body = a.all.substr(he + 4, len);
  a.complete = true;
  return a;
}

bool has_header(const raw_answer& a, const std::string& line) {
  return kv::to_lower(a.head).find("\r\n" + kv::to_lower(line) + "\r\n") != std::string::npos;
}

void one_shot_case(const kvtest::cluster& cl, std::uint64_t node, const std::string& name, const std::string& request,
                   int status, const std::string& body) {
  const auto a = raw_exchange(cl.http(node), request);
  check(a.complete && a.status == status && a.body == body, name + ": whole answer " + std::to_string(status),
        "got " + std::to_string(a.all.size()) + " bytes: \"" + a.all.substr(0, 160) + "\"");
  check(has_header(a, "Connection: close"), name + ": the answer says Connection: close");
  check(a.closed && a.all.size() == a.head.size() + 2 + a.body.size(),
        name + ": then the server closes the connection, nothing more");
}

std::string http10(const std::string& method, const std::string& path, const std::string& body = {},
                   const std::string& headers = {}) {
  std::string r = method + " " + path + " HTTP/1.0\r\nHost: test\r\n" + headers;
  if (method == "PUT") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}
std::string http11_close(const std::string& method, const std::string& path, const std::string& body = {}) {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n";
  if (method == "PUT") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

void one_request_connections(kvtest::cluster& cl, std::uint64_t leader) {
  say("1. one-request connections to the leader (node %" PRIu64 ")", leader);
  one_shot_case(cl, leader, "HTTP/1.0 PUT", http10("PUT", "/kv/old", "one-oh"), 200, "OK\n");
  one_shot_case(cl, leader, "HTTP/1.0 GET", http10("GET", "/kv/old"), 200, "one-oh");
  one_shot_case(cl, leader, "HTTP/1.1 Connection: close PUT", http11_close("PUT", "/kv/closing", "bye"), 200, "OK\n");
  one_shot_case(cl, leader, "HTTP/1.1 Connection: close GET", http11_close("GET", "/kv/closing"), 200, "bye");
  one_shot_case(cl, leader, "HTTP/1.0 DELETE", http10("DELETE", "/kv/old"), 200, "deleted\n");
  one_shot_case(cl, leader, "HTTP/1.0 GET of a missing key", http10("GET", "/kv/old"), 404, "key not found\n");
  {
    // The answers were real: the writes are visible through a keep-alive client.
    kv::http_client c(cl.http(leader));
    auto r = c.request("GET", "/kv/closing", {}, {}, 3000);
    check(r.what == kv::http_client::outcome::ok && r.resp.status == 200 && r.resp.body == "bye",
          "the Connection: close write is applied");
  }
  {
    // HTTP/1.0 with keep-alive: both answers on one connection, each saying keep-alive.
    const std::string two = http10("PUT", "/kv/ka", "1", "Connection: keep-alive\r\n") +
                            http10("GET", "/kv/ka", {}, "Connection: keep-alive\r\n");
    const auto a = raw_exchange(cl.http(leader), two, 1500);
    const auto second = a.all.find("HTTP/1.1 200 OK", 1);
    check(a.complete && a.status == 200 && has_header(a, "Connection: keep-alive") && second != std::string::npos &&
              a.all.substr(a.all.size() - 1) == "1",
          "HTTP/1.0 keep-alive: two answers on one connection", "got \"" + a.all + "\"");
    check(!a.closed, "HTTP/1.0 keep-alive: the connection stays open");
  }
  const std::uint64_t follower = leader % 3 + 1;
  const auto r = raw_exchange(cl.http(follower), http10("PUT", "/kv/x", "y"));
  check(r.complete && r.status == 307 && has_header(r, "Connection: close") && r.closed,
        "HTTP/1.0 PUT to a follower: whole 307 redirect, then close");
}

std::uint64_t put(const kvtest::cluster& cl, std::uint64_t leader, const std::string& key, const std::string& value) {
  kv::http_client c(cl.http(leader));
  auto r = c.request("PUT", "/kv/" + key, value, {}, 3000);
  if (r.what != kv::http_client::outcome::ok || r.resp.status != 200) return 0;
  return std::strtoull(r.resp.header("x-raft-index").c_str(), nullptr, 10);
}

void restarted_follower_reconnects(kvtest::cluster& cl, std::uint64_t leader) {
  const auto before = cl.status(leader);
  if (!before) return check(false, "status of the leader");
  say("2. restart each follower; leader is node %" PRIu64 " in term %" PRIu64, leader, before->term);
  int n = 0;
  for (std::uint64_t f = 1; f <= 3; ++f) {
    if (f == leader) continue;
    say("SIGKILL follower node %" PRIu64 "; writes go on for 4 s", f);
    cl.kill(f, SIGKILL);
    std::uint64_t last = 0;
    const std::int64_t down_until = kv::now_ms() + 4000;
    while (kv::now_ms() < down_until) {
      if (const std::uint64_t i = put(cl, leader, "while-down-" + std::to_string(f), std::to_string(++n)); i != 0) last = i;
      ::usleep(100 * 1000);
    }
    check(last != 0, "writes succeed while node " + std::to_string(f) + " is down");
    const std::int64_t t0 = kv::now_ms();
    cl.start(f);
    std::int64_t heard = -1, caught_up = -1;
    while (kv::now_ms() - t0 < 3000 && (heard < 0 || caught_up < 0)) {
      if (auto s = cl.status(f, 200)) {
        if (heard < 0 && s->leader == leader) heard = kv::now_ms() - t0;
        if (caught_up < 0 && s->applied >= last) caught_up = kv::now_ms() - t0;
      }
      ::usleep(5 * 1000);
    }
    auto ms = [](std::int64_t t) { return t < 0 ? std::string("never (3 s)") : std::to_string(t) + " ms"; };
    say("node %" PRIu64 " restarted: knows the leader after %s, applied index %" PRIu64 " after %s", f, ms(heard).c_str(),
        last, ms(caught_up).c_str());
    check(heard >= 0 && heard < min_election_timeout_ms,
          "restarted node " + std::to_string(f) + " hears from the leader within " +
              std::to_string(min_election_timeout_ms) + " ms, less than its election timeout",
          "took " + ms(heard));
    check(caught_up >= 0 && caught_up < 2 * min_election_timeout_ms,
          "restarted node " + std::to_string(f) + " catches up within " + std::to_string(2 * min_election_timeout_ms) +
              " ms",
          "took " + ms(caught_up));
    const auto now = cl.status(leader);
    check(now && now->role == "leader" && now->term == before->term,
          "node " + std::to_string(leader) + " is still leader in term " + std::to_string(before->term) + " (now " +
              (now ? now->role + " in term " + std::to_string(now->term) : std::string("no status")) + ")");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kv-connections PATH-TO-kv-server\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  kvtest::cluster cl(argv[1], 3,
                     {"--tick-ms", std::to_string(tick_ms), "--election-ticks", std::to_string(election_ticks)});
  for (std::uint64_t id = 1; id <= 3; ++id) cl.start(id);
  const std::uint64_t leader = cl.wait_leader(10000);
  if (leader == 0) {
    cl.keep_dir();
    std::printf("FAIL: no leader\n");
    return 1;
  }
  one_request_connections(cl, leader);
  restarted_follower_reconnects(cl, leader);

  for (std::uint64_t id = 1; id <= 3; ++id) cl.kill(id, SIGTERM);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    auto st = cl.wait_exit(id, 5000);
    check(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0, "node " + std::to_string(id) + " shuts down cleanly on SIGTERM");
  }
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const std::string log = cl.read_log(id);
    for (const char* bad : {"runtime error:", "AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "FATAL", "raft invariant broken"})
      if (log.find(bad) != std::string::npos) check(false, "node " + std::to_string(id) + "'s log contains \"" + bad + "\"");
  }
  if (failures != 0) {
    cl.keep_dir();
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all connection checks passed\n");
  return 0;
}
