// tests/kv/liveness.cpp - end-to-end liveness of kv-server: PreVote,
// CheckQuorum, leadership transfer and the answers clients get when a leader
// loses its quorum.
//
//   kv-liveness PATH-TO-kv-server [--seed N] [--keep] [--slack-ms N] [--server-arg ARG]...
//
// A 3-node cluster on loopback, --tick-ms 10 --election-ticks 20: the
// election timeout is 200 ms, randomised in [200, 400) ms; heartbeats every
// 20 ms; --request-timeout-ms 5000. Steps and what each asserts:
//   1. follower restarts: five times, SIGKILL a follower and restart it; after
//      each, once it caught up and a further 500 ms (more than an election
//      timeout) passed, the leader is still leader in the same term (PreVote
//      and leader stickiness: a rejoining node never raises the term);
//   2. transfer: POST /admin/transfer?to=N on the leader answers 202, node N
//      leads within 2 s, and the old leader's /status reports the transfer
//      "succeeded"; the endpoint answers 409 on a follower and 400 for a
//      node that is not a member; GET ?lease=1 without --lease-reads is 400;
//   3. partition: POST /debug/isolate?on=1 on the leader, then at once a GET
//      and a PUT to it. Asserts: the GET gets 503 "not leader" and the PUT
//      503 "leadership lost" (or "not leader"/"no leader" if it arrived after
//      the step-down) within 1 s + slack - far below the 5 s request timeout;
//      the old leader steps down within 1 election timeout (200 ms) + slack
//      (CheckQuorum: one timeout after it last heard from a quorum); a GET
//      and a PUT whose
//      clients closed their connections before the step-down are discarded
//      (reads_failed counts both reads, nothing is left pending, the
//      process lives);
//      a new leader among the two others within 2 * 400 ms + slack (two
//      maximal randomised election timeouts); the isolated node's term does
//      not move while it is cut off (PreVote); after the switch is off again
//      it rejoins as a follower without deposing the new leader.
//   4. lease reads: a second cluster with --lease-reads; its leader is cut
//      off while a client keeps sending it lease GETs and the two others
//      elect a new leader that writes k=v2. Asserts that no lease GET on the
//      old leader that began after v2 was acknowledged returned the old
//      value, and that the old leader served none later than one election
//      timeout (200 ms) after the cut (its lease is 200 - 2 * 10 ms long).
// Slack (default 300 ms) covers status polling and scheduling on a loaded
// 2-core machine. A sanitizer report or FATAL line in any server log fails.
// Bounded: about 10 s.
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cluster.hpp"

using kvtest::fail;
using kvtest::say;

