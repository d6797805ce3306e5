// tests/kv/membership.cpp - end-to-end test of membership changes in
// kv-server, driven through kv-cli, while clients read and write.
//
//   kv-membership PATH-TO-kv-server PATH-TO-kv-cli [--seed N] [--keep] [--witness]
//
// Default scenario (ctest kv.membership):
//   1. nodes 1-3 found the cluster; four client threads start reading and
//      writing through random members (following redirects);
//   2. grow 3 -> 5: nodes 4 and 5 start with `kv-server --join` (their
//      --peers name only themselves), `kv-cli add-learner` adds them,
//      `kv-cli wait-caught-up` waits for their lag to fall, `kv-cli promote`
//      makes them voters. With --snapshot-every 50 the leader has compacted
//      its log long before: they catch up by InstallSnapshot, and learn the
//      founders' addresses from the snapshot and the handshakes;
//   3. replace a dead node: kill -9 the leader; a new node 6 joins, is added
//      as a learner, catches up, is promoted; the dead node is removed;
//   4. shrink 5 -> 3: remove the leader (it steps down once its removal
//      commits) and one more voter; each removed node must say in /status
//      that it is no longer a member; then it is stopped;
//   5. node 6 (which joined) is restarted without --join and comes back as
//      a voter; `kv-server --join` on its data directory is refused.
// Then, with the clients stopped: the final configuration is the expected 3
// voters; every node of it applied a barrier write; their committed logs
// agree; every acknowledged write of a unique key is readable (through the
// leader and in each member's local store); the history of each register
// key is linearizable (tests/kv/linearizability.hpp); writes were
// acknowledged during every phase; no server logged FATAL.
//
// --witness (ctest kv.witness): nodes 1 and 2 found a cluster, node 3 joins
// and is added as a witness. The witness holds no data (/status keys 0, its
// snapshots hold no data, GETs to it are redirected); with the follower full
// node killed the leader and the witness keep committing; restarted, then
// with the leader killed the other full node is elected (with the witness's
// vote) and commits. The same history checks follow.
//
// Every random choice derives from the seed printed first (--seed replays
// the client choices; the timing of processes is not replayable).
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client.hpp"

using kvtest::fail;
using kvtest::fate;
using kvtest::operation;
using kvtest::say;

