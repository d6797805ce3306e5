// tests/kv/cluster.hpp - starts, kills and restarts kv-server processes on
// loopback for the end-to-end tests. Every process it starts is killed (by
// pid) when the harness goes away.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "http.hpp"
#include "net.hpp"

namespace kvtest {

inline void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void say(const char* fmt, ...) {
  static const std::int64_t t0 = kv::now_ms();
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stdout, "[%7.3f] ", static_cast<double>(kv::now_ms() - t0) / 1000.0);
  std::vfprintf(stdout, fmt, ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  va_end(ap);
}

/// Failed checks of an end-to-end program (it exits non-zero if any).
inline int failures = 0;
inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stdout, "FAIL: ");
  std::vfprintf(stdout, fmt, ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  va_end(ap);
  ++failures;
}

/// Picks `n` distinct free loopback ports (bound together, then released).
inline std::vector<std::uint16_t> free_ports(std::size_t n) {
  std::vector<int> fds;
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::perror("free_ports");
      std::exit(1);
    }
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  return ports;
}

struct node_status {
  std::uint64_t id = 0;
  std::string role;
  std::uint64_t term = 0;
  std::uint64_t leader = 0;  // 0: unknown
  std::uint64_t commit = 0;
  std::uint64_t applied = 0;
  std::uint64_t snapshot_index = 0;
  std::uint64_t log_entries = 0;  // entries after the snapshot
  std::uint64_t log_bytes = 0;    // bytes in the segment files
  std::uint64_t bad_frames = 0;   // peer frames dropped for a checksum mismatch
};

