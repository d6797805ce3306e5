// examples/kv/cli.cpp - kv-cli: talk to a kv-server cluster, and measure it.
//
//   kv-cli [--servers HOST:PORT,...] [--timeout-ms N] put KEY VALUE
//   kv-cli ... get [--lease] KEY | del KEY | status | transfer N
//   kv-cli ... members | add-learner ID RAFT_ADDR CLIENT_ADDR | add-witness ID RAFT_ADDR CLIENT_ADDR
//   kv-cli ... promote [--force] ID | remove ID | wait-caught-up ID [MAX_LAG]
//   kv-cli ... bench [--op put|get] [--lease] [--clients N] [--seconds S] [--value-size B] [--keys K]
//
// Requests go to any server and follow 307 redirects to the leader. A write
// carries a client id and request id, so when an answer is lost kv-cli can
// retry it without applying it twice.
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "http.hpp"
#include "net.hpp"

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "kv-cli: %s\n"
               "usage: kv-cli [--servers HOST:PORT,...] [--timeout-ms N] COMMAND\n"
               "  put KEY VALUE     store VALUE under KEY\n"
               "  get [--lease] KEY print the value of KEY (linearizable read; --lease: a lease read,\n"
               "                    which needs kv-server --lease-reads)\n"
               "  del KEY           delete KEY\n"
               "  status            print every server's /status\n"
               "  transfer N        move the leadership to node N (POST /admin/transfer?to=N on the\n"
               "                    leader), then wait until node N leads\n"
               "  members           print the configuration (voters, learners, witnesses, addresses; the\n"
               "                    leader's view, with each member's replication lag)\n"
               "  add-learner ID RAFT_ADDR CLIENT_ADDR\n"
               "                    add node ID (started with kv-server --join) as a learner: it gets the log,\n"
               "                    does not vote; RAFT_ADDR is its --peers address, CLIENT_ADDR its --listen\n"
               "  add-witness ID RAFT_ADDR CLIENT_ADDR\n"
               "                    add node ID as a witness: it votes, stores no data, never leads\n"
               "  wait-caught-up ID [MAX_LAG]\n"
               "                    wait until the leader sees node ID at most MAX_LAG entries behind (default 10)\n"
               "  promote [--force] ID\n"
               "                    make learner ID a voter (refused while it lags, unless --force)\n"
               "  remove ID         remove node ID from the cluster (any role)\n"
               "  bench [--op put|get] [--lease] [--clients N] [--seconds S] [--value-size B] [--keys K]\n"
               "                    concurrent PUTs (default) or GETs to the leader; prints ops/s and latency\n"
               "--servers defaults to $KV_SERVERS, else 127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003\n",
               why);
  std::exit(2);
}