namespace {

struct record : kvtest::record {
  bool unique = false;  // a put of a key written once (checked readable at the end)
};

const std::vector<std::string> registers = {"alpha", "beta", "gamma", "delta"};

/// The nodes clients may talk to (members that run), shared with the test.
struct targets {
  std::mutex mu;
  std::vector<std::uint64_t> ids;
  void set(std::vector<std::uint64_t> v) {
    std::lock_guard<std::mutex> g(mu);
    ids = std::move(v);
  }
  std::uint64_t pick(std::mt19937_64& rng) {
    std::lock_guard<std::mutex> g(mu);
    return ids.empty() ? 0 : ids[rng() % ids.size()];
  }
};

void client_loop(int c, std::uint64_t seed, kvtest::cluster& cl, targets& tg, std::atomic<bool>& stop,
                 std::vector<record>& out) {
  kvtest::client cli(cl, c, seed);
  while (!stop.load()) {
    record r;
    const auto dice = cli.rng() % 100;
    if (dice < 25) {
      r.unique = true;
      cli.prepare(r, operation::kind::put);
      r.key = "u" + std::to_string(cli.id()) + "-" + std::to_string(r.seq);
    } else {
      r.key = registers[cli.rng() % registers.size()];
      cli.prepare(r, dice < 60 ? operation::kind::put : operation::kind::get);
    }
    cli.perform(r, tg.pick(cli.rng));
    out.push_back(std::move(r));
    kvtest::client::pause(out.back(), std::chrono::microseconds(1000 + cli.rng() % 4000));
  }
}

std::string server_list(const kvtest::cluster& cl, const std::vector<std::uint64_t>& ids) {
  std::string s;
  for (auto id : ids) s.append(s.empty() ? "" : ",").append(cl.http_addr(id));
  return s;
}

/// Runs kv-cli with `args` against `servers`; returns its exit status and output.
std::pair<int, std::string> cli(const std::string& kv_cli, const std::string& servers, const std::string& args) {
  const std::string cmd = kv_cli + " --servers " + servers + " --timeout-ms 20000 " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

/// A kv-cli step that must succeed.
bool step(const std::string& kv_cli, const std::string& servers, const std::string& args) {
  const std::int64_t t0 = kv::now_ms();
  auto [rc, out] = cli(kv_cli, servers, args);
  std::string last = out.substr(out.rfind('\n', out.size() >= 2 ? out.size() - 2 : 0) + (out.size() >= 2 ? 1 : 0));
  say("kv-cli %s -> %d after %" PRId64 " ms: %s", args.c_str(), rc, kv::now_ms() - t0,
      last.empty() ? "" : last.substr(0, last.find('\n')).c_str());
  if (rc != 0) fail("kv-cli %s failed (%d): %s", args.c_str(), rc, out.c_str());
  return rc == 0;
}

/// The voters list of a /status body, sorted.
std::vector<std::uint64_t> voters_of(const std::string& status) {
  std::vector<std::uint64_t> v;
  const auto at = status.find("\"configuration\":{\"voters\":[");
  if (at == std::string::npos) return v;
  std::istringstream in(status.substr(at + 27, status.find(']', at) - at - 27));
  std::string tok;
  while (std::getline(in, tok, ','))
    if (!tok.empty()) v.push_back(std::strtoull(tok.c_str(), nullptr, 10));
  std::sort(v.begin(), v.end());
  return v;
}

/// Waits until node `id` says `member` in its /status.
bool wait_member(const kvtest::cluster& cl, std::uint64_t id, const std::string& member, int ms) {
  const std::int64_t end = kv::now_ms() + ms;
  std::string last;
  while (kv::now_ms() < end) {
    if (auto s = cl.status_body(id, 1000)) {
      last = kvtest::json_field(*s, "member");
      if (last == member) return true;
    }
    ::usleep(50 * 1000);
  }
  fail("node %" PRIu64 " says member \"%s\", expected \"%s\"", id, last.c_str(), member.c_str());
  return false;
}

struct phase {
  std::string what;
  std::int64_t from = 0, to = 0;  // us
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: kv-membership PATH-TO-kv-server PATH-TO-kv-cli [--seed N] [--keep] [--witness]\n");
    return 2;
  }
  const std::string kv_cli = argv[2];
  std::uint64_t seed = static_cast<std::uint64_t>(kv::now_us());
  bool keep = false, witness = false;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--keep") keep = true;
    else if (a == "--witness") witness = true;
    else {
      std::fprintf(stderr, "kv-membership: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  say("kv-membership%s seed %" PRIu64 " (replay the client choices with --seed %" PRIu64 ")", witness ? " --witness" : "",
      seed, seed);
  ::signal(SIGPIPE, SIG_IGN);
  constexpr std::uint64_t snapshot_every = 50;
  const std::vector<std::string> args = {"--tick-ms", "10", "--election-ticks", "20", "--request-timeout-ms", "2000",
                                         "--snapshot-every", std::to_string(snapshot_every), "--seed",
                                         std::to_string(seed)};
  const std::size_t founders = witness ? 2 : 3;
  kvtest::cluster cl(argv[1], witness ? 3 : 6, args, founders);
  if (keep) cl.keep_dir();
  for (std::uint64_t id = 1; id <= founders; ++id) cl.start(id);
  std::vector<std::uint64_t> members;
  for (std::uint64_t id = 1; id <= founders; ++id) members.push_back(id);
  std::uint64_t leader = cl.wait_leader(members, 10000);
  if (leader == 0) {
    fail("no leader elected within 10 s");
    cl.keep_dir();
    return 1;
  }
  say("cluster of %zu up in %s, leader is node %" PRIu64, founders, cl.dir().c_str(), leader);

  targets tg;
  tg.set(members);
  std::atomic<bool> stop{false};
  constexpr int n_clients = 4;
  std::vector<std::vector<record>> hist(n_clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < n_clients; ++c)
    threads.emplace_back(client_loop, c, seed, std::ref(cl), std::ref(tg), std::ref(stop),
                         std::ref(hist[static_cast<std::size_t>(c)]));
  std::vector<phase> phases;
  auto begin_phase = [&](const std::string& what) {
    if (!phases.empty()) phases.back().to = kv::now_us();
    phases.push_back({what, kv::now_us(), 0});
    say("--- %s", what.c_str());
  };
  auto running_members = [&] {
    std::vector<std::uint64_t> v;
    for (auto id : members)
      if (cl.running(id)) v.push_back(id);
    return v;
  };
  auto servers = [&] { return server_list(cl, running_members()); };
  auto expect_voters = [&](std::vector<std::uint64_t> want) {
    std::sort(want.begin(), want.end());
    const std::uint64_t l = cl.wait_leader(running_members(), 10000);
    auto s = l ? cl.status_body(l, 1000) : std::nullopt;
    if (!s) return fail("no leader to ask for the configuration");
    const auto got = voters_of(*s);
    std::string g, w;
    for (auto id : got) (g += ' ') += std::to_string(id);  // not " " + ...: g++ 12 -O3 warns falsely
    for (auto id : want) (w += ' ') += std::to_string(id);
    if (got != want) fail("the leader's voters are [%s ], expected [%s ]", g.c_str(), w.c_str());
    else say("configuration: voters [%s ] (leader %" PRIu64 ")", g.c_str(), l);
  };
  ::usleep(1500 * 1000);  // writes enough for the leader to have compacted

  std::vector<std::uint64_t> joined_by_snapshot;
  if (!witness) {
    // 2. Grow 3 -> 5.
    begin_phase("grow 3 -> 5: nodes 4 and 5 join as learners, catch up, are promoted");
    for (std::uint64_t id : {4, 5}) {
      cl.start(id);
      step(kv_cli, servers(), "add-learner " + std::to_string(id) + " " + cl.raft_addr(id) + " " + cl.http_addr(id));
    }
    for (std::uint64_t id : {4, 5}) {
      step(kv_cli, servers(), "wait-caught-up " + std::to_string(id) + " 20");
      wait_member(cl, id, "learner", 5000);
      step(kv_cli, servers(), "promote " + std::to_string(id));
      members.push_back(id);
      wait_member(cl, id, "voter", 5000);
    }
    tg.set(running_members());
    expect_voters({1, 2, 3, 4, 5});
    joined_by_snapshot = {4, 5};
    ::usleep(1000 * 1000);

    // 3. Replace a dead node.
    begin_phase("replace a dead node: kill -9 the leader, node 6 joins and is promoted, the dead one removed");
    const std::uint64_t dead = cl.wait_leader(running_members(), 10000);
    if (dead == 0) fail("no leader before the kill");
    say("kill -9 leader node %" PRIu64, dead);
    cl.kill(dead, SIGKILL);
    tg.set(running_members());
    cl.start(6);
    step(kv_cli, servers(), "add-learner 6 " + cl.raft_addr(6) + " " + cl.http_addr(6));
    step(kv_cli, servers(), "wait-caught-up 6 20");
    step(kv_cli, servers(), "promote 6");
    members.push_back(6);
    wait_member(cl, 6, "voter", 5000);
    step(kv_cli, servers(), "remove " + std::to_string(dead));
    std::erase(members, dead);
    tg.set(running_members());
    joined_by_snapshot.push_back(6);
    expect_voters(members);
    ::usleep(1000 * 1000);

    // 4. Shrink 5 -> 3: the leader first, then another old voter.
    begin_phase("shrink 5 -> 3: remove the leader, then another voter");
    for (int k = 0; k < 2; ++k) {
      std::uint64_t victim = cl.wait_leader(running_members(), 10000);
      if (k == 1) {
        // A founder that is not the leader (if any), else any non-leader.
        for (auto id : members)
          if (id != victim && id <= 3) {
            victim = id;
            break;
          }
      }
      if (victim == 0) {
        fail("no leader before removal %d", k + 1);
        break;
      }
      say("removing node %" PRIu64 "%s", victim, k == 0 ? " (the leader)" : "");
      std::erase(members, victim);
      tg.set(running_members());
      step(kv_cli, servers(), "remove " + std::to_string(victim));
      wait_member(cl, victim, "removed", 5000);
      cl.kill(victim, SIGTERM);
      if (!cl.wait_exit(victim, 5000)) cl.kill(victim, SIGKILL);
    }
    expect_voters(members);
    ::usleep(1000 * 1000);

    // 5. A joined node restarts without --join (DATA/joined: no bootstrap),
    //    and --join on a directory that holds data is refused.
    begin_phase("restart joined node 6 without --join; --join refused on a used data directory");
    {
      const std::string cmd = std::string(argv[1]) + " --join --id 6 --peers 6=" + cl.raft_addr(6) + " --listen " +
                              cl.http_addr(6) + " --data " + cl.dir() + "/n6 2>&1";
      FILE* p = ::popen(cmd.c_str(), "r");
      std::string out;
      char buf[1024];
      std::size_t n = 0;
      while (p != nullptr && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      const int st = p != nullptr ? ::pclose(p) : -1;
      if (!WIFEXITED(st) || WEXITSTATUS(st) == 0 || out.find("--join needs an empty") == std::string::npos)
        fail("kv-server --join on node 6's data directory was not refused (status %d): %s", st, out.c_str());
      else say("--join on a used data directory refused: %s", out.substr(out.find("FATAL")).c_str());
    }
    cl.kill(6, SIGTERM);
    if (!cl.wait_exit(6, 5000)) cl.kill(6, SIGKILL);
    tg.set(running_members());
    ::usleep(300 * 1000);
    cl.start(6);  // cluster.hpp: without --join this time
    tg.set(running_members());
    wait_member(cl, 6, "voter", 5000);
    if (cl.read_log(6).find("joining an existing cluster") != cl.read_log(6).rfind("joining an existing cluster"))
      fail("node 6 restarted as a joining node");
    step(kv_cli, servers(), "wait-caught-up 6 20");
    ::usleep(1000 * 1000);
  } else {
    // Witness: 2 full nodes + 1 witness.
    begin_phase("add node 3 as a witness");
    cl.start(3);
    step(kv_cli, servers(), "add-witness 3 " + cl.raft_addr(3) + " " + cl.http_addr(3));
    members.push_back(3);
    wait_member(cl, 3, "witness", 5000);
    step(kv_cli, servers(), "wait-caught-up 3 20");
    expect_voters({1, 2, 3});
    ::usleep(1000 * 1000);
    for (int k = 0; k < 2; ++k) {
      const std::uint64_t l = cl.wait_leader(running_members(), 10000);
      if (l == 0 || l == 3) {
        fail("no leader (or the witness leads: %" PRIu64 ")", l);
        break;
      }
      const std::uint64_t victim = k == 0 ? (l == 1 ? 2 : 1) : l;
      begin_phase(k == 0 ? "the follower full node is down: leader + witness commit"
                         : "the leader is down: the other full node leads with the witness's vote");
      say("kill -9 node %" PRIu64 " (%s)", victim, k == 0 ? "follower" : "leader");
      cl.kill(victim, SIGKILL);
      tg.set(running_members());
      ::usleep(3000 * 1000);
      const std::uint64_t nl = cl.wait_leader(running_members(), 5000);
      if (nl == 0 || nl == 3) fail("with node %" PRIu64 " down the leader is %" PRIu64, victim, nl);
      phases.back().to = kv::now_us();
      cl.start(victim);
      tg.set(running_members());
      ::usleep(1500 * 1000);
    }
    begin_phase("all three up");
    ::usleep(1000 * 1000);
  }
  phases.back().to = kv::now_us();
  stop = true;
  for (auto& t : threads) t.join();
  say("clients stopped");

  // Quiesce: a barrier write through the leader, applied by every member.
  const std::uint64_t final_leader = cl.wait_leader(running_members(), 10000);
  const std::uint64_t barrier = final_leader != 0 ? kvtest::barrier_write(cl, running_members()) : 0;
  if (barrier == 0) {
    fail("barrier write failed");
    cl.keep_dir();
    return 1;
  }
  for (auto id : members) {
    const std::uint64_t applied = kvtest::wait_applied(cl, id, barrier, kv::now_ms() + 15000);
    if (applied < barrier) fail("node %" PRIu64 " applied only %" PRIu64 " of barrier %" PRIu64, id, applied, barrier);
  }

  // The history.
  const std::vector<record> all = kvtest::merge(hist);
  const auto h = kvtest::tally(all);
  say("history: %zu operations, %zu acknowledged (%zu writes, %zu reads), %zu unknown", all.size(), h.acked,
      h.acked_writes, h.acked_reads, h.unknown);
  if (h.acked_writes < 100) fail("only %zu acknowledged writes: the run proves little", h.acked_writes);
  if (h.acked_reads < 50) fail("only %zu answered GETs: the reads are barely checked", h.acked_reads);
  for (const auto& p : phases) {
    const std::size_t n = kvtest::acked_writes_between(all, p.from, p.to);  // the clients' writes are all PUTs
    say("availability: %zu writes acknowledged during \"%s\" (%.1f s)", n, p.what.c_str(),
        static_cast<double>(p.to - p.from) / 1e6);
    if (n == 0) fail("no write acknowledged during \"%s\"", p.what.c_str());
  }

  // Every acknowledged unique write is readable: through the leader (a
  // linearizable read) and in every member's local store.
  std::size_t unique_checked = 0, unique_missing = 0;
  {
    kv::http_client lc(cl.http(cl.wait_leader(running_members(), 5000)));
    std::map<std::uint64_t, std::unique_ptr<kv::http_client>> local;
    for (const auto& r : all) {
      if (!r.unique || r.f != fate::acked) continue;
      ++unique_checked;
      auto g = lc.request("GET", "/kv/" + r.key, {}, {}, 3000);
      if (g.what != kv::http_client::outcome::ok || g.resp.status != 200 || g.resp.body != r.op.value) {
        if (++unique_missing <= 5)
          fail("acknowledged write %s=%s is not readable through the leader (%d %s)", r.key.c_str(), r.op.value.c_str(),
               g.resp.status, g.resp.body.c_str());
        continue;
      }
      for (auto id : members) {
        if (witness && id == 3) continue;
        auto& c = local[id];
        if (!c) c = std::make_unique<kv::http_client>(cl.http(id));
        auto l = c->request("GET", "/debug/local/" + r.key, {}, {}, 3000);
        if (l.what != kv::http_client::outcome::ok || l.resp.status != 200 || l.resp.body != r.op.value)
          if (++unique_missing <= 5)
            fail("acknowledged write %s=%s is missing from node %" PRIu64 "'s store", r.key.c_str(), r.op.value.c_str(), id);
      }
    }
  }
  say("durability: %zu acknowledged unique writes checked on the leader and %zu members, %zu missing", unique_checked,
      members.size(), unique_missing);
  if (unique_checked < 20) fail("only %zu acknowledged unique writes", unique_checked);

  // The committed logs of the members agree (where both applied an entry).
  std::vector<std::vector<std::string>> logs;
  for (auto id : members) {
    auto lines = cl.committed(id);
    if (!lines) {
      fail("cannot fetch node %" PRIu64 "'s committed log", id);
      continue;
    }
    logs.push_back(std::move(*lines));
  }
  std::size_t compared = 0;
  for (std::size_t k = 1; k < logs.size(); ++k)
    for (std::size_t i = 0; i < std::min(logs[0].size(), logs[k].size()); ++i) {
      const auto& a = logs[0][i];
      const auto& b = logs[k][i];
      auto skip = [](const std::string& l) {
        return l.find(" - ") != std::string::npos || l.find(" nopayload") != std::string::npos;
      };
      if (skip(a) || skip(b)) continue;
      // A witness journals commands without their payload.
      ++compared;
      if (a != b) {
        fail("committed logs differ at index %zu: '%s' vs '%s'", i + 1, a.c_str(), b.c_str());
        break;
      }
    }
  say("committed logs: %zu (index, node) pairs compared", compared);

  // Linearizability of each register key, with a final read.
  std::map<std::string, std::vector<operation>> per_key;
  for (const auto& r : all)
    if (!r.unique && kvtest::checked(r)) per_key[r.key].push_back(r.op);
  for (const auto& key : registers) {
    if (auto fin = kvtest::final_read(cl, running_members(), key, 1)) per_key[key].push_back(*fin);
    else fail("final read of %s failed", key.c_str());
  }
  kvtest::check_linearizable(cl, per_key);

  // Scenario-specific checks.
  if (!witness) {
    for (auto id : joined_by_snapshot) {
      const std::string log = cl.read_log(id);
      if (log.find("restored the store from a snapshot received from the leader") == std::string::npos)
        fail("node %" PRIu64 " joined without installing a snapshot (the leader should have compacted)", id);
      if (log.find("from its handshake") == std::string::npos && log.find("from the snapshot") == std::string::npos)
        fail("node %" PRIu64 " (started knowing only itself) never learned an address", id);
    }
  } else {
    auto s = cl.status_body(3, 1000);
    if (!s) fail("no /status from the witness");
    else {
      if (kvtest::json_field(*s, "keys") != "0") fail("the witness holds %s keys", kvtest::json_field(*s, "keys").c_str());
      if (kvtest::json_field(*s, "snapshot_bytes") != "0")
        fail("the witness's snapshot holds %s bytes", kvtest::json_field(*s, "snapshot_bytes").c_str());
      if (kvtest::json_field(*s, "snapshot_index") == "0") fail("the witness never compacted its log");
      if (kvtest::json_field(*s, "role") == "leader") fail("the witness leads");
      say("witness: %s keys, snapshot at index %s with %s bytes", kvtest::json_field(*s, "keys").c_str(),
          kvtest::json_field(*s, "snapshot_index").c_str(), kvtest::json_field(*s, "snapshot_bytes").c_str());
    }
    kv::http_client c(cl.http(3));
    auto r = c.request("GET", "/kv/alpha", {}, {}, 2000);
    if (r.what != kv::http_client::outcome::ok || r.resp.status != 307)
      fail("a GET to the witness was answered %d, not redirected to the leader", r.resp.status);
  }

  kvtest::stop_gracefully(cl, members);
  kvtest::scan_logs(cl, {"store is incomplete", "undecodable command"});
  return kvtest::verdict(cl, "kv-membership", seed);
}
