// tests/kv/e2e.cpp - end-to-end test of kv-server, Jepsen style.
//
//   kv-e2e PATH-TO-kv-server [--seed N] [--seconds S] [--keep] [--lease] [--server-arg ARG]...
//
// Starts a 3-node cluster on loopback (free ports, data in a temp dir; each
// --server-arg is added to every kv-server's command line, e.g.
// `--server-arg --durability --server-arg sync`). Six
// client threads read, write and delete a handful of keys through random
// nodes, following redirects, and record every operation: invocation and
// completion time, and the result - or "unknown" when no answer came
// (timeout, connection reset). Meanwhile the nemesis
//   1. crashes the leader as a power failure would (SIGUSR1 with --debug:
//      the server exits leaving its log without the records not yet
//      fdatasynced - with asynchronous durability, the entries its writer
//      thread had not flushed yet), later restarts it;
//   2. does the same to a follower while the clients keep writing, later
//      restarts it;
//   3. SIGTERMs a follower (must exit 0: graceful shutdown) and restarts it;
//   4. SIGKILLs the leader (a process crash, anywhere in its loop) and
//      restarts it at once;
//   5. crashes all three at once as a power failure would, while the
//      clients write, and restarts them: every acknowledged write must have
//      been durable on a majority, so none may be lost.
// The servers snapshot their store and compact their logs every 50 applied
// entries (--snapshot-every 50), so the follower of step 2 is too far behind
// when it comes back for the leader's log: it must be brought up to date by
// InstallSnapshot.
// Then, with the clients stopped and every node caught up, it checks:
//   * the committed logs of all nodes are identical (state machine safety) -
//     as journalled by each node while applying (--debug), compaction aside:
//     an index a node only received inside a snapshot is skipped;
//   * every acknowledged write is in every node's committed log, exactly once
//     (or, on a node that got it inside a snapshot, in another node's log);
//   * snapshots were taken, the restarted follower installed one from the
//     leader, and the segment files of every node stayed below a bound
//     (sampled during the whole run) while the cluster applied thousands of
//     entries;
//   * no write the server said was not applied (503 X-Outcome: not-applied,
//     or a redirect) is in any log;
//   * every node's local state equals a final linearizable read, key by key;
//   * the history of each key, final reads included, is linearizable
//     (Wing-Gong search with memoisation, tests/kv/linearizability.hpp);
//   * the cluster stayed available while a single node was down.
// GETs are ReadIndex reads (kv-server's default --reads index: no log entry),
// so the history checks them against concurrent writes; the run asserts that
// no GET reached a committed log (unless --server-arg --reads --server-arg
// log). With --lease (and --server-arg --lease-reads) half the GETs ask for a
// lease read (?lease=1) and are checked the same way.
// Exit status 0 on success. Bounded: about 25 s.
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <map>
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
  bool lease = false;  // a GET that asked for a lease read
};

const std::vector<std::string> keys = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};

bool use_lease = false;  // --lease: half the GETs are lease reads

void client_loop(int c, std::uint64_t seed, kvtest::cluster& cl, std::atomic<bool>& stop, std::vector<record>& out) {
  kvtest::client cli(cl, c, seed);
  while (!stop.load()) {
    record r;
    r.key = keys[cli.rng() % keys.size()];
    const auto dice = cli.rng() % 100;
    cli.prepare(r, dice < 45 ? operation::kind::put : dice < 92 ? operation::kind::get : operation::kind::del);
    const std::uint64_t node = 1 + cli.rng() % cl.size();
    r.lease = use_lease && r.op.k == operation::kind::get && cli.rng() % 2 == 0;
    cli.perform(r, node, r.lease ? "?lease=1" : "");
    out.push_back(std::move(r));
    kvtest::client::pause(out.back(), std::chrono::microseconds(cli.rng() % 3000));
  }
}

/// Parses /debug/committed: index -> line, and (client, seq) -> count and index.
struct committed_log {
  std::vector<std::string> lines;
  std::vector<bool> in_snapshot;  // [i]: index i + 1 reached this node only inside a snapshot
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> writes;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> index_of;
  std::size_t snapshot_lines = 0, bad_lines = 0;
  std::size_t gets = 0;  // GET entries (only with --reads log)
};