namespace {

struct answer {
  int status = 0;  // 0: no answer
  std::string reason, outcome, body, error;
  std::int64_t ms = 0;
};

answer ask(const kv::endpoint& ep, const std::string& method, const std::string& path, const std::string& body = {},
           const std::string& headers = {}, int timeout_ms = 8000) {
  kv::http_client c(ep);
  answer a;
  const std::int64_t t0 = kv::now_ms();
  auto r = c.request(method, path, body, headers, timeout_ms);
  a.ms = kv::now_ms() - t0;
  if (r.what != kv::http_client::outcome::ok) {
    a.error = r.error;
    return a;
  }
  a.status = r.resp.status;
  a.reason = r.resp.header("x-reason");
  a.outcome = r.resp.header("x-outcome");
  a.body = r.resp.body;
  while (!a.body.empty() && a.body.back() == '\n') a.body.pop_back();
  return a;
}

/// A PUT through the given node (the leader); true on 200.
bool put(const kvtest::cluster& cl, std::uint64_t node, const std::string& key, const std::string& value) {
  const answer a = ask(cl.http(node), "PUT", "/kv/" + key, value, {}, 3000);
  return a.status == 200;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kv-liveness PATH-TO-kv-server [--seed N] [--keep] [--slack-ms N] [--server-arg ARG]...\n");
    return 2;
  }
  std::uint64_t seed = static_cast<std::uint64_t>(kv::now_us());
  bool keep = false;
  std::int64_t slack = 300;
  std::vector<std::string> server_args;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--keep") keep = true;
    else if (a == "--slack-ms" && i + 1 < argc) slack = std::atoll(argv[++i]);
    else if (a == "--server-arg" && i + 1 < argc) server_args.emplace_back(argv[++i]);
    else {
      std::fprintf(stderr, "kv-liveness: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  constexpr int tick_ms = 10, election_ticks = 20;
  constexpr std::int64_t election_ms = tick_ms * election_ticks;  // 200 ms, randomised in [200, 400)
  constexpr std::int64_t max_election_ms = 2 * election_ms;       // 400 ms
  constexpr int request_timeout_ms = 5000;
  say("kv-liveness seed %" PRIu64 "; election timeout %" PRId64 " ms, randomised in [%" PRId64 ", %" PRId64
      ") ms; request timeout %d ms; slack %" PRId64 " ms",
      seed, election_ms, election_ms, max_election_ms, request_timeout_ms, slack);
  std::vector<std::string> args = {"--tick-ms", std::to_string(tick_ms), "--election-ticks", std::to_string(election_ticks),
                                   "--heartbeat-ticks", "2", "--request-timeout-ms", std::to_string(request_timeout_ms),
                                   "--seed", std::to_string(seed)};
  args.insert(args.end(), server_args.begin(), server_args.end());
  kvtest::cluster cl(argv[1], 3, args);
  if (keep) cl.keep_dir();
  for (std::uint64_t id = 1; id <= 3; ++id) cl.start(id);
  std::uint64_t leader = cl.wait_leader(10000);
  if (leader == 0) {
    fail("no leader elected within 10 s");
    cl.keep_dir();
    return 1;
  }
  if (!put(cl, leader, "warmup", "1")) fail("first PUT through leader %" PRIu64 " failed", leader);
  say("cluster up in %s, leader is node %" PRIu64, cl.dir().c_str(), leader);

  // ------------------------------------------------ 1. follower restarts
  {
    const auto s0 = cl.status(leader);
    const std::uint64_t term0 = s0 ? s0->term : 0;
    for (int round = 0; round < 5; ++round) {
      const std::uint64_t f = (leader + static_cast<std::uint64_t>(round % 2)) % 3 + 1;  // alternate the two followers
      if (!put(cl, leader, "restart-" + std::to_string(round), "x")) fail("PUT before restart %d failed", round);
      cl.kill(f, SIGKILL);
      ::usleep(100 * 1000);
      cl.start(f);
      // Caught up: it knows the leader and applied the leader's commit.
      const auto ls = cl.status(leader);
      const std::uint64_t want = ls ? ls->commit : 0;
      const std::int64_t end = kv::now_ms() + 5000;
      bool caught_up = false;
      while (!caught_up && kv::now_ms() < end) {
        auto s = cl.status(f);
        caught_up = s && s->leader == leader && s->applied >= want;
        if (!caught_up) ::usleep(20 * 1000);
      }
      if (!caught_up) fail("restart %d: node %" PRIu64 " did not catch up with leader %" PRIu64 " within 5 s", round, f, leader);
      ::usleep(500 * 1000);  // more than an election timeout: a disruption would show now
      const auto s = cl.status(leader);
      if (!s || s->role != "leader" || s->term != term0)
        fail("restart %d of follower %" PRIu64 ": leader %" PRIu64 " is now %s in term %" PRIu64 " (was leader in term %" PRIu64
             ")",
             round, f, leader, s ? s->role.c_str() : "unreachable", s ? s->term : 0, term0);
      else
        say("restart %d of follower %" PRIu64 ": leader %" PRIu64 " still leads in term %" PRIu64, round, f, leader, s->term);
    }
  }

  // ------------------------------------------------------- 2. transfer
  {
    const std::uint64_t follower = leader % 3 + 1;
    // Refusals first: a follower is not the leader; node 9 is not a member.
    const answer nl = ask(cl.http(follower), "POST", "/admin/transfer?to=" + std::to_string(leader));
    if (nl.status != 409) fail("transfer on follower %" PRIu64 ": got %d '%s', want 409", follower, nl.status, nl.body.c_str());
    const answer bad = ask(cl.http(leader), "POST", "/admin/transfer?to=9");
    if (bad.status != 400) fail("transfer to node 9: got %d '%s', want 400", bad.status, bad.body.c_str());
    const answer lease = ask(cl.http(leader), "GET", "/kv/warmup?lease=1");
    if (lease.status != 400) fail("GET ?lease=1 without --lease-reads: got %d '%s', want 400", lease.status, lease.body.c_str());
    const auto before = cl.status(leader);
    const std::int64_t t0 = kv::now_ms();
    const answer a = ask(cl.http(leader), "POST", "/admin/transfer?to=" + std::to_string(follower));
    say("POST /admin/transfer?to=%" PRIu64 " on leader %" PRIu64 ": %d %s", follower, leader, a.status, a.body.c_str());
    if (a.status != 202) fail("transfer: got %d '%s', want 202", a.status, a.body.c_str());
    bool moved = false;
    while (!moved && kv::now_ms() < t0 + 2000) {
      auto s = cl.status(follower);
      moved = s && s->role == "leader";
      if (!moved) ::usleep(10 * 1000);
    }
    const std::int64_t took = kv::now_ms() - t0;
    if (!moved) fail("transfer: node %" PRIu64 " does not lead 2 s after the request", follower);
    else say("transfer: node %" PRIu64 " leads after %" PRId64 " ms", follower, took);
    std::string outcome;
    for (int i = 0; i < 50 && outcome != "succeeded"; ++i) {
      const std::string body = cl.status_body(leader).value_or("");
      const auto at = body.find("\"transfer\":{");
      outcome = at == std::string::npos ? std::string() : kvtest::json_field(body.substr(at + 11), "outcome");
      if (outcome != "succeeded") ::usleep(20 * 1000);
    }
    if (outcome != "succeeded") fail("old leader %" PRIu64 "'s /status reports the transfer as '%s', want succeeded", leader, outcome.c_str());
    const auto after = cl.status(follower);
    if (before && after && after->term != before->term + 1)
      say("note: term went from %" PRIu64 " to %" PRIu64 " over the transfer", before->term, after->term);
    if (moved) leader = follower;
    if (!put(cl, leader, "after-transfer", "y")) fail("PUT through the new leader %" PRIu64 " failed", leader);
  }

  // ------------------------------------------------------ 3. partition
  {
    const auto s0 = cl.status(leader);
    const std::uint64_t old_term = s0 ? s0->term : 0;
    answer get_a, put_a;
    const answer iso = ask(cl.http(leader), "POST", "/debug/isolate?on=1");
    const std::int64_t t0 = kv::now_ms();
    if (iso.status != 200) fail("isolate: got %d '%s'", iso.status, iso.body.c_str());
    say("isolated leader %" PRIu64 " (term %" PRIu64 ")", leader, old_term);
    // Two clients that give up at once: a GET and a PUT sent, then the
    // connection closed. The server must discard their answers when the
    // node fails them (checked below through /status and the process).
    for (const char* req : {"GET /kv/warmup HTTP/1.1\r\nHost: x\r\n\r\n",
                            "PUT /kv/gone HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\ng"}) {
      const int fd = kv::connect_with_timeout(cl.http(leader), 1000);
      if (fd < 0) {
        fail("cannot connect to the isolated leader");
        continue;
      }
      kv::write_all(fd, req, std::strlen(req), kv::now_ms() + 1000);
      ::usleep(20 * 1000);  // let the server take it before the client goes
      ::close(fd);
    }
    std::thread g([&] { get_a = ask(cl.http(leader), "GET", "/kv/warmup"); });
    std::thread p([&] {
      put_a = ask(cl.http(leader), "PUT", "/kv/partitioned", "z", "X-Client-Id: 77\r\nX-Request-Id: 1\r\n");
    });
    // The two others elect a new leader; the old one steps down.
    std::uint64_t new_leader = 0;
    std::int64_t elected_ms = -1, down_ms = -1;
    while (kv::now_ms() < t0 + 3000 && (new_leader == 0 || down_ms < 0)) {
      for (std::uint64_t id = 1; id <= 3 && new_leader == 0; ++id) {
        if (id == leader) continue;
        auto s = cl.status(id, 200);
        if (s && s->role == "leader") {
          new_leader = id;
          elected_ms = kv::now_ms() - t0;
        }
      }
      if (down_ms < 0) {
        auto s = cl.status(leader, 200);
        if (s && s->role != "leader") down_ms = kv::now_ms() - t0;
      }
      ::usleep(10 * 1000);
    }
    g.join();
    p.join();
    say("GET to the isolated leader: %d (X-Reason %s) after %" PRId64 " ms: %s", get_a.status, get_a.reason.c_str(),
        get_a.ms, get_a.body.c_str());
    say("PUT to the isolated leader: %d (X-Reason %s, X-Outcome %s) after %" PRId64 " ms: %s", put_a.status,
        put_a.reason.c_str(), put_a.outcome.c_str(), put_a.ms, put_a.body.c_str());
    say("new leader: node %" PRIu64 " after %" PRId64 " ms (bound %" PRId64 " ms); old leader stepped down after %" PRId64
        " ms (bound %" PRId64 " ms)",
        new_leader, elected_ms, 2 * max_election_ms + slack, down_ms, election_ms + slack);
    if (new_leader == 0) fail("no new leader among the other nodes within 3 s of isolating the leader");
    else if (elected_ms > 2 * max_election_ms + slack)
      fail("new leader after %" PRId64 " ms, above the bound of 2 x %" PRId64 " ms + %" PRId64 " ms", elected_ms,
           max_election_ms, slack);
    if (down_ms < 0) fail("the isolated leader did not step down within 3 s");
    else if (down_ms > election_ms + slack)
      fail("the isolated leader stepped down after %" PRId64 " ms, above the bound of %" PRId64 " ms + %" PRId64 " ms",
           down_ms, election_ms, slack);
    const std::int64_t answer_bound = 1000 + slack;
    if (get_a.status != 503 || get_a.reason != "not-leader")
      fail("GET to the isolated leader: got %d (X-Reason '%s', %s) '%s', want 503 not-leader", get_a.status,
           get_a.reason.c_str(), get_a.error.c_str(), get_a.body.c_str());
    if (get_a.ms > answer_bound)
      fail("GET to the isolated leader answered after %" PRId64 " ms (bound %" PRId64 " ms, request timeout %d ms)",
           get_a.ms, answer_bound, request_timeout_ms);
    const bool put_definite = put_a.status == 503 && (put_a.reason == "leadership-lost" || put_a.reason == "not-leader" ||
                                                      put_a.outcome == "not-applied");
    if (!put_definite)
      fail("PUT to the isolated leader: got %d (X-Reason '%s', X-Outcome '%s', %s) '%s', want 503 leadership-lost",
           put_a.status, put_a.reason.c_str(), put_a.outcome.c_str(), put_a.error.c_str(), put_a.body.c_str());
    if (put_a.ms > answer_bound)
      fail("PUT to the isolated leader answered after %" PRId64 " ms (bound %" PRId64 " ms, request timeout %d ms)",
           put_a.ms, answer_bound, request_timeout_ms);
    // A request arriving now at the old leader: definite "no leader"/"not leader" at once.
    const answer late = ask(cl.http(leader), "GET", "/kv/warmup", {}, {}, 3000);
    say("GET to the old leader after its step-down: %d after %" PRId64 " ms: %s", late.status, late.ms, late.body.c_str());
    if (late.status != 503 && late.status != 307 && late.status != 421)
      fail("GET to the stepped-down leader: got %d '%s', want a redirect or 503", late.status, late.body.c_str());
    if (late.ms > 500) fail("GET to the stepped-down leader took %" PRId64 " ms", late.ms);
    {
      const std::string body = cl.status_body(leader).value_or("");
      const auto failed_reads = std::strtoull(kvtest::json_field(body, "reads_failed").c_str(), nullptr, 10);
      const auto pending_reads = kvtest::json_field(body, "pending_reads");
      const auto pending_writes = kvtest::json_field(body, "pending_writes");
      say("old leader: reads_failed %llu, pending_reads %s, pending_writes %s", failed_reads, pending_reads.c_str(),
          pending_writes.c_str());
      if (!cl.alive(leader)) fail("the old leader died after its clients went away");
      if (failed_reads < 2) fail("the old leader failed %llu reads, want 2 (one of them abandoned by its client)", failed_reads);
      if (pending_reads != "0" || pending_writes != "0")
        fail("the old leader still holds reads (%s) or writes (%s) after stepping down", pending_reads.c_str(),
             pending_writes.c_str());
    }
    // PreVote: cut off, it never raises its term.
    ::usleep(static_cast<useconds_t>(3 * max_election_ms * 1000));
    const auto iso_s = cl.status(leader);
    if (!iso_s || iso_s->term != old_term)
      fail("the isolated node's term moved from %" PRIu64 " to %" PRIu64 " while cut off (PreVote should prevent it)",
           old_term, iso_s ? iso_s->term : 0);
    else
      say("isolated node %" PRIu64 " is %s, term still %" PRIu64, leader, iso_s->role.c_str(), iso_s->term);
    // Heal: it rejoins as a follower; the new leader keeps its term.
    const auto nl0 = new_leader != 0 ? cl.status(new_leader) : std::nullopt;
    const answer heal = ask(cl.http(leader), "POST", "/debug/isolate?on=0");
    if (heal.status != 200) fail("heal: got %d '%s'", heal.status, heal.body.c_str());
    if (new_leader != 0 && nl0) {
      bool rejoined = false;
      const std::int64_t end = kv::now_ms() + 3000;
      while (!rejoined && kv::now_ms() < end) {
        auto s = cl.status(leader);
        rejoined = s && s->role == "follower" && s->leader == new_leader;
        if (!rejoined) ::usleep(20 * 1000);
      }
      if (!rejoined) fail("node %" PRIu64 " did not rejoin as a follower of node %" PRIu64 " within 3 s", leader, new_leader);
      ::usleep(500 * 1000);
      const auto nl1 = cl.status(new_leader);
      if (!nl1 || nl1->role != "leader" || nl1->term != nl0->term)
        fail("after the heal node %" PRIu64 " is %s in term %" PRIu64 " (was leader in term %" PRIu64 ")", new_leader,
             nl1 ? nl1->role.c_str() : "unreachable", nl1 ? nl1->term : 0, nl0->term);
      else
        say("healed: node %" PRIu64 " follows node %" PRIu64 ", which still leads in term %" PRIu64, leader, new_leader,
            nl1->term);
      if (!put(cl, new_leader, "after-heal", "w")) fail("PUT after the heal failed");
    }
  }

  auto finish = [&](kvtest::cluster& c) {
    kvtest::stop_gracefully(c, c.ids());
    kvtest::scan_logs(c, {"raft did not fail every pending read"});
  };
  finish(cl);

  // ------------------------------------- 4. lease reads across a partition
  {
    std::vector<std::string> largs = args;
    largs.emplace_back("--lease-reads");
    kvtest::cluster lc(argv[1], 3, largs);
    if (keep) lc.keep_dir();
    for (std::uint64_t id = 1; id <= 3; ++id) lc.start(id);
    const std::uint64_t ll = lc.wait_leader(10000);
    if (ll == 0) {
      fail("lease cluster: no leader within 10 s");
    } else if (!put(lc, ll, "k", "v1")) {
      fail("lease cluster: PUT k=v1 failed");
    } else {
      ::usleep(100 * 1000);  // heartbeats acknowledged: the lease holds
      const answer warm = ask(lc.http(ll), "GET", "/kv/k?lease=1", {}, {}, 2000);
      if (warm.status != 200 || warm.body != "v1")
        fail("lease cluster: lease GET before the partition: %d '%s'", warm.status, warm.body.c_str());
      // Cut the leader off and read from it in a loop, with leases, while
      // the others elect a new leader that writes k=v2. No lease read the old
      // leader serves may begin after v2 was acknowledged.
      ask(lc.http(ll), "POST", "/debug/isolate?on=1");
      const std::int64_t t0 = kv::now_us();
      std::atomic<bool> stop{false};
      struct got {
        std::int64_t call = 0, ret = 0;
        int status = 0;
        std::string body;
      };
      std::vector<got> reads;
      std::thread reader([&] {
        kv::http_client c(lc.http(ll));
        while (!stop.load()) {
          got g;
          g.call = kv::now_us();
          auto r = c.request("GET", "/kv/k?lease=1", {}, {}, 3000);
          g.ret = kv::now_us();
          if (r.what == kv::http_client::outcome::ok) {
            g.status = r.resp.status;
            g.body = r.resp.body;
          }
          reads.push_back(g);
          if (g.status != 200) ::usleep(5 * 1000);
        }
      });
      std::uint64_t nl = 0;
      std::int64_t v2_acked = 0;
      while (kv::now_us() < t0 + 3'000'000 && v2_acked == 0) {
        for (std::uint64_t id = 1; id <= 3 && nl == 0; ++id)
          if (id != ll)
            if (auto st = lc.status(id, 200); st && st->role == "leader") nl = id;
        if (nl != 0 && put(lc, nl, "k", "v2")) v2_acked = kv::now_us();
        else ::usleep(10 * 1000);
      }
      ::usleep(600 * 1000);  // past the old leader's step-down
      stop = true;
      reader.join();
      std::int64_t last_served = -1;
      std::size_t served = 0, stale = 0, refused = 0;
      for (const auto& g : reads) {
        if (g.status == 200) {
          ++served;
          last_served = std::max<std::int64_t>(last_served, (g.ret - t0) / 1000);
          if (v2_acked != 0 && g.call > v2_acked && g.body != "v2") ++stale;
        } else {
          ++refused;
        }
      }
      say("lease reads on the isolated leader: %zu served (the last one answered %" PRId64
          " ms after the cut), %zu refused; new leader %" PRIu64 " acknowledged k=v2 %" PRId64 " ms after the cut",
          served, last_served, refused, nl, v2_acked == 0 ? -1 : (v2_acked - t0) / 1000);
      if (v2_acked == 0) fail("lease cluster: no new leader acknowledged k=v2 within 3 s of the cut");
      if (stale != 0) fail("lease cluster: %zu lease reads on the old leader began after k=v2 was acknowledged and returned v1", stale);
      if (last_served > election_ms)
        fail("lease cluster: the isolated leader served a lease read %" PRId64 " ms after the cut (lease: under %" PRId64
             " ms)", last_served, election_ms);
      if (refused == 0) fail("lease cluster: the isolated leader never refused a read");
    }
    finish(lc);
  }

  return kvtest::verdict(cl, "liveness", seed);
}