std::vector<kv::endpoint> parse_servers(const std::string& s) {
  std::vector<kv::endpoint> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const auto comma = s.find(',', pos);
    auto ep = kv::parse_endpoint(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (!ep) usage(("bad server address in " + s).c_str());
    out.push_back(*ep);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

/// Sends one request to the cluster, following redirects and retrying while
/// there is no leader. Returns the final response (status 0 if none).
kv::http_response_msg cluster_request(const std::vector<kv::endpoint>& servers, const std::string& method,
                                      const std::string& path, const std::string& body, const std::string& headers,
                                      int timeout_ms) {
  const std::int64_t deadline = kv::now_ms() + timeout_ms;
  std::size_t next = static_cast<std::size_t>(kv::now_us()) % servers.size();
  kv::endpoint target = servers[next];
  std::string target_path = path;
  std::string last_error = "no server reachable";
  while (kv::now_ms() < deadline) {
    kv::http_client c(target);
    auto r = c.request(method, target_path, body, headers, static_cast<int>(std::max<std::int64_t>(100, deadline - kv::now_ms())));
    if (r.what == kv::http_client::outcome::ok) {
      const int st = r.resp.status;
      if (st == 307) {
        if (auto u = kv::parse_url(r.resp.header("location"))) {
          target = u->first;
          target_path = u->second;
          continue;
        }
      }
      // Not applied, or (a write with a request id, which the server
      // deduplicates) leadership lost with the outcome unknown: retry.
      const bool retry = (st == 503 && r.resp.header("x-outcome") == "not-applied") || st == 421 ||
                         (st == 503 && r.resp.header("x-reason") == "leadership-lost" && !headers.empty());
      if (!retry) return r.resp;
      last_error = std::to_string(st) + " " + r.resp.body;
    } else if (r.what == kv::http_client::outcome::no_response && method == "GET") {
      last_error = r.error;  // a read can always be retried
    } else if (r.what == kv::http_client::outcome::no_response && headers.empty()) {
      std::fprintf(stderr, "kv-cli: %s; the request may or may not have been applied\n", r.error.c_str());
      return {};
    } else {
      last_error = r.error;  // not sent, or a write with a request id: safe to retry
    }
    next = (next + 1) % servers.size();
    target = servers[next];
    target_path = path;
    ::usleep(100 * 1000);
  }
  std::fprintf(stderr, "kv-cli: giving up: %s\n", last_error.c_str());
  return {};
}

std::string json_field(const std::string& json, const std::string& name) {
  const auto at = json.find("\"" + name + "\":");
  if (at == std::string::npos) return {};
  auto start = at + name.size() + 3;
  auto end = json.find_first_of(",}", start);
  std::string v = json.substr(start, end - start);
  if (!v.empty() && v.front() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

std::optional<kv::endpoint> find_leader(const std::vector<kv::endpoint>& servers, std::string* status, int attempts) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    for (const auto& s : servers) {
      kv::http_client c(s);
      auto r = c.request("GET", "/status", {}, {}, 1000);
      if (r.what == kv::http_client::outcome::ok && json_field(r.resp.body, "role") == "leader") {
        if (status != nullptr) *status = r.resp.body;
        return s;
      }
    }
    ::usleep(200 * 1000);
  }
  return std::nullopt;
}

/// kv-cli transfer N: asks the leader to hand its leadership to node N, then
/// polls until node N reports itself leader (or the timeout).
int transfer(const std::vector<kv::endpoint>& servers, const std::string& to, int timeout_ms) {
  const std::int64_t deadline = kv::now_ms() + timeout_ms;
  auto leader = find_leader(servers, nullptr, 25);
  if (!leader) {
    std::fprintf(stderr, "kv-cli transfer: no leader found\n");
    return 1;
  }
  kv::http_client c(*leader);
  auto r = c.request("POST", "/admin/transfer?to=" + to, {}, {}, 2000);
  if (r.what != kv::http_client::outcome::ok) {
    std::fprintf(stderr, "kv-cli transfer: %s: %s\n", leader->str().c_str(), r.error.c_str());
    return 1;
  }
  std::printf("%s: %d %s", leader->str().c_str(), r.resp.status, r.resp.body.c_str());
  if (r.resp.status != 202 && r.resp.status != 200) return 1;
  const std::int64_t t0 = kv::now_ms();
  while (kv::now_ms() < deadline) {
    for (const auto& s : servers) {
      kv::http_client q(s);
      auto st = q.request("GET", "/status", {}, {}, 500);
      if (st.what == kv::http_client::outcome::ok && json_field(st.resp.body, "role") == "leader" &&
          json_field(st.resp.body, "id") == to) {
        std::printf("node %s leads (term %s) after %" PRId64 " ms\n", to.c_str(), json_field(st.resp.body, "term").c_str(),
                    kv::now_ms() - t0);
        return 0;
      }
    }
    ::usleep(20 * 1000);
  }
  kv::http_client q(*leader);
  auto st = q.request("GET", "/status", {}, {}, 500);
  std::fprintf(stderr, "kv-cli transfer: node %s does not lead after %d ms; old leader's /status: %s", to.c_str(),
               timeout_ms, st.what == kv::http_client::outcome::ok ? st.resp.body.c_str() : "unreachable\n");
  return 1;
}

/// A membership change (POST /admin/...): sent to any server, following the
/// redirect to the leader; "not now" answers (503 not-applied) are retried
/// until the timeout. Prints the answer.
int admin_change(const std::vector<kv::endpoint>& servers, const std::string& path, int timeout_ms) {
  const kv::http_response_msg r = cluster_request(servers, "POST", path, {}, {}, timeout_ms);
  if (r.status == 0) return 1;
  if (r.status == 200) {
    std::printf("%s", r.body.c_str());
    return 0;
  }
  std::fprintf(stderr, "kv-cli: %d %s", r.status, r.body.c_str());
  return 1;
}

/// The leader's view of the members (its /admin/members), else any server's.
int members(const std::vector<kv::endpoint>& servers) {
  std::optional<kv::endpoint> from = find_leader(servers, nullptr, 3);
  std::vector<kv::endpoint> order;
  if (from) order.push_back(*from);
  order.insert(order.end(), servers.begin(), servers.end());
  for (const auto& s : order) {
    kv::http_client c(s);
    auto r = c.request("GET", "/admin/members", {}, {}, 1000);
    if (r.what == kv::http_client::outcome::ok && r.resp.status == 200) {
      std::printf("from %s%s:\n%s", s.str().c_str(), from ? "" : " (no leader found: lag unknown)", r.resp.body.c_str());
      return 0;
    }
  }
  std::fprintf(stderr, "kv-cli members: no server answered\n");
  return 1;
}

/// The lag of peer `id` in a leader's /status ("peers":[...,{"id":N,...,"lag":L,...}]), or -1.
long long peer_lag(const std::string& status, const std::string& id) {
  const auto peers = status.find("\"peers\":[");
  if (peers == std::string::npos) return -1;
  const auto at = status.find("{\"id\":" + id + ",", peers);
  if (at == std::string::npos) return -1;
  const auto end = status.find('}', at);
  const std::string v = json_field(status.substr(at, end - at + 1), "lag");
  return v.empty() ? -1 : std::atoll(v.c_str());
}

/// kv-cli wait-caught-up ID [MAX_LAG]: polls the leader's /status until node
/// ID's lag is at most MAX_LAG entries (it answered: it holds the log up to
/// there), printing the lag as it goes.
int wait_caught_up(const std::vector<kv::endpoint>& servers, const std::string& id, long long max_lag, int timeout_ms) {
  const std::int64_t deadline = kv::now_ms() + timeout_ms;
  long long last = -2;
  while (kv::now_ms() < deadline) {
    std::string st;
    if (find_leader(servers, &st, 1)) {
      const long long lag = peer_lag(st, id);
      if (lag != last) std::printf("node %s: %s\n", id.c_str(), lag < 0 ? "not a peer of the leader (yet)" : ("lag " + std::to_string(lag) + " entries").c_str());
      std::fflush(stdout);
      last = lag;
      if (lag >= 0 && lag <= max_lag && json_field(st.substr(st.find("{\"id\":" + id + ",")), "recent_active") == "true") {
        std::printf("node %s has caught up\n", id.c_str());
        return 0;
      }
    }
    ::usleep(200 * 1000);
  }
  std::fprintf(stderr, "kv-cli wait-caught-up: node %s did not catch up within %d ms\n", id.c_str(), timeout_ms);
  return 1;
}

bool is_id(const std::string& s) {
  return !s.empty() && s.size() < 20 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         std::strtoull(s.c_str(), nullptr, 10) != 0;
}

int bench(const std::vector<kv::endpoint>& servers, int argc, char** argv, int i) {
  int clients = 16;
  bool get = false, lease = false;
  double seconds = 10;
  std::size_t value_size = 100;
  int keys = 1000;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--lease") {
      lease = true;
      continue;
    }
    if (i + 1 >= argc) usage(("missing value for " + a).c_str());
    if (a == "--op") {
      const std::string op = argv[++i];
      if (op != "get" && op != "put") usage("--op must be put or get");
      get = op == "get";
    } else if (a == "--clients") clients = std::atoi(argv[++i]);
    else if (a == "--seconds") seconds = std::atof(argv[++i]);
    else if (a == "--value-size") value_size = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--keys") keys = std::atoi(argv[++i]);
    else usage(("unknown bench option " + a).c_str());
  }
  if (clients < 1 || seconds <= 0 || keys < 1) usage("bad bench options");
  if (lease && !get) usage("--lease goes with --op get");
  std::string leader_status;
  const std::optional<kv::endpoint> leader = find_leader(servers, &leader_status, 50);
  if (!leader) {
    std::fprintf(stderr, "kv-cli bench: no leader found\n");
    return 1;
  }
  const std::string value(value_size, 'v');
  if (get) {  // every key exists: the GETs read values, not 404s
    kv::http_client c(*leader);
    for (int k = 0; k < keys; ++k) {
      auto r = c.request("PUT", "/kv/bench-" + std::to_string(k), value, {}, 5000);
      if (r.what != kv::http_client::outcome::ok || r.resp.status != 200) {
        std::fprintf(stderr, "kv-cli bench: cannot fill key bench-%d\n", k);
        return 1;
      }
    }
    auto r = c.request("GET", "/status", {}, {}, 1000);
    if (r.what == kv::http_client::outcome::ok) leader_status = r.resp.body;
  }
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::int64_t>> lat(static_cast<std::size_t>(clients));
  std::vector<std::uint64_t> errors(static_cast<std::size_t>(clients), 0);
  std::vector<std::thread> threads;
  const std::int64_t t0 = kv::now_us();
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      kv::http_client c(*leader);
      std::uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        std::string path = "/kv/bench-" + std::to_string((static_cast<std::uint64_t>(t) * 7919 + n++) % static_cast<std::uint64_t>(keys));
        if (lease) path += "?lease=1";
        const std::int64_t s = kv::now_us();
        auto r = get ? c.request("GET", path, {}, {}, 5000) : c.request("PUT", path, value, {}, 5000);
        if (r.what == kv::http_client::outcome::ok && r.resp.status == 200) lat[static_cast<std::size_t>(t)].push_back(kv::now_us() - s);
        else ++errors[static_cast<std::size_t>(t)];
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double elapsed = static_cast<double>(kv::now_us() - t0) / 1e6;
  std::vector<std::int64_t> all;
  std::uint64_t errs = 0;
  for (std::size_t t = 0; t < lat.size(); ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    errs += errors[t];
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : static_cast<double>(all[static_cast<std::size_t>(p * static_cast<double>(all.size() - 1))]) / 1000.0; };
  std::string after;
  {
    kv::http_client c(*leader);
    auto r = c.request("GET", "/status", {}, {}, 1000);
    if (r.what == kv::http_client::outcome::ok) after = r.resp.body;
  }
  const double syncs = std::atof(json_field(after, "syncs").c_str()) - std::atof(json_field(leader_status, "syncs").c_str());
  const char* what = get ? (lease ? "lease reads" : "reads") : "writes";
  std::printf("leader %s (reads: %s), %d clients, %s, %zu-byte values, %.1f s\n", leader->str().c_str(),
              json_field(leader_status, "reads").c_str(), clients, what, value_size, elapsed);
  std::printf("%s: %zu ok, %" PRIu64 " failed\n", what, all.size(), errs);
  std::printf("throughput: %.0f %s/s\n", static_cast<double>(all.size()) / elapsed, what);
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", pct(0.5), pct(0.9), pct(0.99), pct(1.0));
  if (get) std::printf("leader log syncs during the run: %.0f\n", syncs);
  else if (syncs > 0) std::printf("leader log syncs: %.0f (%.1f writes per sync)\n", syncs, static_cast<double>(all.size()) / syncs);
  return errs == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string servers_arg = std::getenv("KV_SERVERS") ? std::getenv("KV_SERVERS") : "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003";
  int timeout_ms = 10000;
  bool timeout_given = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--servers" && i + 1 < argc) servers_arg = argv[++i];
    else if (a == "--timeout-ms" && i + 1 < argc) {
      timeout_ms = std::atoi(argv[++i]);
      timeout_given = true;
    }
    else if (a == "-h" || a == "--help") usage("help");
    else break;
  }
  if (i >= argc) usage("missing command");
  const auto servers = parse_servers(servers_arg);
  const std::string cmd = argv[i++];
  auto need = [&](int n) {
    if (argc - i != n) usage(("wrong number of arguments for " + cmd).c_str());
  };
  if (cmd == "bench") return bench(servers, argc, argv, i);
  if (cmd == "transfer") {
    need(1);
    return transfer(servers, argv[i], timeout_ms);
  }
  if (cmd == "members") {
    need(0);
    return members(servers);
  }
  if (cmd == "add-learner" || cmd == "add-witness") {
    need(3);
    if (!is_id(argv[i])) usage("ID must be a positive integer");
    if (!kv::parse_endpoint(argv[i + 1])) usage("RAFT_ADDR must be HOST:PORT (the new node's --peers address)");
    if (!kv::parse_endpoint(argv[i + 2])) usage("CLIENT_ADDR must be HOST:PORT (the new node's --listen address)");
    return admin_change(servers,
                        "/admin/" + cmd + "?id=" + argv[i] + "&raft=" + kv::percent_encode(argv[i + 1]) +
                            "&client=" + kv::percent_encode(argv[i + 2]),
                        timeout_ms);
  }
  if (cmd == "promote") {
    const bool force = i < argc && std::string(argv[i]) == "--force";
    if (force) ++i;
    need(1);
    if (!is_id(argv[i])) usage("ID must be a positive integer");
    return admin_change(servers, "/admin/promote?id=" + std::string(argv[i]) + (force ? "&force=1" : ""), timeout_ms);
  }
  if (cmd == "remove") {
    need(1);
    if (!is_id(argv[i])) usage("ID must be a positive integer");
    return admin_change(servers, "/admin/remove?id=" + std::string(argv[i]), timeout_ms);
  }
  if (cmd == "wait-caught-up") {
    if (argc - i != 1 && argc - i != 2) usage("wrong number of arguments for wait-caught-up");
    if (!is_id(argv[i])) usage("ID must be a positive integer");
    const long long max_lag = argc - i == 2 ? std::atoll(argv[i + 1]) : 10;
    return wait_caught_up(servers, argv[i], max_lag, timeout_given ? timeout_ms : 60000);
  }
  if (cmd == "status") {
    need(0);
    int rc = 1;
    for (const auto& s : servers) {
      kv::http_client c(s);
      auto r = c.request("GET", "/status", {}, {}, 1000);
      if (r.what == kv::http_client::outcome::ok) {
        std::printf("%s %s", s.str().c_str(), r.resp.body.c_str());
        rc = 0;
      } else {
        std::printf("%s unreachable (%s)\n", s.str().c_str(), r.error.c_str());
      }
    }
    return rc;
  }
  std::mt19937_64 rng(static_cast<std::uint64_t>(kv::now_us()) ^ static_cast<std::uint64_t>(::getpid()));
  const std::string ids = "X-Client-Id: " + std::to_string(rng() % 1000000000000ull + 1) + "\r\nX-Request-Id: 1\r\n";
  kv::http_response_msg r;
  if (cmd == "put") {
    need(2);
    r = cluster_request(servers, "PUT", "/kv/" + kv::percent_encode(argv[i]), argv[i + 1], ids, timeout_ms);
  } else if (cmd == "get") {
    const bool lease = i < argc && std::string(argv[i]) == "--lease";
    if (lease) ++i;
    need(1);
    r = cluster_request(servers, "GET", "/kv/" + kv::percent_encode(argv[i]) + (lease ? "?lease=1" : ""), {}, {},
                        timeout_ms);
  } else if (cmd == "del") {
    need(1);
    r = cluster_request(servers, "DELETE", "/kv/" + kv::percent_encode(argv[i]), {}, ids, timeout_ms);
  } else {
    usage(("unknown command " + cmd).c_str());
  }
  if (r.status == 0) return 1;
  if (r.status == 200) {
    std::fwrite(r.body.data(), 1, r.body.size(), stdout);
    if (cmd == "get" && (r.body.empty() || r.body.back() != '\n')) std::fputc('\n', stdout);
    return 0;
  }
  std::fprintf(stderr, "kv-cli: %d %s", r.status, r.body.c_str());
  return r.status == 404 ? 4 : 1;
}
