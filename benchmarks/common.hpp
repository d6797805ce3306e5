// benchmarks/common.hpp - shared pieces of the benchmark programs.
//
// Every benchmark is one .cpp file that includes this header exactly once, so
// the replaced global allocation functions below are defined once per
// program. Nothing here is part of the library; it depends on the library's
// headers, the C++ standard library and a few Linux/POSIX calls (fork, wait4,
// /proc) used to isolate runs and read memory use.
//
// Contents
//   * counting global operator new/delete (calls, bytes requested, live bytes)
//   * a tiny command-line parser, a JSON writer, a table printer
//   * machine description (nproc, CPU model) for the reports
//   * run_isolated(): run one measurement in a forked child, return a POD
//     result and the child's peak RSS (what /usr/bin/time -v reports)
//   * cluster<Node>: N nodes driven by one thread, with the exact "round"
//     structure of the peer harnesses in ../shared/peers (see README.md)
#pragma once

#include <raft/raft.hpp>

#include <malloc.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// ----------------------------------------------------------- allocation counter

namespace bench {
struct alloc_counters {
  std::uint64_t calls = 0;       // operator new calls (every form)
  std::uint64_t bytes = 0;       // bytes requested by those calls
  std::uint64_t frees = 0;       // operator delete calls with a non-null pointer
  std::int64_t live_bytes = 0;   // usable bytes currently held (malloc_usable_size), if g_track_live
};
inline alloc_counters g_alloc;  // single-threaded benchmarks: plain counters
/// Optional histogram of requested sizes: bucket min(n / 16, 256).
inline std::uint64_t* g_size_hist = nullptr;
/// Track live_bytes (costs a malloc_usable_size() per call; off unless a
/// benchmark measures memory, so the throughput numbers do not pay for it).
inline bool g_track_live = false;

inline void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  ++g_alloc.calls;
  g_alloc.bytes += n;
  if (g_track_live) g_alloc.live_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
  if (g_size_hist != nullptr) ++g_size_hist[std::min<std::size_t>(n / 16, 256)];
  return p;
}
inline void* counted_alloc_aligned(std::size_t n, std::size_t align) {
  if (align < sizeof(void*)) align = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, align, n == 0 ? 1 : n) != 0) throw std::bad_alloc();
  ++g_alloc.calls;
  g_alloc.bytes += n;
  if (g_track_live) g_alloc.live_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
  return p;
}
inline void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  ++g_alloc.frees;
  if (g_track_live) g_alloc.live_bytes -= static_cast<std::int64_t>(malloc_usable_size(p));
  std::free(p);
}
}  // namespace bench