inline std::string json_field(const std::string& json, const std::string& name) {
  const auto at = json.find("\"" + name + "\":");
  if (at == std::string::npos) return {};
  const auto start = at + name.size() + 3;
  const auto end = json.find_first_of(",}", start);
  std::string v = json.substr(start, end - start);
  if (!v.empty() && v.front() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

class cluster {
 public:
  /// Nodes 1..n get ports; nodes 1..founders (0: all) found the cluster
  /// (their --peers list them all), the others start with --join the first
  /// time (--peers naming only themselves: they learn the rest) and without
  /// it when restarted.
  cluster(std::string server, std::size_t n, std::vector<std::string> extra_args = {}, std::size_t founders = 0)
      : server_(std::move(server)), n_(n), founders_(founders == 0 ? n : founders), extra_(std::move(extra_args)) {
    std::string t = (std::filesystem::temp_directory_path() / "kv-e2e-XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    dir_ = t;
    auto ports = free_ports(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
      raft_ports_.push_back(ports[i]);
      http_ports_.push_back(ports[n + i]);
    }
    pids_.assign(n + 1, 0);
    started_.assign(n + 1, false);
  }
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;
  ~cluster() {
    for (std::uint64_t id = 1; id <= n_; ++id) kill(id, SIGKILL);
    if (keep_dir_) {
      std::printf("data and server logs kept in %s\n", dir_.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  void keep_dir() { keep_dir_ = true; }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] std::size_t size() const { return n_; }
  /// 1..size().
  [[nodiscard]] std::vector<std::uint64_t> ids() const {
    std::vector<std::uint64_t> v;
    for (std::uint64_t id = 1; id <= n_; ++id) v.push_back(id);
    return v;
  }
  [[nodiscard]] kv::endpoint http(std::uint64_t id) const { return {"127.0.0.1", http_ports_[id - 1]}; }
  [[nodiscard]] kv::endpoint raft(std::uint64_t id) const { return {"127.0.0.1", raft_ports_[id - 1]}; }
  [[nodiscard]] std::string log_path(std::uint64_t id) const { return dir_ + "/n" + std::to_string(id) + ".log"; }
  [[nodiscard]] bool running(std::uint64_t id) const { return pids_[id] != 0; }
  [[nodiscard]] std::string raft_addr(std::uint64_t id) const { return raft(id).str(); }
  [[nodiscard]] std::string http_addr(std::uint64_t id) const { return http(id).str(); }
  /// The node whose client port is `port`, or 0.
  [[nodiscard]] std::uint64_t id_of_http_port(std::uint16_t port) const {
    for (std::size_t i = 0; i < n_; ++i)
      if (http_ports_[i] == port) return i + 1;
    return 0;
  }

  void start(std::uint64_t id) {
    // Appended piece by piece: `"," + std::to_string(...)` trips a false
    // -Wrestrict in GCC 12 at -O3.
    std::string peers, clients;
    const bool joiner = id > founders_;
    for (std::size_t i = 0; i < n_; ++i) {
      if (joiner ? i + 1 != id : i >= founders_) continue;
      if (!peers.empty()) {
        peers += ',';
        clients += ',';
      }
      peers.append(std::to_string(i + 1)).append("=127.0.0.1:").append(std::to_string(raft_ports_[i]));
      clients.append(std::to_string(i + 1)).append("=127.0.0.1:").append(std::to_string(http_ports_[i]));
    }
    std::vector<std::string> args = {server_, "--id", std::to_string(id), "--peers", peers, "--client-addrs", clients,
                                     "--data", dir_ + "/n" + std::to_string(id), "--listen",
                                     "127.0.0.1:" + std::to_string(http_ports_[id - 1]), "--cluster", "e2e", "--debug"};
    if (joiner && !started_[id]) args.emplace_back("--join");
    started_[id] = true;
    args.insert(args.end(), extra_.begin(), extra_.end());
    const std::string log = log_path(id);
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("fork");
      std::exit(1);
    }
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      std::perror("execv");
      ::_exit(127);
    }
    pids_[id] = pid;
  }

  /// Sends `sig`; for SIGKILL also reaps the process. Returns the exit status
  /// when it was reaped (-1 otherwise).
  int kill(std::uint64_t id, int sig) {
    if (pids_[id] == 0) return -1;
    ::kill(pids_[id], sig);
    if (sig != SIGKILL) return -1;
    int st = 0;
    ::waitpid(pids_[id], &st, 0);
    pids_[id] = 0;
    return st;
  }
  /// Crashes node `id` as a power failure would (kv-server --debug, SIGUSR1):
  /// it exits leaving its log without what was not yet fdatasynced. Falls
  /// back to SIGKILL if it does not exit within 3 s. Returns true if it
  /// exited through the simulated power failure.
  bool power_loss(std::uint64_t id) {
    if (pids_[id] == 0) return false;
    ::kill(pids_[id], SIGUSR1);
    if (auto st = wait_exit(id, 3000)) return WIFEXITED(*st) && WEXITSTATUS(*st) == 9;
    kill(id, SIGKILL);
    return false;
  }
  /// power_loss() of every running node at once (a power failure of the
  /// whole cluster); returns how many exited through it.
  std::size_t power_loss_all() {
    for (std::uint64_t id = 1; id <= n_; ++id)
      if (pids_[id] != 0) ::kill(pids_[id], SIGUSR1);
    std::size_t n = 0;
    for (std::uint64_t id = 1; id <= n_; ++id) {
      if (pids_[id] == 0) continue;
      if (auto st = wait_exit(id, 3000)) n += WIFEXITED(*st) && WEXITSTATUS(*st) == 9;
      else kill(id, SIGKILL);
    }
    return n;
  }
  /// Waits up to `ms` for node `id` to exit; returns its wait status or nothing.
  std::optional<int> wait_exit(std::uint64_t id, int ms) {
    const std::int64_t end = kv::now_ms() + ms;
    while (kv::now_ms() < end) {
      int st = 0;
      if (::waitpid(pids_[id], &st, WNOHANG) == pids_[id]) {
        pids_[id] = 0;
        return st;
      }
      ::usleep(10000);
    }
    return std::nullopt;
  }
  /// True if the process is still alive (not exited).
  bool alive(std::uint64_t id) {
    if (pids_[id] == 0) return false;
    int st = 0;
    if (::waitpid(pids_[id], &st, WNOHANG) == pids_[id]) {
      pids_[id] = 0;
      return false;
    }
    return true;
  }

  /// Node `id`'s /status answer (JSON), or nothing.
  std::optional<std::string> status_body(std::uint64_t id, int timeout_ms = 500) const {
    kv::http_client c(http(id));
    auto r = c.request("GET", "/status", {}, {}, timeout_ms);
    if (r.what != kv::http_client::outcome::ok || r.resp.status != 200) return std::nullopt;
    return std::move(r.resp.body);
  }

  std::optional<node_status> status(std::uint64_t id, int timeout_ms = 500) const {
    const auto body = status_body(id, timeout_ms);
    if (!body) return std::nullopt;
    node_status s;
    s.id = std::strtoull(json_field(*body, "id").c_str(), nullptr, 10);
    s.role = json_field(*body, "role");
    s.term = std::strtoull(json_field(*body, "term").c_str(), nullptr, 10);
    s.leader = std::strtoull(json_field(*body, "leader").c_str(), nullptr, 10);
    s.commit = std::strtoull(json_field(*body, "commit").c_str(), nullptr, 10);
    s.applied = std::strtoull(json_field(*body, "applied").c_str(), nullptr, 10);
    s.snapshot_index = std::strtoull(json_field(*body, "snapshot_index").c_str(), nullptr, 10);
    s.log_entries = std::strtoull(json_field(*body, "log_entries").c_str(), nullptr, 10);
    s.log_bytes = std::strtoull(json_field(*body, "log_bytes").c_str(), nullptr, 10);
    s.bad_frames = std::strtoull(json_field(*body, "bad_frames").c_str(), nullptr, 10);
    return s;
  }

  /// Waits for a leader that every running node agrees on; returns its id or 0.
  std::uint64_t wait_leader(int timeout_ms) const { return wait_leader(ids(), timeout_ms); }
  /// The same among nodes `among` only (the members, when the configuration changed).
  std::uint64_t wait_leader(const std::vector<std::uint64_t>& among, int timeout_ms) const {
    const std::int64_t end = kv::now_ms() + timeout_ms;
    while (kv::now_ms() < end) {
      std::uint64_t leader = 0;
      bool agree = true;
      for (auto id : among) {
        if (!agree) break;
        if (!running(id)) continue;
        auto s = status(id);
        if (!s || s->leader == 0 || (leader != 0 && s->leader != leader)) agree = false;
        else leader = s->leader;
      }
      if (agree && leader != 0 && running(leader)) {
        auto s = status(leader);
        if (s && s->role == "leader") return leader;
      }
      ::usleep(50 * 1000);
    }
    return 0;
  }

  /// Node `id`'s committed log as it journalled it (GET /debug/committed, --debug), line by line.
  std::optional<std::vector<std::string>> committed(std::uint64_t id) const {
    kv::http_client c(http(id));
    auto r = c.request("GET", "/debug/committed", {}, {}, 5000);
    if (r.what != kv::http_client::outcome::ok || r.resp.status != 200) return std::nullopt;
    std::vector<std::string> lines;
    std::istringstream in(r.resp.body);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  [[nodiscard]] std::string read_log(std::uint64_t id) const {
    std::ifstream in(log_path(id));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string server_;
  std::size_t n_;
  std::size_t founders_;
  std::vector<std::string> extra_;
  std::vector<bool> started_;
  std::string dir_;
  std::vector<std::uint16_t> raft_ports_, http_ports_;
  std::vector<pid_t> pids_;
  bool keep_dir_ = false;
};

/// SIGTERMs nodes `ids`; each must exit with status 0 within 5 s.
inline void stop_gracefully(cluster& cl, const std::vector<std::uint64_t>& ids) {
  for (auto id : ids) cl.kill(id, SIGTERM);
  for (auto id : ids) {
    auto st = cl.wait_exit(id, 5000);
    if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0) fail("node %" PRIu64 " did not shut down cleanly on SIGTERM", id);
  }
}

/// Fails for every node (all its incarnations) whose log holds a sanitizer
/// report, a fatal error, a broken raft invariant or one of `also`.
inline void scan_logs(const cluster& cl, std::initializer_list<const char*> also = {}) {
  std::vector<const char*> bad = {"runtime error:", "AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "FATAL",
                                  "raft invariant broken"};
  bad.insert(bad.end(), also.begin(), also.end());
  for (std::uint64_t id = 1; id <= cl.size(); ++id) {
    const std::string log = cl.read_log(id);
    for (const char* b : bad)
      if (log.find(b) != std::string::npos) fail("node %" PRIu64 "'s log contains \"%s\" (see %s)", id, b, cl.log_path(id).c_str());
  }
}

/// A test program's exit status: 1 if any check failed (keeping the data
/// directory), else 0; says which.
inline int verdict(cluster& cl, const char* name, std::uint64_t seed) {
  if (failures != 0) {
    cl.keep_dir();
    say("%s FAILED with %d failure(s); seed %" PRIu64, name, failures, seed);
    return 1;
  }
  say("%s passed", name);
  return 0;
}

}  // namespace kvtest