std::optional<committed_log> fetch_committed(kvtest::cluster& cl, std::uint64_t id) {
  auto lines = cl.committed(id);
  if (!lines) return std::nullopt;
  committed_log log;
  for (const std::string& line : *lines) {
    log.lines.push_back(line);
    std::istringstream f(line);
    std::string idx, term, kind, op;
    std::uint64_t client = 0, seq = 0;
    f >> idx >> term >> kind;
    log.in_snapshot.push_back(term == "-" && kind == "snapshot");
    if (log.in_snapshot.back()) ++log.snapshot_lines;
    else if (term == "-" && ++log.bad_lines <= 3) fail("node %" PRIu64 "'s committed log: %s", id, line.c_str());
    if (kind == "cmd" && (f >> op >> client >> seq) && op == "get") ++log.gets;
    else if (kind == "cmd" && op != "get" && client != 0) {
      ++log.writes[{client, seq}];
      log.index_of[{client, seq}] = std::strtoull(idx.c_str(), nullptr, 10);
    }
  }
  return log;
}

/// Bytes in node `id`'s segment files right now (files may vanish while we look).
std::uint64_t segment_bytes(const kvtest::cluster& cl, std::uint64_t id) {
  std::uint64_t n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(cl.dir() + "/n" + std::to_string(id), ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() != ".seg") continue;
    std::error_code ec2;
    const auto size = std::filesystem::file_size(it->path(), ec2);
    if (!ec2) n += size;
  }
  return n;
}

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kv-e2e PATH-TO-kv-server [--seed N] [--seconds S] [--keep]\n");
    return 2;
  }
  std::uint64_t seed = static_cast<std::uint64_t>(kv::now_us());
  double seconds = 13;
  bool keep = false;
  std::vector<std::string> server_args;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (a == "--keep") keep = true;
    else if (a == "--lease") use_lease = true;
    else if (a == "--server-arg" && i + 1 < argc) server_args.emplace_back(argv[++i]);
    else {
      std::fprintf(stderr, "kv-e2e: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  say("kv-e2e seed %" PRIu64 " (replay the client choices with --seed %" PRIu64 ")", seed, seed);
  ::signal(SIGPIPE, SIG_IGN);
  constexpr std::uint64_t snapshot_every = 50;
  // Segment files per node, at most: entries since the previous snapshot
  // (twice snapshot_every, about 60 bytes each) plus what is in flight, and
  // the zeros written ahead in each segment (a chunk of at least 4 KiB, as
  // large as the segment up to 1 MiB): about 16 KiB seen. Without compaction
  // a node ends the run with about 10 000 entries in its segments, roughly
  // 600 KB (and 1 MiB of zeros written ahead).
  constexpr std::uint64_t segment_bound = 32 * 1024;
  std::vector<std::string> args = {"--tick-ms", "10", "--election-ticks", "20", "--request-timeout-ms", "2000",
                                   "--snapshot-every", std::to_string(snapshot_every), "--seed", std::to_string(seed)};
  args.insert(args.end(), server_args.begin(), server_args.end());
  std::string shown;
  for (const auto& a : server_args) shown += " " + a;
  if (!shown.empty()) say("kv-server extra arguments:%s", shown.c_str());
  kvtest::cluster cl(argv[1], 3, args);
  if (keep) cl.keep_dir();
  for (std::uint64_t id = 1; id <= 3; ++id) cl.start(id);
  const std::uint64_t first_leader = cl.wait_leader(10000);
  if (first_leader == 0) {
    fail("no leader elected within 10 s");
    cl.keep_dir();
    return 1;
  }
  say("cluster up in %s, leader is node %" PRIu64, cl.dir().c_str(), first_leader);

  std::atomic<bool> stop{false};
  constexpr int n_clients = 6;
  std::vector<std::vector<record>> hist(n_clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < n_clients; ++c)
    threads.emplace_back(client_loop, c, seed, std::ref(cl), std::ref(stop), std::ref(hist[static_cast<std::size_t>(c)]));

  const std::int64_t t0 = kv::now_us();
  std::vector<std::uint64_t> max_segment_bytes(4, 0);
  std::int64_t next_sample = 0;
  auto sample_disk = [&] {
    for (std::uint64_t id = 1; id <= 3; ++id) max_segment_bytes[id] = std::max(max_segment_bytes[id], segment_bytes(cl, id));
  };
  auto at = [&](double s) {
    const std::int64_t target = t0 + static_cast<std::int64_t>(s * seconds / 13.0 * 1e6);
    while (kv::now_us() < target) {
      if (kv::now_us() >= next_sample) {
        sample_disk();
        next_sample = kv::now_us() + 100000;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  struct window {
    const char* what;
    std::int64_t from = 0, to = 0;
  };
  std::vector<window> outages;

  auto power_loss = [&](std::uint64_t id) {
    if (!cl.power_loss(id)) fail("node %" PRIu64 " did not exit through the simulated power failure (SIGUSR1)", id);
  };
  // 1. Crash the leader (power failure), restart it.
  at(1.5);
  std::uint64_t victim = cl.wait_leader(5000);
  if (victim == 0) fail("no leader before the first kill");
  else {
    say("nemesis: power failure of leader node %" PRIu64, victim);
    power_loss(victim);
    outages.push_back({"leader crashed", kv::now_us(), 0});
    at(4.0);
    outages.back().to = kv::now_us();
    say("nemesis: restart node %" PRIu64, victim);
    cl.start(victim);
  }
  // 2. Crash a follower mid-write (power failure), restart it (by then the
  //    leader has compacted away what it missed: it comes back through
  //    InstallSnapshot).
  std::uint64_t revived = 0;
  std::size_t revived_log_from = 0;
  at(5.5);
  const std::uint64_t leader2 = cl.wait_leader(5000);
  if (leader2 == 0) fail("no leader after restarting the old leader");
  else {
    std::uint64_t follower = leader2 % 3 + 1;
    if (follower == victim) follower = follower % 3 + 1;
    if (follower == leader2) follower = follower % 3 + 1;
    say("nemesis: power failure of follower node %" PRIu64 " (leader is %" PRIu64 ") while clients write", follower,
        leader2);
    power_loss(follower);
    outages.push_back({"follower crashed", kv::now_us(), 0});
    at(8.5);
    outages.back().to = kv::now_us();
    say("nemesis: restart node %" PRIu64, follower);
    revived = follower;
    revived_log_from = cl.read_log(follower).size();
    cl.start(follower);
  }
  // 3. Graceful shutdown of a follower (SIGTERM must end it with status 0), restart.
  at(9.5);
  if (const std::uint64_t leader3 = cl.wait_leader(5000); leader3 != 0) {
    const std::uint64_t follower = (leader3 + 1) % 3 + 1;
    say("nemesis: SIGTERM follower node %" PRIu64, follower);
    cl.kill(follower, SIGTERM);
    auto st = cl.wait_exit(follower, 5000);
    if (!st) fail("node %" PRIu64 " did not exit within 5 s of SIGTERM", follower);
    else if (!WIFEXITED(*st) || WEXITSTATUS(*st) != 0) fail("node %" PRIu64 " exited with status %d after SIGTERM", follower, *st);
    if (!st) cl.kill(follower, SIGKILL);
    cl.start(follower);
  } else {
    fail("no leader before the SIGTERM step");
  }
  // 4. A process crash of the leader, restarted at once.
  at(10.5);
  if (const std::uint64_t leader4 = cl.wait_leader(3000); leader4 != 0) {
    say("nemesis: SIGKILL leader node %" PRIu64 " and restart it", leader4);
    cl.kill(leader4, SIGKILL);
    cl.start(leader4);
  } else {
    fail("no leader before the last SIGKILL");
  }
  // 5. A power failure of the whole cluster mid-write; everything restarts.
  at(11.5);
  if (cl.wait_leader(3000) == 0) fail("no leader before the cluster-wide power failure");
  say("nemesis: power failure of all three nodes while clients write");
  if (const std::size_t n = cl.power_loss_all(); n != 3)
    fail("only %zu of 3 nodes exited through the simulated power failure", n);
  for (std::uint64_t id = 1; id <= 3; ++id) cl.start(id);
  at(13.0);
  stop = true;
  for (auto& t : threads) t.join();
  say("clients stopped");

  // Quiesce: a barrier write through the leader, then wait for every node to apply it.
  const std::uint64_t leader = cl.wait_leader(10000);
  if (leader == 0) {
    fail("no leader after the run");
    cl.keep_dir();
    return 1;
  }
  const std::uint64_t barrier = kvtest::barrier_write(cl, cl.ids());
  if (barrier == 0) fail("barrier write failed");
  const std::int64_t catch_up_end = kv::now_ms() + 15000;
  for (std::uint64_t id = 1; id <= 3; ++id) kvtest::wait_applied(cl, id, barrier, catch_up_end);

  // Gather the history.
  std::vector<record> all = kvtest::merge(hist);
  const auto h = kvtest::tally(all);
  say("history: %zu operations, %zu acknowledged (%zu writes), %zu failed without effect, %zu unknown", all.size(),
      h.acked, h.acked_writes, h.failed, h.unknown);
  if (h.acked_writes < 100) fail("only %zu acknowledged writes: the run proves little", h.acked_writes);
  std::size_t acked_lease_reads = 0;
  for (const auto& r : all) acked_lease_reads += r.f == fate::acked && r.lease;
  say("reads: %zu GETs answered, %zu of them lease reads", h.acked_reads, acked_lease_reads);
  if (h.acked_reads < 100) fail("only %zu answered GETs: the reads are barely checked", h.acked_reads);
  if (use_lease && acked_lease_reads < 50) fail("only %zu answered lease reads", acked_lease_reads);
  for (const auto& w : outages) {
    const std::size_t n = kvtest::acked_writes_between(all, w.from + 200000, w.to);
    say("availability: %zu writes acknowledged while %s", n, w.what);
    if (n == 0) fail("no write succeeded while %s: the majority should have stayed available", w.what);
  }

  // Committed logs.
  std::vector<committed_log> logs;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    auto l = fetch_committed(cl, id);
    if (!l) {
      fail("cannot fetch node %" PRIu64 "'s committed log", id);
      continue;
    }
    if (l->lines.size() < barrier) fail("node %" PRIu64 " applied only %zu entries, barrier is %" PRIu64, id, l->lines.size(), barrier);
    logs.push_back(std::move(*l));
  }
  for (std::size_t k = 1; k < logs.size(); ++k) {
    const std::size_t n = std::min(logs[0].lines.size(), logs[k].lines.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (logs[0].in_snapshot[i] || logs[k].in_snapshot[i]) continue;
      if (logs[0].lines[i] != logs[k].lines[i]) {
        fail("committed logs differ at index %zu: '%s' vs '%s'", i + 1, logs[0].lines[i].c_str(), logs[k].lines[i].c_str());
        break;
      }
    }
  }
  // Every index up to the barrier was applied entry by entry by some node
  // (a snapshot only carries what some node applied).
  if (!logs.empty()) {
    std::size_t nowhere = 0;
    for (std::size_t i = 0; i < barrier; ++i) {
      bool seen = false;
      for (const auto& l : logs) seen = seen || (i < l.lines.size() && !l.in_snapshot[i]);
      if (!seen && ++nowhere <= 3) fail("index %zu was applied as an entry by no node", i + 1);
    }
  }
  // Where each write landed, from whichever node applied it as an entry.
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> index_of;
  for (const auto& l : logs) index_of.insert(l.index_of.begin(), l.index_of.end());
  std::size_t missing = 0, phantom = 0, dup = 0, resolved_unknown = 0, via_snapshot = 0;
  for (auto& r : all) {
    if (r.op.k == operation::kind::get) continue;
    const auto where = index_of.find({r.client, r.seq});
    for (std::size_t k = 0; k < logs.size(); ++k) {
      auto it = logs[k].writes.find({r.client, r.seq});
      const int count = it == logs[k].writes.end() ? 0 : it->second;
      if (count > 1 && ++dup <= 5) fail("write %" PRIu64 "/%" PRIu64 " appears %d times in a log", r.client, r.seq, count);
      if (count == 0 && where != index_of.end() && where->second <= logs[k].lines.size() &&
          logs[k].in_snapshot[where->second - 1]) {
        ++via_snapshot;  // node k got it inside a snapshot
        continue;
      }
      if (r.f == fate::acked && count == 0 && ++missing <= 5)
        fail("acknowledged %s of %s (client %" PRIu64 " seq %" PRIu64 ") is missing from node %zu's log",
             r.op.k == operation::kind::put ? "put" : "delete", r.key.c_str(), r.client, r.seq, k + 1);
    }
    if (r.f == fate::failed && where != index_of.end() && ++phantom <= 5)
      fail("write %" PRIu64 "/%" PRIu64 " was answered as not applied (status %d) but was applied at index %" PRIu64,
           r.client, r.seq, r.status, where->second);
    // An unanswered write that is in no log never took effect: drop it.
    if (r.f == fate::unknown && !logs.empty() && where == index_of.end()) {
      r.f = fate::failed;
      ++resolved_unknown;
    }
  }
  const bool reads_through_log =
      std::adjacent_find(server_args.begin(), server_args.end(), [](const std::string& a, const std::string& b) {
        return a == "--reads" && b == "log";
      }) != server_args.end();
  for (std::size_t k = 0; k < logs.size(); ++k) {
    if (!reads_through_log && logs[k].gets != 0)
      fail("node %zu's committed log holds %zu GET entries: GETs should be ReadIndex reads, not log entries", k + 1,
           logs[k].gets);
    if (reads_through_log && logs[k].gets == 0) fail("--reads log, yet node %zu's committed log holds no GET", k + 1);
  }
  say("logs: %zu entries agree on all nodes; acknowledged writes missing: %zu; phantom writes: %zu; "
      "%zu unknown writes resolved as never applied; %zu (node, write) pairs only inside a snapshot",
      logs.empty() ? 0 : logs[0].lines.size(), missing, phantom, resolved_unknown, via_snapshot);

  // What the simulated power failures took (async: entries not yet flushed; sync: nothing).
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const std::string log = cl.read_log(id);
    for (std::size_t at_ = log.find("simulating a power failure"); at_ != std::string::npos;
         at_ = log.find("simulating a power failure", at_ + 1)) {
      const std::size_t eol = log.find('\n', at_);
      say("node %" PRIu64 ": %s", id, log.substr(at_, eol == std::string::npos ? std::string::npos : eol - at_).c_str());
    }
  }

  // Snapshots and compaction.
  sample_disk();
  std::size_t taken = 0, installed = 0;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const std::string log = cl.read_log(id);
    const std::size_t t = count_of(log, "compacted the log up to index");
    const std::size_t i = count_of(log, "restored the store from a snapshot received from the leader");
    taken += t;
    installed += i;
    auto s = cl.status(id, 2000);
    say("snapshots: node %" PRIu64 " took %zu, installed %zu from the leader; now snapshot_index %" PRIu64
        ", %" PRIu64 " entries and %" PRIu64 " bytes in its segments (at most %" PRIu64 " bytes during the run)",
        id, t, i, s ? s->snapshot_index : 0, s ? s->log_entries : 0, s ? s->log_bytes : 0, max_segment_bytes[id]);
    if (!s) fail("no /status from node %" PRIu64, id);
    else if (s->snapshot_index == 0 || s->snapshot_index + 3 * snapshot_every < s->applied)
      fail("node %" PRIu64 " has snapshot_index %" PRIu64 " with %" PRIu64 " applied: it does not compact", id,
           s->snapshot_index, s->applied);
    if (max_segment_bytes[id] > segment_bound)
      fail("node %" PRIu64 "'s segment files reached %" PRIu64 " bytes, above the bound of %" PRIu64, id,
           max_segment_bytes[id], segment_bound);
  }
  if (taken == 0) fail("no node compacted its log");
  if (barrier < 20 * snapshot_every) fail("only %" PRIu64 " entries: too few to exercise compaction", barrier);
  if (revived != 0) {
    const std::string log = cl.read_log(revived);
    if (log.find("restored the store from a snapshot received from the leader", revived_log_from) == std::string::npos)
      fail("node %" PRIu64 " came back after missing thousands of entries without installing a snapshot", revived);
  }
  if (installed == 0) fail("no node installed a snapshot from the leader");

  // Final reads, through the log, then every node's local copy.
  std::map<std::string, std::vector<operation>> per_key;
  for (const auto& r : all)
    if (kvtest::checked(r)) per_key[r.key].push_back(r.op);
  for (const auto& key : keys) {
    const auto read = kvtest::final_read(cl, cl.ids(), key, 20);
    if (!read) {
      fail("final read of %s failed", key.c_str());
      continue;
    }
    const operation& fin = *read;
    per_key[key].push_back(fin);
    for (std::uint64_t id = 1; id <= 3; ++id) {
      kv::http_client c(cl.http(id));
      auto r = c.request("GET", "/debug/local/" + key, {}, {}, 3000);
      const bool found = r.what == kv::http_client::outcome::ok && r.resp.status == 200;
      if (r.what != kv::http_client::outcome::ok || found != fin.found || (found && r.resp.body != fin.out))
        fail("node %" PRIu64 " holds %s=%s but the final read says %s", id, key.c_str(),
             found ? r.resp.body.c_str() : "(absent)", fin.found ? fin.out.c_str() : "(absent)");
    }
  }

  // Linearizability, key by key.
  kvtest::check_linearizable(cl, per_key);

  // Graceful shutdown of everything; a sanitizer report or a fatal error
  // in any server incarnation fails the test.
  kvtest::stop_gracefully(cl, cl.ids());
  kvtest::scan_logs(cl);
  return kvtest::verdict(cl, "e2e", seed);
}