// Replacement functions may not be declared inline; each benchmark program is
// a single translation unit, so these are defined exactly once.
void* operator new(std::size_t n) { return bench::counted_alloc(n); }
void* operator new[](std::size_t n) { return bench::counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return bench::counted_alloc(n); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return bench::counted_alloc(n); } catch (...) { return nullptr; }
}
void* operator new(std::size_t n, std::align_val_t a) { return bench::counted_alloc_aligned(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return bench::counted_alloc_aligned(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return bench::counted_alloc_aligned(n, static_cast<std::size_t>(a)); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return bench::counted_alloc_aligned(n, static_cast<std::size_t>(a)); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { bench::counted_free(p); }
void operator delete[](void* p) noexcept { bench::counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { bench::counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { bench::counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { bench::counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { bench::counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { bench::counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { bench::counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { bench::counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { bench::counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { bench::counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { bench::counted_free(p); }

namespace bench {

// ------------------------------------------------------------------- utilities

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "error: %s\n", what.c_str());
  std::exit(1);
}

/// Minimal parser for `--name value`, `--name=value` and `--flag`.
class args {
 public:
  args(int argc, char** argv) : argv_(argv + 1, argv + argc) {}

  bool flag(std::string_view name) {
    for (std::size_t i = 0; i < argv_.size(); ++i)
      if (argv_[i] == name) {
        argv_.erase(argv_.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
      }
    return false;
  }
  /// The value of `--name V` / `--name=V`, if given.
  bool value(std::string_view name, std::string& out) {
    for (std::size_t i = 0; i < argv_.size(); ++i) {
      std::string_view a = argv_[i];
      if (a == name) {
        if (i + 1 >= argv_.size()) die(std::string(name) + " needs a value");
        out = argv_[i + 1];
        argv_.erase(argv_.begin() + static_cast<std::ptrdiff_t>(i), argv_.begin() + static_cast<std::ptrdiff_t>(i) + 2);
        return true;
      }
      if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=') {
        out = std::string(a.substr(name.size() + 1));
        argv_.erase(argv_.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
      }
    }
    return false;
  }
  std::uint64_t u64(std::string_view name, std::uint64_t def) {
    std::string v;
    if (!value(name, v)) return def;
    return parse_u64(name, v);
  }
  /// A comma-separated list of unsigned numbers ("3,5,7").
  std::vector<std::uint64_t> list(std::string_view name, std::vector<std::uint64_t> def) {
    std::string v;
    if (!value(name, v)) return def;
    std::vector<std::uint64_t> r;
    std::size_t start = 0;
    while (start <= v.size()) {
      std::size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      if (end > start) r.push_back(parse_u64(name, v.substr(start, end - start)));
      start = end + 1;
    }
    if (r.empty()) die(std::string(name) + ": empty list");
    return r;
  }
  /// Call after reading every option: refuses anything left over.
  void done(const char* usage) {
    if (!argv_.empty()) {
      std::fprintf(stderr, "unknown argument: %s\n%s", argv_.front().c_str(), usage);
      std::exit(2);
    }
  }

 private:
  static std::uint64_t parse_u64(std::string_view name, const std::string& v) {
    // Accept 1e6-style numbers too.
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || d < 0) die(std::string(name) + ": not a number: " + v);
    return static_cast<std::uint64_t>(d + 0.5);
  }
  std::vector<std::string> argv_;
};

// ------------------------------------------------------------ machine, memory

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown";
}
inline long nproc() { return sysconf(_SC_NPROCESSORS_ONLN); }
inline std::string today() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%MZ", std::gmtime(&t));
  return buf;
}

/// Current resident set size in bytes (/proc/self/statm).
inline std::uint64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}
/// Peak resident set size of this process in bytes.
inline std::uint64_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;
}

/// Runs `fn` (returning a trivially copyable T) in a forked child so that
/// each measurement starts from the same heap and its peak RSS is its own.
/// Returns the result and the child's peak RSS in MiB (from wait4, the number
/// /usr/bin/time -v prints). Pass isolate=false to run in this process.
template <class T, class F>
std::pair<T, double> run_isolated(F&& fn, bool isolate = true) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (!isolate) {
    T r = fn();
    return {r, static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0)};
  }
  std::fflush(stdout);
  std::fflush(stderr);
  int fd[2];
  if (pipe(fd) != 0) die("pipe failed");
  pid_t pid = fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    close(fd[0]);
    T r = fn();
    const char* p = reinterpret_cast<const char*>(&r);
    std::size_t left = sizeof r;
    while (left > 0) {
      ssize_t w = write(fd[1], p, left);
      if (w <= 0) _exit(3);
      p += w;
      left -= static_cast<std::size_t>(w);
    }
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(0);
  }
  close(fd[1]);
  T r{};
  char* p = reinterpret_cast<char*>(&r);
  std::size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = read(fd[0], p + got, sizeof r - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(fd[0]);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  if (got != sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) die("benchmark child failed");
  return {r, static_cast<double>(ru.ru_maxrss) / 1024.0};
}

// ------------------------------------------------------------- output helpers

/// One result: an ordered list of key -> JSON-encoded value.
struct record {
  std::vector<std::pair<std::string, std::string>> fields;

  record& str(const std::string& k, const std::string& v) {
    std::string e = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') e += '\\';
      e += c;
    }
    e += '"';
    fields.emplace_back(k, e);
    return *this;
  }
  record& num(const std::string& k, double v, int decimals = 2) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    fields.emplace_back(k, buf);
    return *this;
  }
  record& integer(const std::string& k, std::uint64_t v) {
    fields.emplace_back(k, std::to_string(v));
    return *this;
  }
};

/// Prints {"benchmark":..., "date":..., "machine":{...}, "params":{...}, "results":[...]}.
inline void print_json(const std::string& name, const record& params, const std::vector<record>& results) {
  auto obj = [](const record& r) {
    std::string s = "{";
    for (std::size_t i = 0; i < r.fields.size(); ++i) {
      if (i) s += ", ";
      s += "\"" + r.fields[i].first + "\": " + r.fields[i].second;
    }
    return s + "}";
  };
  record machine;
  machine.integer("nproc", static_cast<std::uint64_t>(nproc())).str("cpu", cpu_model());
  std::printf("{\n  \"benchmark\": \"%s\",\n  \"date\": \"%s\",\n  \"machine\": %s,\n  \"params\": %s,\n  \"results\": [\n",
              name.c_str(), today().c_str(), obj(machine).c_str(), obj(params).c_str());
  for (std::size_t i = 0; i < results.size(); ++i)
    std::printf("    %s%s\n", obj(results[i]).c_str(), i + 1 < results.size() ? "," : "");
  std::printf("  ]\n}\n");
}

/// A plain text table with right-aligned columns (first column left-aligned).
class table {
 public:
  explicit table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print() const {
    std::vector<std::size_t> w;
    for (const auto& r : rows_)
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], r[i].size());
      }
    for (std::size_t k = 0; k < rows_.size(); ++k) {
      const auto& r = rows_[k];
      std::string line;
      for (std::size_t i = 0; i < r.size(); ++i) {
        std::string cell = r[i];
        std::string pad(w[i] - cell.size(), ' ');
        line += i == 0 ? cell + pad : "  " + pad + cell;
      }
      std::printf("%s\n", line.c_str());
      if (k == 0) {
        std::size_t total = 0;
        for (auto x : w) total += x + 2;
        std::printf("%s\n", std::string(total - 2, '-').c_str());
      }
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
inline std::string fmt_u(std::uint64_t v) { return std::to_string(v); }

inline void print_machine_header(const char* what) {
  std::printf("# %s  %s  nproc=%ld  cpu=%s\n", what, today().c_str(), nproc(), cpu_model().c_str());
}

// -------------------------------------------------------------------- cluster

/// N nodes with ids 1..N, driven by one thread, messages handed over by value.
///
/// The round is the one of ../shared/peers (etcd/main.go round(),
/// canonical/bench.c round_()):
///   phase 1: every node with pending output "persists" it (memory_log:
///            nothing to do), moves its messages to the network queue and
///            applies its committed entries (counts them and reads the first
///            and last payload byte); then its output is cleared;
///   phase 2: every message queued so far is delivered with step(); what the
///            receivers produce lands in their outputs and waits for the next
///            round's phase 1.
/// Nodes marked down neither process output nor receive messages (fail-over).
template <class Node = raft::node<>>
class cluster {
 public:
  using node_type = Node;
  using output_type = typename Node::output_type;
  using message_type = typename Node::message_type;
  using config_type = typename Node::config_type;

  /// `base` supplies every config field but id and voters.
  explicit cluster(std::size_t n, config_type base = config_type{}) {
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 1; i <= n; ++i) ids.push_back(i);
    nodes.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      config_type c = base;
      c.id = ids[i];
      c.voters = ids;
      nodes.emplace_back(std::move(c));
    }
    outs.resize(n);
    applied.assign(n, 0);
    last_applied.assign(n, 0);
    sum.assign(n, 0);
    up.assign(n, 1);
  }

  /// Phase 1 for node i.
  void process(std::size_t i) {
    output_type& o = outs[i];
    if (o.empty()) return;
    // 1. persist: memory_log holds the writes already.
    // 2. send
    for (auto& m : o.messages) queue.push_back(std::move(m));
    // 3. apply
    for (const auto& e : o.committed) {
      if (e.kind == raft::entry_kind::command && e.data.size() > 0) {
        ++applied[i];
        const std::byte* p = e.data.data();
        sum[i] += static_cast<std::uint64_t>(p[0]) + static_cast<std::uint64_t>(p[e.data.size() - 1]);
      }
      last_applied[i] = e.index.value;
    }
    o.clear();
    // Bound the log like the peers' harnesses do (etcd: MemoryStorage.Compact
    // every 8192 applied entries, keeping 8192; canonical: snapshots with
    // trailing 8192): hand the node an 8-byte "state machine snapshot" (the
    // applied count, as canonical's harness does) through node::compact().
    if (compact_every > 0 && last_applied[i] >= compact_every) {
      Node& n = nodes[i];
      if (last_applied[i] - n.log().first_index().value >= 2 * compact_every) {
        const std::uint64_t state = applied[i];
        const auto s = n.compact(raft::index_t{last_applied[i] - compact_every}, raft::bytes(&state, sizeof state), o);
        if (s != raft::compact_status::ok) die(std::string("compact refused: ") + raft::to_string(s));
      }
    }
  }

  /// One round: phase 1 on every node, then deliver what was queued.
  void round() {
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (up[i]) process(i);
    deliver();
  }

  /// Phase 2: delivers every queued message (messages produced meanwhile
  /// stay in the receivers' outputs until the next phase 1).
  void deliver() {
    std::swap(queue, spare);
    for (auto& m : spare) {
      const std::size_t to = static_cast<std::size_t>(m.to - 1);
      if (to >= nodes.size() || !up[to]) {
        ++dropped;
        continue;
      }
      if (const auto* ap = std::get_if<raft::append_request<typename Node::payload>>(&m.body);
          ap != nullptr && !ap->entries.empty())
        ++appends_with_entries;
      const raft::step_status s = nodes[to].step(std::move(m), outs[to]);
      if (s != raft::step_status::ok) ++not_ok;
      ++delivered;
    }
    spare.clear();
  }

  [[nodiscard]] bool idle() const {
    if (!queue.empty()) return false;
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (up[i] && !outs[i].empty()) return false;
    return true;
  }

  [[nodiscard]] std::uint64_t min_applied() const {
    std::uint64_t m = UINT64_MAX;
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (up[i]) m = std::min(m, applied[i]);
    return m;
  }

  /// Elects node `i` with campaign() and rounds, no ticks (like the peers).
  void elect(std::size_t i = 0) {
    nodes[i].campaign(outs[i]);
    for (int r = 0; r < 20; ++r) round();
    if (!nodes[i].is_leader()) die("node " + std::to_string(i + 1) + " did not become leader");
  }

  std::vector<Node> nodes;
  std::vector<output_type> outs;
  std::vector<message_type> queue, spare;
  std::vector<std::uint64_t> applied;       // command entries applied, per node
  std::vector<std::uint64_t> last_applied;  // last applied index, per node
  std::vector<std::uint64_t> sum;           // payload bytes read by "apply"
  std::vector<char> up;                     // 0: crashed (fail-over benchmark)
  std::uint64_t compact_every = 8192;       // 0: never compact
  std::uint64_t delivered = 0, dropped = 0, not_ok = 0;
  std::uint64_t appends_with_entries = 0;   // delivered AppendEntries that carried entries
};

// ------------------------------------------------------------- workload 1

/// One configuration of workload 1, with the parameters of the peer harnesses.
struct workload {
  std::uint64_t nodes = 3;
  std::uint64_t entries = 200000;
  std::uint64_t batch = 1;     // closed loop: propose `batch`, run rounds until the leader applied them
  std::uint64_t window = 0;    // >0: open loop with up to `window` entries proposed but not applied by the leader
  bool multi = false;          // one propose_batch() per batch instead of one propose() per entry
  std::uint64_t payload = 128;
  bool shared_payload = false; // one raft::bytes proposed every time instead of a fresh buffer per entry
  std::uint64_t compact = 8192;

  [[nodiscard]] std::string mode_name() const {
    std::string m = window > 0 ? "window=" + std::to_string(window) : "batch=" + std::to_string(batch);
    if (multi) m += "(multi)";
    return m;
  }
};

struct workload_result {
  double seconds = 0;
  std::uint64_t rounds = 0;       // rounds run by the main loop (the drain is not counted, as in the peers)
  std::uint64_t allocs = 0;       // operator new calls in the timed section
  std::uint64_t alloc_bytes = 0;  // bytes those calls asked for
  std::uint64_t messages = 0;     // messages delivered in the timed section
  std::uint64_t not_ok = 0;       // step() calls that did not return ok (expected: 0)
  std::uint64_t drain_ticks = 0;  // leader ticks the drain needed (see drive())
  std::uint64_t appends = 0;      // AppendEntries carrying entries delivered in the timed section
};

/// The library's default configuration, as the peers configure theirs
/// (ElectionTick 10, HeartbeatTick 1, MaxInflightMsgs 256, MaxSizePerMsg 1 MiB).
inline raft::config<std::uint64_t> default_config() {
  raft::config<std::uint64_t> cfg{};
  cfg.election_ticks = 10;
  cfg.heartbeat_ticks = 1;
  cfg.max_inflight = 256;
  cfg.max_append_bytes = std::size_t{1} << 20;
  cfg.max_append_entries = 4096;
  cfg.random_seed = 1;
  return cfg;
}

/// The timed part of workload 1 on an elected cluster whose leader is node 1:
/// commits p.entries more entries and returns the measurements. Mirrors the
/// main loops of ../shared/peers/etcd/main.go and canonical/bench.c line by
/// line.
template <class Node>
workload_result drive(cluster<Node>& c, const workload& p) {
  Node& leader = c.nodes[0];
  typename Node::output_type& lout = c.outs[0];
  if (!leader.is_leader()) die("drive: node 1 is not the leader");
  c.compact_every = p.compact;

  std::vector<char> buf(p.payload);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i);
  const raft::bytes shared(buf.data(), buf.size());
  std::vector<raft::bytes> batchv;
  batchv.reserve(std::max(p.batch, p.window));

  const std::uint64_t N = p.entries;
  std::vector<std::uint64_t> applied0 = c.applied;  // count from here
  auto applied = [&](std::size_t i) { return c.applied[i] - applied0[i]; };
  auto min_applied = [&] {
    std::uint64_t m = UINT64_MAX;
    for (std::size_t i = 0; i < c.nodes.size(); ++i) m = std::min(m, applied(i));
    return m;
  };
  std::uint64_t proposed = 0;
  auto make = [&](std::uint64_t seq) {
    if (p.shared_payload) return shared;
    // As canonical's harness: a fresh buffer per entry, filled with a byte
    // that depends on the sequence number.
    std::memset(buf.data(), static_cast<int>(seq & 0xff), buf.size());
    return raft::bytes(buf.data(), buf.size());
  };
  auto propose = [&](std::uint64_t k) {
    if (p.multi && k > 1) {
      batchv.clear();
      for (std::uint64_t i = 0; i < k; ++i) batchv.push_back(make(proposed + i));
      if (!leader.propose_batch(std::move(batchv), lout).ok()) die("propose_batch refused");
    } else {
      for (std::uint64_t i = 0; i < k; ++i)
        if (!leader.propose(make(proposed + i), lout).ok()) die("propose refused");
    }
    proposed += k;
  };

  const std::uint64_t delivered0 = c.delivered;
  const std::uint64_t appends0 = c.appends_with_entries;
  const std::uint64_t not_ok0 = c.not_ok;
  const alloc_counters a0 = g_alloc;
  std::uint64_t rounds = 0;
  const auto t0 = clock_type::now();
  if (p.window > 0) {
    const std::uint64_t W = p.window;
    while (applied(0) < N) {
      if (proposed < N) {
        const std::uint64_t out = proposed - applied(0);
        if (out < W) {
          std::uint64_t k = W - out;
          if (proposed + k > N) k = N - proposed;
          propose(k);
        }
      }
      c.round();
      ++rounds;
    }
  } else {
    const std::uint64_t B = p.batch;
    while (proposed < N) {
      std::uint64_t k = B;
      if (proposed + k > N) k = N - proposed;
      propose(k);
      while (applied(0) < proposed) {
        c.round();
        ++rounds;
      }
    }
  }
  // Drain: until every node applied everything. Timed, as in the peers.
  // A follower whose acknowledgement reaches the leader after the leader
  // committed learns the final commit index only from the next heartbeat
  // (like canonical raft's followers), so when the cluster goes quiet the
  // drain ticks the leader once, as ../shared/peers/canonical/bench.c does.
  std::uint64_t drain_ticks = 0;
  for (int guard = 0; min_applied() < N; ++guard) {
    if (guard > 10000) die("followers never applied every entry");
    if (c.idle()) {
      leader.tick(lout);
      ++drain_ticks;
    }
    c.round();
  }
  const double el = seconds_since(t0);
  const alloc_counters a1 = g_alloc;
  for (std::size_t i = 0; i < c.nodes.size(); ++i)
    if (applied(i) != N)
      die("node " + std::to_string(i + 1) + " applied " + std::to_string(applied(i)) + " != " + std::to_string(N));
  workload_result r;
  r.seconds = el;
  r.rounds = rounds;
  r.allocs = a1.calls - a0.calls;
  r.alloc_bytes = a1.bytes - a0.bytes;
  r.messages = c.delivered - delivered0;
  r.not_ok = c.not_ok - not_ok0;
  r.drain_ticks = drain_ticks;
  r.appends = c.appends_with_entries - appends0;
  return r;
}

/// Builds a p.nodes cluster with the default configuration, elects node 1
/// (campaign, no ticks) and runs drive().
inline workload_result run_workload(const workload& p) {
  cluster<raft::node<>> c(p.nodes, default_config());
  c.compact_every = p.compact;
  c.elect(0);
  return drive(c, p);
}

/// The peer-format line (see ../shared/peers/etcd/main.go), with `name` first.
inline std::string peer_line(const char* name, const workload& p, const workload_result& r) {
  const double N = static_cast<double>(p.entries);
  char per_batch[128];
  if (p.window > 0) {
    std::snprintf(per_batch, sizeof per_batch, "us_per_batch_commit=na rounds_per_batch=na");
  } else {
    const double batches = N / static_cast<double>(p.batch);
    std::snprintf(per_batch, sizeof per_batch, "us_per_batch_commit=%.2f rounds_per_batch=%.2f",
                  r.seconds * 1e6 / batches, static_cast<double>(r.rounds) / batches);
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s %" PRIu64 "nodes %s entries=%" PRIu64
                " entries_per_s=%.0f ns_per_entry=%.1f %s rounds_total=%" PRIu64
                " allocs_per_entry=%.2f bytes_alloc_per_entry=%.0f",
                name, p.nodes, p.mode_name().c_str(), p.entries, N / r.seconds, r.seconds * 1e9 / N, per_batch,
                r.rounds, static_cast<double>(r.allocs) / N, static_cast<double>(r.alloc_bytes) / N);
  std::string s = buf;
  if (r.not_ok) s += " not_ok_steps=" + std::to_string(r.not_ok);
  return s;
}

}  // namespace bench
