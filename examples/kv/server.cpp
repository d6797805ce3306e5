// examples/kv/server.cpp - kv-server: one node of a replicated key-value store.
//
//   kv-server --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//             --data /tmp/kv1 --listen 127.0.0.1:8001
//             [--client-addrs 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003]
//             [--durability async|sync] [--reads index|log] [--lease-reads]
//   kv-server --join --id 4 --peers 4=127.0.0.1:7004 --data /tmp/kv4 --listen 127.0.0.1:8004
//             (a new node for an existing cluster; then kv-cli add-learner 4 127.0.0.1:7004 127.0.0.1:8004)
//
// Membership. The founding members are the ids of --peers (config.voters);
// a node started with --join has none (config.voters empty, an empty data
// directory) and learns the membership from the leader once an administrator
// added it (POST /admin/add-learner, /admin/add-witness; /admin/promote,
// /admin/remove; kv-cli add-learner, add-witness, promote, remove, members).
// Every node keeps an address book: node id -> (peer address, client
// address). It is seeded from --peers and --client-addrs, and extended by
//   * the context of every configuration entry in the log (as soon as it is
//     appended): kv-server puts the address book of the members - the added
//     node's addresses included - in every change it proposes;
//   * the store snapshot (command.hpp), so a node that catches up by
//     InstallSnapshot learns the addresses of members added before it;
//   * the peer handshake, which says where the dialling node listens: a node
//     that does not know the dialler yet (it joined, or was away while the
//     dialler was added) learns where to answer. Only unknown ids are learned
//     this way; what the log says wins.
// The network layer dials every member it has an address for, and any node
// the Raft node sends to; connections to nodes that left the configuration
// are closed once they have been idle for a few seconds (the node stops
// sending to a removed peer once its removal committed).
// A witness (configuration.witnesses) gets entries without payloads and
// snapshots without data: its kv-server applies nothing to a store (it has
// none), compacts its log with empty snapshot data, and redirects clients to
// the leader like any follower.
//
// One event-loop thread, one poll() loop; with --durability async (the
// default) a second thread, the writer, does the fdatasync()s (flusher.hpp).
// Each iteration:
//   1. poll for socket readiness and the writer's completions, at most until
//      the next tick is due;
//   2. if the writer finished a flush: mark the log durable up to it and
//      report it to the node (node.persisted()), which releases the
//      acknowledgements and votes that waited for it and lets a leader count
//      its own copy toward commit;
//      read every ready peer connection and step() each decoded message;
//      run the ticks that CLOCK_MONOTONIC says are due; read every ready
//      client connection and collect its commands;
//   3. propose all collected commands in one propose_batch();
//   4. carry out the output of all those calls together:
//      durability - async: disk_log::write_out() pwrite()s every entry of the
//      iteration to the active segment and the ticket goes to the writer
//      (merged with any waiting for the one running: group commit across
//      iterations); the loop does not wait. The rare writes - hard state, a
//      snapshot file, a segment roll-over, a log truncation - happen in the
//      loop, inside write_out(); a truncation first waits for the writer to
//      be idle (disk_log.hpp, "Asynchronous flushing", says why the others
//      need not); the files a snapshot made obsolete are removed by the
//      writer after its fdatasync;
//      sync: one disk_log::sync() (one fdatasync for every entry and vote of
//      the iteration) and the report, before anything else;
//      then queue every message to its peer (a leader's AppendEntries leave
//      before its own copy is durable), then restore the state machine if the
//      output carries a snapshot, then apply the committed entries and answer
//      the clients waiting on them (matched by index and term), then serve
//      the ReadIndex reads the output confirmed (out.reads) from the store
//      and answer the failed ones (out.failed_reads) "not leader", then log
//      role changes and transfers - and if this node just lost its
//      leadership, answer every write still waiting "leadership lost,
//      outcome unknown"; then, if --snapshot-every entries were applied
//      since the last snapshot, serialize the store, node.compact() and
//      carry out that too;
//   5. write what can be written without blocking.
// Nothing that promises durable state leaves the process before that state
// is on disk, in either mode: the node holds acknowledgements and vote grants
// until they are reported durable, and a leader commits an entry only once a
// majority has it durably, counting its own copy only once reported.
//
// Peers: every node dials every other node and sends its messages on that
// outbound connection; it receives on the connections the others dialled.
// A connection starts with a handshake frame (cluster id, from, to); frames
// are length:u32 + crc32c:u32 (big-endian) + raft::codec bytes, at most
// --max-frame bytes (net.hpp). A connection that sends garbage, an oversized
// or damaged (checksum) frame, or a message that contradicts its handshake is
// closed with a logged reason. A peer that dials us is dialled back at once
// (not after our reconnect back-off): a restarted node hears from the leader
// before its election timeout runs out.
//
// Clients: HTTP/1.1 keep-alive, or one request per connection (HTTP/1.0,
// "Connection: close"): then the connection is closed once the answer -
// which for a write waits for the commit - is written, with a lingering
// close (shutdown the write side, drain, then close) so that the answer is
// not lost to a reset.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <raft/raft.hpp>

#include "command.hpp"
#include "disk_log.hpp"
#include "flusher.hpp"
#include "http.hpp"
#include "net.hpp"
#include "pending.hpp"

namespace {

using node_t = raft::node<raft::default_transport, kv::disk_log>;
using codec_t = raft::codec<raft::default_transport>;

struct options {
  std::uint64_t id = 0;
  std::map<std::uint64_t, kv::endpoint> peers;
  std::map<std::uint64_t, kv::endpoint> client_addrs;
  std::string data;
  kv::endpoint listen;
  std::string cluster = "kv";
  int tick_ms = 10;
  std::uint32_t election_ticks = 20;
  std::uint32_t heartbeat_ticks = 2;
  std::size_t max_key = 1024;
  std::size_t max_value = std::size_t{1} << 20;
  std::uint32_t max_frame = std::uint32_t{16} << 20;
  int request_timeout_ms = 5000;
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  std::uint64_t preallocate_bytes = std::uint64_t{1} << 20;
  std::uint64_t snapshot_every = 10000;
  bool fsync = true;
  bool async_durability = true;  // --durability async|sync
  bool debug = false;
  std::uint64_t seed = 0;
  bool reads_through_log = false;  // --reads log: a GET is a log entry (the old path); default: ReadIndex
  bool lease_reads = false;        // --lease-reads: config.lease_reads, GET /kv/K?lease=1
  bool pre_vote = true;            // --no-pre-vote: config.pre_vote = false (comparison only)
  bool check_quorum = true;        // --no-check-quorum: config.check_quorum = false (comparison only)
  bool join = false;               // --join: a new node for an existing cluster (empty data dir, no voters)
};

std::uint64_t g_id = 0;
int g_signal_pipe[2] = {-1, -1};

void logf(const char* level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void logf(const char* level, const char* fmt, ...) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::localtime_r(&ts.tv_sec, &t);
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "%02d:%02d:%02d.%03ld kv-server[%" PRIu64 "] %-5s %s\n", t.tm_hour, t.tm_min, t.tm_sec,
               ts.tv_nsec / 1000000, g_id, level, msg);
}

void on_signal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] auto r = ::write(g_signal_pipe[1], &c, 1);
}

/// How this binary was compiled, for the startup line: a debug build is
/// several times slower, and should not be mistaken for a release one.
constexpr const char* build_flavour() {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
  return "optimized, assertions off";
#elif defined(__OPTIMIZE__)
  return "optimized, assertions on";
#else
  return "WITHOUT optimization (a debug build: slow)";
#endif
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "kv-server: %s\n"
               "usage: kv-server --id N --peers 1=HOST:PORT,2=HOST:PORT,... --data DIR --listen HOST:PORT\n"
               "  --client-addrs 1=HOST:PORT,...  every node's --listen address, for redirects (default: none, 421)\n"
               "  --join                  start a new node that joins an existing cluster: the data directory must\n"
               "                          be empty or missing; --peers needs only this node (other addresses are\n"
               "                          learned from the cluster); then add it on the leader (kv-cli add-learner\n"
               "                          ID RAFT CLIENT, later kv-cli promote ID). Restart it later WITHOUT --join\n"
               "  --cluster NAME          cluster id checked in the peer handshake (default kv)\n"
               "  --tick-ms N             milliseconds per Raft tick (default 10)\n"
               "  --election-ticks N      election timeout in ticks, randomised in [N, 2N) (default 20)\n"
               "  --heartbeat-ticks N     heartbeat interval in ticks (default 2)\n"
               "  --max-key N             largest key in bytes (default 1024)\n"
               "  --max-value N           largest value in bytes (default 1048576)\n"
               "  --max-frame N           largest peer frame in bytes (default 16777216)\n"
               "  --request-timeout-ms N  answer 504 after this long without a commit (default 5000)\n"
               "  --segment-bytes N       log segment size (default 67108864)\n"
               "  --preallocate-bytes N   zero-fill the log segment ahead of its records, up to N bytes at a time\n"
               "                          (default 1048576; 0: never): fdatasync then has no file size to commit\n"
               "  --snapshot-every N      snapshot the store and compact the log every N applied entries\n"
               "                          (default 10000; 0: never)\n"
               "  --durability MODE       async (default): a writer thread fdatasyncs while the loop goes on\n"
               "                          (followers are sent new entries before the leader's copy is durable);\n"
               "                          sync: the loop fdatasyncs before it sends or answers anything\n"
               "  --no-fsync              skip fsync (benchmark comparison only: loses acknowledged writes on a crash)\n"
               "  --reads MODE            index (default): a GET is a ReadIndex read - no log entry, no fsync;\n"
               "                          one heartbeat round confirms leadership, shared by concurrent reads;\n"
               "                          log: a GET is a log entry like a write (the old path, for comparison)\n"
               "  --lease-reads           allow GET /kv/KEY?lease=1: served at once while the leader's lease\n"
               "                          holds (assumes clock drift under 2 ticks per election timeout);\n"
               "                          without this flag ?lease=1 answers 400\n"
               "  --no-pre-vote           turn PreVote off (comparison only: a rejoining node may depose the leader)\n"
               "  --no-check-quorum       turn CheckQuorum and leader stickiness off (comparison only: a leader\n"
               "                          cut off from its quorum keeps its clients waiting until they time out)\n"
               "  --debug                 enable /debug/local/KEY and /debug/committed, journal every applied\n"
               "                          entry to DATA/debug-applied, and on SIGUSR1 exit as a power failure\n"
               "                          would leave the log: without what was not yet fdatasynced (tests);\n"
               "                          POST /debug/isolate?on=1 is a fault switch: this node drops every\n"
               "                          peer message in and out (its network is cut; connections stay up and\n"
               "                          client HTTP keeps working) until POST /debug/isolate?on=0\n"
               "  --seed N                election randomness seed (default: from the clock)\n"
               "  --build-info            print how this binary was compiled (optimized or not) and exit\n",
               why);
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  options o;
  auto num = [&](const char* s, const char* flag) -> std::uint64_t {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') usage((std::string("bad number for ") + flag).c_str());
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--id") o.id = num(val(), "--id");
    else if (a == "--peers") {
      auto m = kv::parse_id_map(val());
      if (!m) usage("bad --peers (expected 1=HOST:PORT,2=HOST:PORT,...)");
      o.peers = *m;
    } else if (a == "--client-addrs") {
      auto m = kv::parse_id_map(val());
      if (!m) usage("bad --client-addrs (expected 1=HOST:PORT,...)");
      o.client_addrs = *m;
    } else if (a == "--data") o.data = val();
    else if (a == "--listen") {
      auto e = kv::parse_endpoint(val());
      if (!e) usage("bad --listen (expected HOST:PORT)");
      o.listen = *e;
    } else if (a == "--cluster") o.cluster = val();
    else if (a == "--tick-ms") o.tick_ms = static_cast<int>(num(val(), "--tick-ms"));
    else if (a == "--election-ticks") o.election_ticks = static_cast<std::uint32_t>(num(val(), "--election-ticks"));
    else if (a == "--heartbeat-ticks") o.heartbeat_ticks = static_cast<std::uint32_t>(num(val(), "--heartbeat-ticks"));
    else if (a == "--max-key") o.max_key = num(val(), "--max-key");
    else if (a == "--max-value") o.max_value = num(val(), "--max-value");
    else if (a == "--max-frame") o.max_frame = static_cast<std::uint32_t>(num(val(), "--max-frame"));
    else if (a == "--request-timeout-ms") o.request_timeout_ms = static_cast<int>(num(val(), "--request-timeout-ms"));
    else if (a == "--segment-bytes") o.segment_bytes = num(val(), "--segment-bytes");
    else if (a == "--preallocate-bytes") o.preallocate_bytes = num(val(), "--preallocate-bytes");
    else if (a == "--snapshot-every") o.snapshot_every = num(val(), "--snapshot-every");
    else if (a == "--no-fsync") o.fsync = false;
    else if (a == "--durability") {
      const std::string m = val();
      if (m == "async") o.async_durability = true;
      else if (m == "sync") o.async_durability = false;
      else usage("--durability must be async or sync");
    }
    else if (a == "--debug") o.debug = true;
    else if (a == "--reads") {
      const std::string m = val();
      if (m == "index") o.reads_through_log = false;
      else if (m == "log") o.reads_through_log = true;
      else usage("--reads must be index or log");
    } else if (a == "--lease-reads") o.lease_reads = true;
    else if (a == "--no-pre-vote") o.pre_vote = false;
    else if (a == "--no-check-quorum") o.check_quorum = false;
    else if (a == "--join") o.join = true;
    else if (a == "--seed") o.seed = num(val(), "--seed");
    else if (a == "--build-info") {
      std::printf("kv-server: built %s\n", build_flavour());
      std::exit(0);
    } else if (a == "--help" || a == "-h") usage("help");
    else usage(("unknown option " + a).c_str());
  }
  if (o.id == 0) usage("--id is required (a positive integer)");
  if (o.peers.empty()) usage("--peers is required");
  if (o.peers.count(o.id) == 0) usage("--peers must include this node's --id");
  if (o.data.empty()) usage("--data is required");
  if (o.listen.port == 0) usage("--listen is required");
  if (o.tick_ms < 1 || o.tick_ms > 1000) usage("--tick-ms must be in [1, 1000]");
  if (o.max_key < 1 || o.max_key > 65536) usage("--max-key must be in [1, 65536]");
  if (o.max_value > (std::size_t{64} << 20)) usage("--max-value must be at most 64 MiB");
  if (o.max_frame < 4096 || o.max_frame < o.max_value * 2 + 65536)
    usage("--max-frame must be at least 4096 and at least 2 * --max-value + 65536");
  if (o.cluster.empty() || o.cluster.size() > 200) usage("--cluster must be 1 to 200 bytes");
  if (o.lease_reads && !o.check_quorum) usage("--lease-reads needs CheckQuorum: drop --no-check-quorum");
  if (o.lease_reads && o.reads_through_log) usage("--lease-reads needs --reads index");
  if (o.lease_reads && o.election_ticks <= 2) usage("--lease-reads needs --election-ticks above 2 (the drift bound)");
  if (o.seed == 0) o.seed = static_cast<std::uint64_t>(kv::now_us()) ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  return o;
}

/// DATA/identity records which node of which cluster owns the directory, so
/// that a node started on another node's data refuses instead of joining
/// with a log that is not its own.
void check_identity(const options& o) {
  const std::string want = "cluster=" + o.cluster + "\nid=" + std::to_string(o.id) + "\n";
  const std::string file = o.data + "/identity";
  if (FILE* f = std::fopen(file.c_str(), "rb")) {
    char buf[512];
    const std::size_t n = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    if (std::string(buf, n) != want)
      throw kv::log_error("data directory " + o.data + " belongs to another node or cluster (" + file + " says: " +
                          std::string(buf, n) + "); refusing to start");
    return;
  }
  const std::string tmp = file + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::write(fd, want.data(), want.size()) != static_cast<ssize_t>(want.size()) || ::fsync(fd) != 0 ||
      ::close(fd) != 0 || ::rename(tmp.c_str(), file.c_str()) != 0)
    throw kv::log_error("cannot write " + file + ": " + std::strerror(errno));
  const int dfd = ::open(o.data.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

/// --join: the data directory must be missing or empty. A directory with a
/// log in it belongs to a node that already has state: joining would have
/// it pretend to be new (and, for a founding node, bootstrap twice).
void check_join_dir(const options& o) {
  DIR* d = ::opendir(o.data.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return;
    throw kv::log_error("--join: cannot read data directory " + o.data + ": " + std::strerror(errno));
  }
  std::vector<std::string> found;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") found.push_back(n);
  }
  ::closedir(d);
  if (found.empty()) return;
  std::sort(found.begin(), found.end());
  std::string names;
  for (std::size_t i = 0; i < found.size() && i < 5; ++i) names += (i ? ", " : "") + found[i];
  if (found.size() > 5) names += ", ...";
  throw std::runtime_error("--join needs an empty (or missing) data directory, but " + o.data + " holds " +
                           std::to_string(found.size()) + " file(s) (" + names +
                           "): it is the data of a node that already has state. To restart that node, drop --join; "
                           "to add a brand-new node, give it a new --id and an empty --data directory");
}

/// DATA/joined marks a node started with --join: restarted later (without
/// --join), it still has no bootstrap voters - its membership comes only from
/// its log - so it can never found a cluster of its own.
std::string joined_path(const options& o) { return o.data + "/joined"; }
bool joined_before(const options& o) { return ::access(joined_path(o).c_str(), F_OK) == 0; }
void mark_joined(const options& o) {
  const std::string file = joined_path(o);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  static const char text[] = "this node joined an existing cluster (kv-server --join): it has no bootstrap voters\n";
  if (fd < 0 || ::write(fd, text, sizeof text - 1) != static_cast<ssize_t>(sizeof text - 1) || ::fsync(fd) != 0 ||
      ::close(fd) != 0)
    throw kv::log_error("cannot write " + file + ": " + std::strerror(errno));
  const int dfd = ::open(o.data.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out.empty() ? "-" : out;
}

class server {
 public:
  server(options o, kv::disk_log log, bool joined)
      : opt_(std::move(o)), node_(make_config_(opt_, joined), std::move(log)),
        startup_snapshot_(node_.log().snapshot_index().value), joined_(joined) {}

  int run() {
    raft_listen_ = kv::listen_on(opt_.peers.at(opt_.id));
    http_listen_ = kv::listen_on(opt_.listen);
    // The address book, seeded from the command line.
    for (const auto& [id, ep] : opt_.peers) book_[id].raft = ep.str();
    for (const auto& [id, ep] : opt_.client_addrs) {
      if (auto it = book_.find(id); it != book_.end()) it->second.client = ep.str();
      else logf("WARN", "--client-addrs names node %" PRIu64 ", which --peers does not: ignored", id);
    }
    if (book_[opt_.id].client.empty()) book_[opt_.id].client = opt_.listen.str();
    self_addrs_ = book_[opt_.id];
    scan_log_();
    reconcile_peers_();
    if (opt_.debug) {
      const std::string j = journal_path_();
      journal_fd_ = ::open(j.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (journal_fd_ < 0) throw kv::log_error("cannot open " + j + ": " + std::strerror(errno));
    }
    if (opt_.async_durability) writer_ = std::make_unique<writer_t>();
    logf("INFO", "node %" PRIu64 " of cluster '%s' up: raft on %s, clients on %s, term %" PRIu64 ", snapshot at %" PRIu64
         ", log up to %" PRIu64 ", fsync %s, durability %s, snapshot every %" PRIu64 " entries; built %s",
         opt_.id, opt_.cluster.c_str(), opt_.peers.at(opt_.id).str().c_str(), opt_.listen.str().c_str(),
         node_.term().value, node_.log().snapshot_index().value, node_.last_index().value, opt_.fsync ? "on" : "OFF",
         writer_ ? "async (writer thread)" : "sync", opt_.snapshot_every, build_flavour());
    logf("INFO", "reads: %s; pre-vote %s, check-quorum %s; election timeout %d-%d ms, heartbeat every %d ms",
         opt_.reads_through_log ? "through the log (--reads log)"
         : opt_.lease_reads    ? "ReadIndex, lease reads allowed (?lease=1)"
                               : "ReadIndex",
         opt_.pre_vote ? "on" : "OFF", opt_.check_quorum ? "on" : "OFF",
         static_cast<int>(opt_.election_ticks) * opt_.tick_ms, 2 * static_cast<int>(opt_.election_ticks) * opt_.tick_ms,
         static_cast<int>(opt_.heartbeat_ticks) * opt_.tick_ms);
    if (joined_ && node_.configuration().voters.empty())
      logf("INFO", "joining an existing cluster: no membership known yet; waiting for the leader to add this node "
                   "(kv-cli add-learner %" PRIu64 " %s %s)",
           opt_.id, self_addrs_.raft.c_str(), self_addrs_.client.c_str());
    next_tick_ = kv::now_ms() + opt_.tick_ms;
    while (!stopping_) iterate_();
    shutdown_();
    return 0;
  }

 private:
  using writer_t = kv::flusher<raft::log_write>;

  struct peer_out {
    std::uint64_t id = 0;
    kv::endpoint ep;
    int fd = -1;
    enum class state { idle, connecting, connected } st = state::idle;
    std::vector<std::byte> wbuf;
    std::size_t woff = 0;
    std::int64_t next_attempt = 0;
    std::int64_t connected_at = 0;
    int backoff_ms = 50;
    bool was_up = false;
    std::uint64_t dropped = 0;
    std::int64_t last_used = 0;  // CLOCK_MONOTONIC ms: a message was last queued for it
  };
  struct peer_in {
    int fd = -1;
    std::string addr;
    std::vector<std::byte> rbuf;
    bool ready = false;  // handshake accepted
    std::uint64_t from = 0;
    bool dead = false;
  };
  struct client {
    std::uint64_t id = 0;
    int fd = -1;
    std::string addr;
    std::string rbuf;
    std::string wbuf;
    std::size_t woff = 0;
    bool waiting = false;  // a request of this client is queued or proposed: no answer yet
    bool continue_sent = false;
    bool close_after_write = false;  // close once the answer to the current request is written
    bool http10_keep_alive = false;  // the current request is HTTP/1.0 with "Connection: keep-alive"
    bool closing = false;            // answered, write side shut down: draining until EOF or close_deadline
    std::int64_t close_deadline = 0;
    bool dead = false;
  };
  struct queued {
    std::uint64_t client = 0;
    raft::bytes cmd;
    kv::op op = kv::op::get;
    std::string target;  // the request target, for a redirect
  };
  /// A GET waiting for its ReadIndex confirmation (node::read_index).
  struct waiting_read {
    std::uint64_t client = 0;
    std::string key;
    std::int64_t deadline = 0;  // CLOCK_MONOTONIC ms: answered 504 after this
    bool confirmed = false;     // in out.reads; waits only for the store to apply its index
  };

  static raft::config<std::uint64_t> make_config_(const options& o, bool joined) {
    raft::config<std::uint64_t> c;
    c.id = o.id;
    // A founding node bootstraps with the ids of --peers; a node that joined
    // has no voters of its own: its membership comes from the leader (log).
    if (!joined)
      for (const auto& [id, ep] : o.peers) c.voters.push_back(id);
    c.election_ticks = o.election_ticks;
    c.heartbeat_ticks = o.heartbeat_ticks;
    c.max_inflight = 256;
    c.max_append_bytes = std::size_t{1} << 20;
    c.max_append_entries = 4096;
    // A chunk must fit in a peer frame (with room for the message around it).
    c.snapshot_chunk_bytes = std::min<std::size_t>(std::size_t{1} << 20, o.max_frame / 2);
    c.random_seed = o.seed;
    c.pre_vote = o.pre_vote;
    c.check_quorum = o.check_quorum;
    c.lease_reads = o.lease_reads;
    return c;
  }

  // ----------------------------------------------------------- event loop

  void iterate_() {
    // Poll set: [signal pipe, writer's eventfd (-1: none), raft listener, http listener, peers out..., peers in...,
    // clients...]
    pfds_.clear();
    pfds_.push_back({g_signal_pipe[0], POLLIN, 0});
    pfds_.push_back({writer_ ? writer_->event_fd() : -1, POLLIN, 0});
    pfds_.push_back({raft_listen_, POLLIN, 0});
    pfds_.push_back({http_listen_, POLLIN, 0});
    for (auto& p : peers_out_) {
      short ev = 0;
      if (p->st == peer_out::state::connecting) ev = POLLOUT;
      else if (p->st == peer_out::state::connected) ev = static_cast<short>(POLLIN | (p->woff < p->wbuf.size() ? POLLOUT : 0));
      pfds_.push_back({p->fd, ev, 0});
    }
    for (auto& p : peers_in_) pfds_.push_back({p->fd, POLLIN, 0});
    const std::size_t n_in = peers_in_.size();  // accept_peers_() below appends after these
    for (auto& [id, c] : clients_) {
      short ev = c->closing ? POLLIN : c->waiting || c->close_after_write ? 0 : POLLIN;
      if (c->woff < c->wbuf.size()) ev = static_cast<short>(ev | POLLOUT);
      pfds_.push_back({c->fd, ev, 0});
    }
    const std::int64_t now0 = kv::now_ms();
    const int timeout = static_cast<int>(std::clamp<std::int64_t>(next_tick_ - now0, 0, opt_.tick_ms));
    const int n = ::poll(pfds_.data(), pfds_.size(), timeout);
    if (n < 0 && errno != EINTR) {
      logf("ERROR", "poll: %s", std::strerror(errno));
      stopping_ = true;
      return;
    }
    std::size_t k = 0;
    if (pfds_[k++].revents != 0) {
      char buf[16];
      ssize_t got = 0;
      bool stop = false, power_loss = false;
      while ((got = ::read(g_signal_pipe[0], buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < got; ++i) (buf[i] == SIGUSR1 ? power_loss : stop) = true;
      if (power_loss && opt_.debug) simulate_power_loss_();
      if (stop) {
        logf("INFO", "signal received: shutting down");
        stopping_ = true;
      }
    }
    // The writer finished a flush: what it covered is durable.
    if (pfds_[k++].revents != 0 && writer_) {
      if (auto d = writer_->take_done()) on_flushed_(*d);
    }
    if (pfds_[k++].revents != 0) accept_peers_();
    if (pfds_[k++].revents != 0) accept_clients_();
    for (auto& p : peers_out_) on_peer_out_(*p, pfds_[k++].revents);
    for (std::size_t i = 0; i < n_in; ++i) {
      const short re = pfds_[k++].revents;
      if (re != 0) read_peer_(*peers_in_[i]);
    }
    // Ticks due by the monotonic clock (a long stall runs at most a few, so a
    // slow fsync cannot turn into a burst of elections).
    const std::int64_t now = kv::now_ms();
    for (int t = 0; t < 5 && now >= next_tick_; ++t) {
      node_.tick(out_);
      next_tick_ += opt_.tick_ms;
    }
    if (now >= next_tick_) next_tick_ = now + opt_.tick_ms;
    for (std::size_t i = 0; k < pfds_.size(); ++i, ++k) {
      if (pfds_[k].revents == 0) continue;
      auto it = clients_.find(client_order_[i]);
      if (it != clients_.end()) on_client_(*it->second, pfds_[k].revents);
    }
    retry_admin_();
    propose_queued_();
    // A flush that finished while this iteration ran (its eventfd is only
    // seen at the next poll): report it now, so that a leader whose own copy
    // is the second durable one commits in this iteration.
    if (writer_ && writer_->done_waiting()) {
      if (auto d = writer_->take_done()) on_flushed_(*d);
    }
    process_output_();
    expire_pending_();
    sweep_();
    reconcile_peers_();
    connect_due_peers_();
  }

  // ---------------------------------------------------------- the output

  void process_output_() {
    handle_output_();
    if (const auto c = maybe_compact_()) {
      handle_output_();  // the compaction's own output: the snapshot is written
      const auto& l = node_.log();
      logf("INFO",
           "compacted the log up to index %" PRIu64 " (term %" PRIu64 "): snapshot of %zu bytes (%zu keys); log now %" PRIu64
           " entries, %zu segments, %" PRIu64 " bytes (%" PRId64 " us)",
           c->upto, l.snapshot_term().value, c->bytes, store_.size(), l.last_index().value - l.snapshot_index().value,
           l.segment_count(), l.segment_bytes(), kv::now_us() - c->t0);
    }
  }

  /// Tells the node that the writes up to `w` are durable; it releases what
  /// waited for them into out_ (and may write again: a candidate that wins
  /// appends its no-op).
  void report_(const raft::log_write& w) {
    if (node_.persisted(w, out_) == raft::persist_status::unknown)
      throw std::logic_error("raft refused a durability report it issued");
  }

  /// The writer finished a flush (async mode).
  void on_flushed_(const writer_t::completion& d) {
    node_.log().mark_durable(d.ticket);
    if (d.tag.seq > node_.durable_write()) report_(d.tag);
  }

  /// Output step 1: make the output's Log writes durable (sync) or start to
  /// (async), and report what is durable.
  void persist_() {
    auto& log = node_.log();
    while (out_.persist && out_.persist->seq > submitted_seq_) {
      const raft::log_write w = *out_.persist;
      if (!writer_) {
        // Synchronous: one sync for everything this iteration wrote, then the
        // report; the node releases the acknowledgements and votes that waited
        // for it into this same output.
        log.sync();
        ++syncs_;
        submitted_seq_ = w.seq;
        report_(w);
        continue;
      }
      if (log.needs_quiesce() && !writer_->idle()) {
        // A truncation of the log: no file is cut under a running flush.
        // Wait for the writer, report what it finished, and look again
        // (reporting may write).
        if (auto d = writer_->wait_idle()) on_flushed_(*d);
        ++quiesces_;
        continue;
      }
      kv::flush_ticket t = log.write_out();
      submitted_seq_ = w.seq;
      if (t.file == nullptr && t.unlink.empty() && writer_->idle()) {
        // Nothing left to fdatasync (only the hard state, which write_out()
        // made durable itself, or fsync is off), no file to remove, and no
        // flush ahead of it.
        log.mark_durable(t);
        report_(w);
        continue;
      }
      writer_->submit(std::move(t), w);
    }
    if (!writer_ && log.dirty()) {
      log.sync();
      ++syncs_;
    }
  }

  /// --debug, SIGUSR1: exit leaving the log as a power failure now could -
  /// without the records not yet fdatasynced (those the node was never told
  /// are durable). Tests use it to check that nothing acknowledged is lost.
  [[noreturn]] void simulate_power_loss_() {
    std::uint64_t dropped = 0;
    try {
      dropped = node_.log().drop_unsynced_tail();
    } catch (const kv::log_error& e) {
      logf("ERROR", "simulated power loss: %s", e.what());
    }
    logf("WARN",
         "SIGUSR1 (--debug): simulating a power failure: dropped the %" PRIu64
         " entries not yet fdatasynced (durable up to %" PRIu64 ", written up to %" PRIu64 "); exiting",
         dropped, node_.log().durable_last().value, node_.log().written_last().value);
    std::fflush(stderr);
    ::_exit(9);
  }

  void handle_output_() {
    // 0. Configuration entries the Log gained: learn the addresses they carry
    //    (before any message to an added node is queued).
    scan_log_();
    // 1. Durability: sync and report (sync), or write and hand the flush to
    //    the writer (async).
    persist_();
    // 2. Messages. A leader's output whose messages carry no entries (commit
    //    notices, heartbeats) is sent after the clients are answered below:
    //    at one client that takes two sends off every write's path. Entries
    //    and everything a follower sends (acknowledgements) leave at once.
    bool carries_entries = false;
    for (auto& m : out_.messages) {
      queue_message_(m);
      if (const auto* a = std::get_if<raft::append_request<raft::bytes>>(&m.body)) carries_entries |= !a->entries.empty();
      else carries_entries |= std::holds_alternative<raft::install_snapshot>(m.body);
    }
    const bool peers_last = !carries_entries && node_.is_leader();
    if (!peers_last)
      for (auto& p : peers_out_) flush_peer_(*p);
    // 3. Restore the state machine from a snapshot (received from the leader,
    //    or the local one after a restart), 4. then apply, answer waiting clients.
    if (out_.snapshot) restore_(*out_.snapshot);
    for (const auto& e : out_.committed) apply_(e);
    flush_journal_();
    // 5. Reads: serve the confirmed ones from the store, which now holds
    //    every entry of this output; answer the failed ones "not leader".
    for (const auto& r : out_.reads) {
      if (auto it = reads_.find(r.id); it != reads_.end()) {
        it->second.confirmed = true;
        ready_reads_.push_back(r);
      }
    }
    serve_ready_reads_();
    for (const std::uint64_t id : out_.failed_reads) fail_read_(id);
    // 6. Role changes and leadership transfers.
    for (const auto& c : out_.changes) {
      logf("INFO", "now %s in term %" PRIu64 ", leader %s", raft::to_string(c.role), c.term.value,
           c.leader ? std::to_string(*c.leader).c_str() : "unknown");
    }
    for (const auto& t : out_.transfers) {
      logf("INFO", "leadership transfer to node %" PRIu64 ": %s", t.target, raft::to_string(t.outcome));
      last_transfer_ = transfer_report{t.target, raft::to_string(t.outcome), kv::now_ms()};
    }
    out_.clear();
    check_leadership_();
    for (auto& [id, c] : clients_) flush_client_(*c);
    if (peers_last)
      for (auto& p : peers_out_) flush_peer_(*p);
  }

  /// Serves the confirmed reads whose index the store has applied (output
  /// step 5). The node confirms a read once every entry up to its index was
  /// handed out, so on the leader this serves them all at once; one whose
  /// index is not applied yet waits for the next output.
  void serve_ready_reads_() {
    if (ready_reads_.empty()) return;
    std::erase_if(ready_reads_, [&](const raft::read_state& r) {
      if (r.index.value > applied_) return false;
      auto it = reads_.find(r.id);
      if (it == reads_.end()) return true;  // timed out already
      const waiting_read w = std::move(it->second);
      reads_.erase(it);
      auto c = clients_.find(w.client);
      if (c == clients_.end()) return true;  // the client went away: nothing to answer
      ++reads_served_;
      const std::string idx = "X-Raft-Index: " + std::to_string(r.index.value) + "\r\n";
      if (const std::string* v = store_.find(w.key)) reply_(*c->second, 200, *v, idx);
      else reply_(*c->second, 404, "key not found\n", idx);
      return true;
    });
  }

  /// The node will never confirm read `id` (it lost leadership): the client
  /// gets a definite "not leader" now, not a timeout.
  void fail_read_(std::uint64_t id) {
    auto it = reads_.find(id);
    if (it == reads_.end() || it->second.confirmed) return;
    const std::uint64_t client = it->second.client;
    reads_.erase(it);
    ++reads_failed_;
    if (auto c = clients_.find(client); c != clients_.end())
      not_leader_(*c->second, "not the leader any more: leadership was lost before the read was confirmed; "
                              "it was not served; retry on the leader");
  }

  /// 503 "not leader" with what this node knows about the leader
  /// (X-Raft-Leader, and Location when its client address is known).
  /// X-Outcome: not-applied - nothing happened, a retry is safe.
  void not_leader_(client& c, const std::string& why) {
    std::string h = "X-Outcome: not-applied\r\nX-Reason: not-leader\r\nRetry-After: 1\r\n";
    std::string body = why;
    const auto& leader = node_.leader();
    if (leader && *leader != opt_.id) {
      h += "X-Raft-Leader: " + std::to_string(*leader) + "\r\n";
      body += "; the leader is node " + std::to_string(*leader);
      if (const std::string* a = client_addr_(*leader)) {
        h += "Location: http://" + *a + "/\r\n";
        body += " at " + *a;
      }
    } else {
      body += "; no leader known yet";
    }
    reply_(c, 503, body + "\n", h);
  }

  /// After each output: if this node was leader and is not any more (or
  /// leads a newer term), every request it was holding gets a definite
  /// answer now. Writes whose entry was decided in this output already got
  /// theirs (pending.hpp); for the others the outcome is not known - the
  /// entry may still commit under the new leader - so they are answered
  /// "leadership lost, outcome unknown" (never "not applied": that is said
  /// only when certain). Reads the node failed got "not leader" above; any it
  /// did not fail (it should have) are failed here too.
  void check_leadership_() {
    const bool leader = node_.is_leader();
    if (was_leader_ && (!leader || node_.term() != leader_term_)) {
      const std::size_t writes = pending_.size();
      std::size_t reads = 0;
      for (const auto& [id, r] : reads_) reads += !r.confirmed;
      logf("WARN", "lost the leadership of term %" PRIu64 " (now %s in term %" PRIu64
                   "): answering %zu waiting writes 503 (outcome unknown)%s",
           leader_term_.value, raft::to_string(node_.role()), node_.term().value, writes,
           reads != 0 ? "; raft did not fail every pending read, failing the rest" : "");
      pending_.clear([&](const kv::pending_request& p, kv::request_fate) {
        if (auto c = clients_.find(p.client); c != clients_.end()) {
          std::string h = "X-Outcome: unknown\r\nX-Reason: leadership-lost\r\n";
          if (const auto& l = node_.leader(); l && *l != opt_.id) h += "X-Raft-Leader: " + std::to_string(*l) + "\r\n";
          reply_(*c->second, 503,
                 "leadership lost before the request committed; its outcome is unknown (it may still commit "
                 "under the new leader); retry with the same X-Client-Id and X-Request-Id\n",
                 h);
        }
      });
      std::vector<std::uint64_t> left;
      for (const auto& [id, r] : reads_)
        if (!r.confirmed) left.push_back(id);
      for (const std::uint64_t id : left) fail_read_(id);
      admin_unknown_("leadership was lost before the change committed");
    }
    was_leader_ = leader;
    leader_term_ = node_.term();
  }

  /// Replaces the store with a snapshot's state (output step 3).
  void restore_(const raft::snapshot& s) {
    if (s.index.value <= applied_)
      throw std::logic_error("raft invariant broken: snapshot at index " + std::to_string(s.index.value) +
                             " handed out after index " + std::to_string(applied_) + " was applied");
    const std::int64_t t0 = kv::now_us();
    kv::address_book snap_book;
    if (is_witness_() || s.data.empty()) {
      // A witness gets snapshots without data (and takes its own with none).
      // A store snapshot is never empty, so an empty one was sent to a
      // witness - even if the entry making this node one is not in its log
      // yet (the snapshot may predate it).
      if (!s.data.empty())
        logf("WARN", "witness: a snapshot with %zu data bytes at index %" PRIu64 "; ignored (a witness has no store)",
             s.data.size(), s.index.value);
      if (!is_witness_()) no_store_ = true;
    } else if (auto why = store_.restore(s.data.span(), &snap_book))
      throw std::runtime_error("the snapshot at index " + std::to_string(s.index.value) + " (term " +
                               std::to_string(s.term.value) + ", " + std::to_string(s.data.size()) +
                               " bytes) cannot be restored: " + *why);
    const bool local = applied_ == 0 && s.index.value == startup_snapshot_;
    if (!local) ++snapshots_installed_;
    logf("INFO",
         "restored the store from %s: index %" PRIu64 ", term %" PRIu64 ", %zu bytes, %zu keys, %zu sessions (%" PRId64
         " us)",
         local ? "the local snapshot" : "a snapshot received from the leader", s.index.value, s.term.value,
         s.data.size(), store_.size(), store_.sessions(), kv::now_us() - t0);
    applied_ = s.index.value;
    for (const auto& [id, a] : snap_book) learn_(id, a, s.index.value, "the snapshot");
    if (!admin_wait_.empty()) admin_decided_(s.index, s.term, true);
    // Requests waiting on indexes the snapshot covers: whether their entry or
    // another leader's took the index can mostly not be told any more
    // (pending.hpp says what can).
    pending_.snapshot(s.index, s.term, [&](const kv::pending_request& p, kv::request_fate f) {
      if (f == kv::request_fate::not_applied) return answer_not_applied_(p);
      if (auto c = clients_.find(p.client); c != clients_.end())
        reply_(*c->second, 503, "this node installed a snapshot covering the request; it may or may not be applied\n",
               "X-Outcome: unknown\r\n");
    });
    if (journal_fd_ >= 0)
      journal_buf_ += std::to_string(s.index.value) + " " + std::to_string(s.term.value) + " snapshot\n";
  }

  struct compaction {
    std::uint64_t upto = 0;
    std::size_t bytes = 0;
    std::int64_t t0 = 0;
  };
  /// After the output: snapshot the store and compact the log once
  /// --snapshot-every entries were applied since the last snapshot. The
  /// caller carries out the compaction's output (writing the snapshot).
  std::optional<compaction> maybe_compact_() {
    if (opt_.snapshot_every == 0) return std::nullopt;
    const raft::index_t upto = node_.applied_index();
    const std::uint64_t snap = node_.log().snapshot_index().value;
    if (upto.value < snap + opt_.snapshot_every || upto.value != applied_) return std::nullopt;
    const std::int64_t t0 = kv::now_us();
    // A witness has no store: its snapshots hold no data.
    raft::bytes data = is_witness_() || no_store_ ? raft::bytes{} : store_.snapshot(book_);
    const std::size_t size = data.size();
    const auto st = node_.compact(upto, std::move(data), out_);
    if (st != raft::compact_status::ok) {
      logf("WARN", "cannot compact the log at index %" PRIu64 ": %s", upto.value, raft::to_string(st));
      return std::nullopt;
    }
    ++snapshots_taken_;
    return compaction{upto.value, size, t0};
  }

  void apply_(const node_t::entry_type& e) {
    if (e.index.value != applied_ + 1)
      throw std::logic_error("raft invariant broken: entry " + std::to_string(e.index.value) + " handed out after " +
                             std::to_string(applied_));
    applied_ = e.index.value;
    if (journal_fd_ >= 0) journal_buf_ += entry_line_(e);
    kv::result res;
    bool have_result = false;
    if (e.kind == raft::entry_kind::command && (is_witness_() || e.data.empty())) {
      // A witness holds no state machine: the leader sent the entry without
      // its payload. Nothing to apply (and no client waits here: a witness
      // never leads). A command is never empty (kv::encode), so an empty one
      // is a witness's too, even before the entry making this node a witness
      // is in its log (it may come in a later batch).
      if (!is_witness_()) no_store_ = true;
    } else if (e.kind == raft::entry_kind::command) {
      if (auto cmd = kv::decode(e.data.span())) {
        res = store_.apply(*cmd);
        have_result = true;
      } else {
        logf("ERROR", "entry %" PRIu64 " holds an undecodable command; skipped", e.index.value);
      }
    }
    if (!admin_wait_.empty()) admin_decided_(e.index, e.term, false);
    // The requests this entry decides (pending.hpp): the one proposed at this
    // index in this term was applied; one proposed here in another term, or
    // anywhere after it in an earlier term, can no longer be.
    pending_.applied(e.index, e.term, [&](const kv::pending_request& p, kv::request_fate f) {
      if (f == kv::request_fate::not_applied) return answer_not_applied_(p);
      auto c = clients_.find(p.client);
      if (c == clients_.end()) return;  // the client went away; the command was applied anyway
      const std::string idx = "X-Raft-Index: " + std::to_string(e.index.value) + "\r\n";
      if (f != kv::request_fate::applied || !have_result) {
        // Our own entry (same index and term), committed but undecodable: cannot happen.
        reply_(*c->second, 500, "the request committed but could not be applied\n", idx + "X-Outcome: unknown\r\n");
        return;
      }
      switch (res.status) {
        case kv::result::code::ok:
          if (p.op == kv::op::get) reply_(*c->second, 200, res.value, idx);
          else reply_(*c->second, 200, p.op == kv::op::put ? "OK\n" : "deleted\n", idx);
          break;
        case kv::result::code::not_found: reply_(*c->second, 404, "key not found\n", idx); break;
        case kv::result::code::duplicate:
          reply_(*c->second, 409, "request id older than this client's last request; not applied\n", idx);
          break;
      }
    });
  }

  /// The request's entry can no longer be committed (pending.hpp): it was not
  /// applied, and never will be.
  void answer_not_applied_(const kv::pending_request& p) {
    if (auto c = clients_.find(p.client); c != clients_.end())
      reply_(*c->second, 503, "leadership changed before the request committed; it was not applied; retry\n",
             "X-Outcome: not-applied\r\n");
  }

  void expire_pending_() {
    const std::int64_t now = kv::now_ms();
    expire_admin_(now);
    pending_.expire(now, [&](const kv::pending_request& p, kv::request_fate) {
      if (auto c = clients_.find(p.client); c != clients_.end())
        reply_(*c->second, 504, "request timed out before it committed; it may or may not be applied\n",
               "X-Outcome: unknown\r\n");
    });
    // Reads: the node may still confirm one later; it is then discarded.
    for (auto it = reads_.begin(); it != reads_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      if (auto c = clients_.find(it->second.client); c != clients_.end())
        reply_(*c->second, 504, "read timed out before leadership was confirmed; not served; retry\n",
               "X-Outcome: not-applied\r\n");
      it = reads_.erase(it);
    }
  }

  void propose_queued_() {
    if (queued_.empty()) return;
    std::vector<raft::bytes> cmds;
    cmds.reserve(queued_.size());
    for (auto& q : queued_) cmds.push_back(q.cmd);
    const auto r = node_.propose_batch(std::move(cmds), out_);
    if (!r.ok()) {
      // A transfer under way, or leadership lost by a tick or message of
      // this iteration after the requests were taken: nothing was appended.
      for (auto& q : queued_) {
        auto c = clients_.find(q.client);
        if (c == clients_.end()) continue;
        if (r.status == raft::propose_status::transferring)
          reply_(*c->second, 503, "leadership transfer in progress; not applied; retry on the new leader shortly\n",
                 "Retry-After: 1\r\nX-Outcome: not-applied\r\nX-Reason: transferring\r\n");
        else if (r.status == raft::propose_status::not_leader)
          redirect_(*c->second, q.target);
        else
          reply_(*c->second, 503, std::string("not proposed: ") + raft::to_string(r.status) + "; not applied; retry\n",
                 "Retry-After: 1\r\nX-Outcome: not-applied\r\n");
      }
      queued_.clear();
      return;
    }
    const std::uint64_t first = r.index.value - queued_.size() + 1;
    const std::int64_t deadline = kv::now_ms() + opt_.request_timeout_ms;
    for (std::size_t i = 0; i < queued_.size(); ++i) {
      // A request from an earlier term may still wait on this index (our log
      // lost its entry): it stays, another node may still commit it.
      pending_.add(raft::index_t{first + i}, kv::pending_request{queued_[i].client, r.term, deadline, queued_[i].op});
    }
    queued_.clear();
  }

  // --------------------------------------------------------- peers: out

  void queue_message_(const node_t::message_type& m) {
    if (isolated_) {  // --debug fault switch: the network is cut
      ++isolated_dropped_;
      return;
    }
    peer_out* pp = ensure_peer_(m.to);
    if (pp == nullptr) {
      // No address for it (yet): it is learned from the log, a snapshot or
      // its handshake. Raft resends.
      if (no_address_warned_.insert(m.to).second)
        logf("WARN", "no address known for node %" PRIu64 ": messages to it are dropped until one is learned", m.to);
      ++no_address_dropped_;
      return;
    }
    peer_out& p = *pp;
    p.last_used = kv::now_ms();
    // Raft tolerates loss: drop rather than queue for a peer that is down or
    // far behind on reading.
    if (p.st == peer_out::state::idle || p.wbuf.size() - p.woff > (std::size_t{64} << 20)) {
      ++p.dropped;
      return;
    }
    const std::size_t at = kv::begin_frame(p.wbuf);
    codec_t::encode(m, p.wbuf);
    const std::size_t len = p.wbuf.size() - at - kv::frame_header_bytes;
    if (len > opt_.max_frame) {
      logf("ERROR", "message to node %" PRIu64 " is %zu bytes, over --max-frame; dropped", p.id, len);
      p.wbuf.resize(at);
      return;
    }
    kv::finish_frame(p.wbuf, at);
  }

  peer_out* peer_out_(std::uint64_t id) {
    for (auto& p : peers_out_)
      if (p->id == id) return p.get();
    return nullptr;
  }

  /// True if node `id` has a connection to us that passed the handshake.
  bool peer_in_up_(std::uint64_t id) const {
    return std::any_of(peers_in_.begin(), peers_in_.end(), [&](const auto& p) { return p->ready && !p->dead && p->from == id; });
  }

  void connect_due_peers_() {
    const std::int64_t now = kv::now_ms();
    for (auto& pp : peers_out_) {
      peer_out& p = *pp;
      if (p.st != peer_out::state::idle || now < p.next_attempt) continue;
      auto a = kv::resolve(p.ep);
      p.fd = a ? ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
      if (p.fd < 0) {
        peer_failed_(p, "cannot create socket or resolve address");
        continue;
      }
      kv::set_nonblocking(p.fd);
      kv::set_nodelay(p.fd);
      p.wbuf.clear();
      p.woff = 0;
      kv::append_frame(p.wbuf, kv::encode_handshake(opt_.cluster, opt_.id, p.id, self_addrs_.raft, self_addrs_.client));
      if (::connect(p.fd, reinterpret_cast<sockaddr*>(&*a), sizeof *a) == 0) {
        peer_connected_(p);
      } else if (errno == EINPROGRESS) {
        p.st = peer_out::state::connecting;
      } else {
        peer_failed_(p, std::strerror(errno));
      }
    }
  }

  void peer_connected_(peer_out& p) {
    p.st = peer_out::state::connected;
    p.connected_at = kv::now_ms();
    if (!p.was_up) logf("INFO", "connected to node %" PRIu64 " at %s", p.id, p.ep.str().c_str());
    p.was_up = true;
  }

  void peer_failed_(peer_out& p, const std::string& why, bool refused = false) {
    if (p.fd >= 0) ::close(p.fd);
    p.fd = -1;
    p.st = peer_out::state::idle;
    p.wbuf.clear();
    p.woff = 0;
    const std::int64_t now = kv::now_ms();
    if (p.connected_at != 0 && now - p.connected_at > 1000) p.backoff_ms = 50;  // it had been up a while
    else if (!refused && peer_in_up_(p.id)) p.backoff_ms = 50;  // it is up (it talks to us): retry soon
    else p.backoff_ms = std::min(p.backoff_ms * 2, 2000);
    p.connected_at = 0;
    // Jitter of up to a quarter, so that restarted nodes do not dial in lockstep.
    p.next_attempt = now + p.backoff_ms + static_cast<std::int64_t>(jitter_() % static_cast<std::uint64_t>(p.backoff_ms / 4 + 1));
    if (p.was_up) logf("WARN", "lost connection to node %" PRIu64 " at %s: %s; reconnecting with back-off", p.id,
                       p.ep.str().c_str(), why.c_str());
    p.was_up = false;
  }

  void on_peer_out_(peer_out& p, short re) {
    if (re == 0 || p.fd < 0) return;
    if (p.st == peer_out::state::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return peer_failed_(p, std::strerror(err));
      peer_connected_(p);
    }
    if ((re & POLLIN) != 0) {
      // The receiving side only ever writes to say why it refused us.
      char buf[512];
      const ssize_t n = ::recv(p.fd, buf, sizeof buf - 1, MSG_DONTWAIT);
      if (n > 0) {
        buf[n] = '\0';
        logf("ERROR", "node %" PRIu64 " at %s refused our connection: %s", p.id, p.ep.str().c_str(), buf);
        return peer_failed_(p, "refused", /*refused=*/true);
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) return peer_failed_(p, n == 0 ? "closed by peer" : std::strerror(errno));
    }
    if ((re & (POLLERR | POLLHUP)) != 0 && (re & POLLIN) == 0) return peer_failed_(p, "connection error");
    flush_peer_(p);
  }

  void flush_peer_(peer_out& p) {
    if (p.st != peer_out::state::connected) return;
    while (p.woff < p.wbuf.size()) {
      const ssize_t w = ::send(p.fd, p.wbuf.data() + p.woff, p.wbuf.size() - p.woff, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        return peer_failed_(p, std::strerror(errno));
      }
      p.woff += static_cast<std::size_t>(w);
    }
    if (p.woff == p.wbuf.size()) {
      p.wbuf.clear();
      p.woff = 0;
    } else if (p.woff > (std::size_t{1} << 20)) {
      p.wbuf.erase(p.wbuf.begin(), p.wbuf.begin() + static_cast<std::ptrdiff_t>(p.woff));
      p.woff = 0;
    }
  }

  // ---------------------------------------------------------- peers: in

  void accept_peers_() {
    for (;;) {
      const int fd = ::accept4(raft_listen_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      auto p = std::make_unique<peer_in>();
      p->fd = fd;
      p->addr = kv::peer_name(fd);
      peers_in_.push_back(std::move(p));
    }
  }

  void refuse_peer_(peer_in& p, const std::string& why) {
    logf("WARN", "closing peer connection from %s%s: %s", p.addr.c_str(),
         p.ready ? (" (node " + std::to_string(p.from) + ")").c_str() : "", why.c_str());
    const std::string msg = "node " + std::to_string(opt_.id) + ": " + why;
    [[maybe_unused]] auto r = ::send(p.fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    p.dead = true;
  }

  void read_peer_(peer_in& p) {
    if (p.dead) return;
    std::byte tmp[65536];
    for (;;) {
      const ssize_t n = ::recv(p.fd, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n > 0) {
        p.rbuf.insert(p.rbuf.end(), tmp, tmp + n);
        if (p.rbuf.size() > opt_.max_frame + std::size_t{1 << 20}) break;  // parse before reading more
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        if (p.ready) logf("INFO", "node %" PRIu64 " closed its connection", p.from);
        p.dead = true;
      }
      break;
    }
    if (!p.dead && !p.ready && kv::is_v1_handshake(p.rbuf)) {
      refuse_peer_(p, "peer speaks the previous protocol version (KVRAFT01: frames without checksums); upgrade it");
      return;
    }
    std::size_t pos = 0;
    const raft::codec_limits lim{opt_.max_frame, std::size_t{1} << 16};
    while (!p.dead && pos < p.rbuf.size()) {
      const auto f = kv::parse_frame(std::span<const std::byte>(p.rbuf).subspan(pos), opt_.max_frame);
      if (f.st == kv::frame_parse::state::incomplete) break;
      const std::uint32_t len = f.length;
      if (f.st == kv::frame_parse::state::bad_length) {
        refuse_peer_(p, "frame of " + std::to_string(len) + " bytes is outside [1, " + std::to_string(opt_.max_frame) +
                            "] (--max-frame)");
        break;
      }
      if (f.st == kv::frame_parse::state::bad_checksum) {
        // Damaged in transit (or not our protocol): nothing in it can be
        // trusted, and the stream after it may be out of step. Drop the frame
        // and the connection; the peer reconnects and Raft resends.
        ++bad_frames_;
        refuse_peer_(p, "frame checksum mismatch: a frame of " + std::to_string(len) +
                            " bytes was damaged in transit; dropped (" + std::to_string(bad_frames_) +
                            " bad frames since start)");
        break;
      }
      const std::span<const std::byte> frame = f.body;
      pos += f.size;
      if (!p.ready) {
        on_handshake_(p, frame);
        continue;
      }
      auto r = codec_t::decode(frame, lim);
      if (!r) {
        std::string why = "undecodable frame of " + std::to_string(len) + " bytes: " + raft::to_string(r.error) +
                          " at offset " + std::to_string(r.offset);
        if (r.error == raft::decode_error::unknown_version)
          why += " (peer speaks wire format " + std::to_string(r.version) + ", we speak " +
                 std::to_string(raft::wire_format_version) + ")";
        refuse_peer_(p, why);
        break;
      }
      if (r.value->from != p.from || r.value->to != opt_.id) {
        refuse_peer_(p, "message from node " + std::to_string(r.value->from) + " to node " + std::to_string(r.value->to) +
                            " on the connection of node " + std::to_string(p.from) + " to us");
        break;
      }
      if (isolated_) {  // --debug fault switch: the frame is read and lost, as on a cut network
        ++isolated_dropped_;
        continue;
      }
      const auto st = node_.step(std::move(*r.value), out_);
      if (st == raft::step_status::malformed || st == raft::step_status::not_for_me) {
        refuse_peer_(p, std::string("message rejected by raft: ") + raft::to_string(st));
        break;
      }
      // A node outside our configuration (removed, or added by an entry we
      // do not have yet): raft ignored it; the connection stays.
      if (st == raft::step_status::unknown_sender) ++from_non_members_;
    }
    if (pos > 0) p.rbuf.erase(p.rbuf.begin(), p.rbuf.begin() + static_cast<std::ptrdiff_t>(pos));
  }

  void on_handshake_(peer_in& p, std::span<const std::byte> frame) {
    auto h = kv::decode_handshake(frame);
    if (!h) return refuse_peer_(p, "bad handshake (not a kv-server peer, or another protocol version)");
    if (h->cluster != opt_.cluster)
      return refuse_peer_(p, "cluster id mismatch: peer is in cluster '" + h->cluster + "', we are in '" + opt_.cluster + "'");
    if (h->from == opt_.id) return refuse_peer_(p, "peer claims our own node id " + std::to_string(h->from));
    if (h->to != opt_.id)
      return refuse_peer_(p, "handshake addressed to node " + std::to_string(h->to) + ", we are node " + std::to_string(opt_.id));
    if (book_.count(h->from) == 0) {
      // A node we have no address for: it says where it listens (it was
      // added while we were away, or we joined and it leads). Learn it.
      if (h->raft_addr.empty()) return refuse_peer_(p, "unknown node id " + std::to_string(h->from));
      if (!kv::parse_endpoint(h->raft_addr) || (!h->client_addr.empty() && !kv::parse_endpoint(h->client_addr)))
        return refuse_peer_(p, "unknown node id " + std::to_string(h->from) + " with a malformed address in its handshake");
      learn_(h->from, kv::node_addresses{h->raft_addr, h->client_addr}, 0, "its handshake");
    }
    p.ready = true;
    p.from = h->from;
    logf("INFO", "accepted connection from node %" PRIu64 " (%s)", p.from, p.addr.c_str());
    // A member (or anyone, while this node knows no membership yet: it is
    // joining, and whoever dials it is the leader adding it) gets an outbound
    // connection at once, for our answers.
    const auto& m = node_.configuration();
    if (m.voters.empty() || m.contains(p.from)) ensure_peer_(p.from);
    // It is up and dialled us: dial it back now rather than after our
    // back-off (up to 2 s, longer than an election timeout). Otherwise a
    // restarted node hears nothing from us, times out and starts an election
    // that deposes a healthy leader. A connect still in progress is most
    // likely stuck on the peer's previous incarnation (a live peer accepts
    // at once): start it again too.
    peer_out* o = peer_out_(p.from);
    if (o == nullptr || o->st == peer_out::state::connected) return;
    if (o->st == peer_out::state::connecting) {
      ::close(o->fd);
      o->fd = -1;
      o->st = peer_out::state::idle;
    } else if (o->next_attempt > kv::now_ms()) {
      logf("INFO", "node %" PRIu64 " is back: dialling it now instead of after the back-off", p.from);
    }
    o->backoff_ms = 50;
    o->next_attempt = 0;
  }

  // ------------------------------------------------------------- clients

  void accept_clients_() {
    for (;;) {
      const int fd = ::accept4(http_listen_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      kv::set_nodelay(fd);
      auto c = std::make_unique<client>();
      c->id = ++next_client_;
      c->fd = fd;
      c->addr = kv::peer_name(fd);
      client_order_.push_back(c->id);
      clients_.emplace(c->id, std::move(c));
    }
  }

  void on_client_(client& c, short re) {
    if ((re & (POLLHUP | POLLERR)) != 0) {  // reset or fully closed: nothing can be answered any more
      c.dead = true;
      return;
    }
    if (c.closing) return drain_closing_(c);
    if ((re & POLLOUT) != 0) flush_client_(c);
    if ((re & (POLLIN | POLLHUP | POLLERR)) == 0 || c.waiting || c.close_after_write || c.dead) return;
    char tmp[65536];
    for (;;) {
      const ssize_t n = ::recv(c.fd, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n > 0) {
        c.rbuf.append(tmp, static_cast<std::size_t>(n));
        if (c.rbuf.size() > opt_.max_value + 2 * 65536) break;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        c.dead = true;
        return;
      }
      break;
    }
    parse_client_(c);
  }

  void parse_client_(client& c) {
    const kv::http_limits lim{8192, opt_.max_value};
    while (!c.waiting && !c.close_after_write && !c.rbuf.empty()) {
      auto p = kv::parse_http_request(c.rbuf, lim);
      if (p.st == kv::http_parse::state::incomplete) {
        if (p.expect_continue && !c.continue_sent) {
          c.wbuf += "HTTP/1.1 100 Continue\r\n\r\n";
          c.continue_sent = true;
        }
        return;
      }
      if (p.st == kv::http_parse::state::error) {
        logf("WARN", "client %s: %d %s; closing connection", c.addr.c_str(), p.status, p.reason.c_str());
        reply_(c, p.status, p.reason + "\n", {}, true);
        return;
      }
      c.rbuf.erase(0, p.consumed);
      c.continue_sent = false;
      if (!p.req.keep_alive) c.close_after_write = true;  // after this answer
      c.http10_keep_alive = p.req.http10 && p.req.keep_alive;
      handle_request_(c, p.req);
    }
  }

  void handle_request_(client& c, const kv::http_request& req) {
    std::string path = req.target;
    std::string query;
    if (auto q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path.resize(q);
    }
    if (path == "/status" && req.method == "GET") return reply_(c, 200, status_json_(), "Content-Type: application/json\r\n");
    if (opt_.debug && path.rfind("/debug/local/", 0) == 0) {
      if (is_witness_()) return reply_(c, 404, "this node is a witness: it holds no data\n");
      auto key = kv::percent_decode(path.substr(13));
      const std::string* v = key ? store_.find(*key) : nullptr;
      return v ? reply_(c, 200, *v) : reply_(c, 404, "key not found\n");
    }
    if (opt_.debug && path == "/debug/committed") return reply_(c, 200, committed_dump_(query));
    if (path == "/debug/isolate") {
      if (!opt_.debug) return reply_(c, 404, "/debug/isolate needs kv-server --debug\n");
      if (req.method != "POST") return reply_(c, 405, "use POST /debug/isolate?on=1|0\n", "Allow: POST\r\n");
      const auto on = query_param_(query, "on");
      if (!on || (*on != "1" && *on != "0")) return reply_(c, 400, "use POST /debug/isolate?on=1|0\n");
      const bool was = isolated_;
      isolated_ = *on == "1";
      if (was != isolated_)
        logf("WARN", "fault switch: peer traffic %s", isolated_ ? "CUT (every message in and out is dropped)" : "restored");
      return reply_(c, 200, isolated_ ? "isolated: dropping all peer traffic\n" : "not isolated\n");
    }
    if (path == "/admin/transfer") return admin_transfer_(c, req, query);
    if (path == "/admin/add-learner" || path == "/admin/add-witness" || path == "/admin/promote" ||
        path == "/admin/remove")
      return admin_membership_(c, req, path, query);
    if (path == "/admin/members") {
      if (req.method != "GET") return reply_(c, 405, "use GET /admin/members\n", "Allow: GET\r\n");
      return reply_(c, 200, members_text_());
    }
    if (path.rfind("/kv/", 0) != 0)
      return reply_(c, 404,
                    "unknown path; use /kv/<key> (PUT, GET, DELETE), /status, GET /admin/members, POST "
                    "/admin/transfer?to=N, /admin/add-learner?id=N&raft=HOST:PORT&client=HOST:PORT, "
                    "/admin/add-witness?id=N&raft=HOST:PORT&client=HOST:PORT, /admin/promote?id=N, /admin/remove?id=N\n");
    auto key = kv::percent_decode(path.substr(4));
    if (!key) return reply_(c, 400, "malformed percent-escape in key\n");
    if (key->empty()) return reply_(c, 400, "empty key\n");
    if (key->size() > opt_.max_key)
      return reply_(c, 414, "key of " + std::to_string(key->size()) + " bytes exceeds the limit of " +
                                std::to_string(opt_.max_key) + " bytes\n");
    kv::command cmd;
    if (req.method == "PUT") cmd.op = kv::op::put;
    else if (req.method == "GET") cmd.op = kv::op::get;
    else if (req.method == "DELETE") cmd.op = kv::op::del;
    else return reply_(c, 405, "method not allowed; use PUT, GET or DELETE\n", "Allow: GET, PUT, DELETE\r\n");
    if (cmd.op != kv::op::put && !req.body.empty()) return reply_(c, 400, "GET and DELETE take no body\n");
    bool lease = false;
    if (cmd.op == kv::op::get) {
      if (const auto l = query_param_(query, "lease")) {
        if (*l != "0" && *l != "1") return reply_(c, 400, "lease must be 0 or 1\n");
        lease = *l == "1";
      }
      if (lease && !opt_.lease_reads)
        return reply_(c, 400,
                      "lease reads are disabled on this server: start kv-server with --lease-reads to allow "
                      "GET /kv/KEY?lease=1, or drop ?lease=1 for a ReadIndex read\n");
    }
    if (!node_.is_leader()) return redirect_(c, req.target);
    if (cmd.op == kv::op::get && !opt_.reads_through_log) return start_read_(c, std::move(*key), lease, req.target);
    cmd.key = std::move(*key);
    cmd.value = req.body;
    if (cmd.op != kv::op::get) {
      const std::string cid = req.header("x-client-id"), seq = req.header("x-request-id");
      if (!cid.empty() || !seq.empty()) {
        char* e1 = nullptr;
        char* e2 = nullptr;
        cmd.client = std::strtoull(cid.c_str(), &e1, 10);
        cmd.seq = std::strtoull(seq.c_str(), &e2, 10);
        if (cid.empty() || seq.empty() || *e1 != '\0' || *e2 != '\0' || cmd.client == 0 || cmd.seq == 0)
          return reply_(c, 400, "X-Client-Id and X-Request-Id must both be positive integers\n");
      }
    }
    c.waiting = true;
    queued_.push_back(queued{c.id, kv::encode(cmd), cmd.op, req.target});
  }

  /// The value of `name` in a query string (a=1&b=2), if present.
  static std::optional<std::string> query_param_(const std::string& query, std::string_view name) {
    std::size_t pos = 0;
    while (pos <= query.size()) {
      std::size_t amp = query.find('&', pos);
      if (amp == std::string::npos) amp = query.size();
      const std::string_view kvp(query.data() + pos, amp - pos);
      const auto eq = kvp.find('=');
      if (kvp.substr(0, eq) == name) return std::string(eq == std::string_view::npos ? "" : kvp.substr(eq + 1));
      pos = amp + 1;
    }
    return std::nullopt;
  }

  /// GET through ReadIndex (thesis 6.4): no log entry, no fsync. The node
  /// confirms its leadership with one heartbeat round (shared by every read
  /// waiting for it) - or at once under a valid lease - and the read is
  /// served from the store once it applied through the read index
  /// (serve_ready_reads_()).
  void start_read_(client& c, std::string key, bool lease, const std::string& target) {
    const std::uint64_t id = ++next_read_;
    const auto st = node_.read_index(id, out_, lease ? raft::read_mode::lease : raft::read_mode::read_index);
    switch (st) {
      case raft::read_status::ok:
        c.waiting = true;
        reads_.emplace(id, waiting_read{c.id, std::move(key), kv::now_ms() + opt_.request_timeout_ms, false});
        return;
      case raft::read_status::no_leader: return redirect_(c, target);
      case raft::read_status::lease_disabled:
        return reply_(c, 400, std::string("lease read refused: ") + raft::to_string(st) + "\n");
      case raft::read_status::too_many:
        return reply_(c, 503, "too many reads waiting; retry shortly\n", "Retry-After: 1\r\nX-Outcome: not-applied\r\n");
    }
  }

  /// POST /admin/transfer?to=N: leadership transfer (thesis 3.10). 202 once
  /// started (then /status "transfer" says how it ended), 409 if this node is
  /// not the leader or a transfer is under way, 400 for a bad target.
  void admin_transfer_(client& c, const kv::http_request& req, const std::string& query) {
    if (req.method != "POST") return reply_(c, 405, "use POST /admin/transfer?to=N\n", "Allow: POST\r\n");
    const auto to_s = query_param_(query, "to");
    char* end = nullptr;
    const std::uint64_t to = to_s ? std::strtoull(to_s->c_str(), &end, 10) : 0;
    if (!to_s || to_s->empty() || *end != '\0' || to == 0)
      return reply_(c, 400, "use POST /admin/transfer?to=N with N a node id\n");
    if (!node_.configuration().contains(to))
      return reply_(c, 400, "unknown target: node " + std::to_string(to) + " is not a member\n");
    const auto st = node_.transfer_leadership(to, out_);
    const std::string what = std::string(raft::to_string(st)) + "\n";
    switch (st) {
      case raft::transfer_status::started:
        logf("INFO", "admin: leadership transfer to node %" PRIu64 " requested", to);
        return reply_(c, 202, "transfer to node " + std::to_string(to) + " " + what);
      case raft::transfer_status::in_progress: return reply_(c, 409, "transfer to node " + std::to_string(to) + " " + what);
      case raft::transfer_status::not_leader: {
        const auto& l = node_.leader();
        const std::string h = l ? "X-Raft-Leader: " + std::to_string(*l) + "\r\n" : std::string();
        return reply_(c, 409, "not leader" + (l ? "; the leader is node " + std::to_string(*l) : std::string()) + "\n", h);
      }
      case raft::transfer_status::unknown_target: return reply_(c, 400, "unknown target: " + what);
      case raft::transfer_status::not_voter:
      case raft::transfer_status::witness:
        return reply_(c, 400, "node " + std::to_string(to) + " cannot lead: " + what);
      case raft::transfer_status::is_self: return reply_(c, 200, "node " + std::to_string(to) + " already leads: " + what);
    }
  }

  void redirect_(client& c, const std::string& target) {
    const auto& leader = node_.leader();
    if (!leader || *leader == opt_.id)
      return reply_(c, 503, "no leader known; retry shortly\n", "Retry-After: 1\r\nX-Outcome: not-applied\r\n");
    const std::string lh = "X-Raft-Leader: " + std::to_string(*leader) + "\r\n";
    const std::string* addr = client_addr_(*leader);
    if (addr == nullptr)
      return reply_(c, 421, "not the leader; the leader is node " + std::to_string(*leader) + "\n", lh);
    const std::string url = "http://" + *addr + target;
    reply_(c, 307, "not the leader; the leader is node " + std::to_string(*leader) + " at " + url + "\n",
           lh + "Location: " + url + "\r\n");
  }

  void reply_(client& c, int status, std::string_view body, std::string_view headers = {}, bool close = false) {
    if (c.closing) return;  // already answered its last request
    c.waiting = false;
    if (close) c.close_after_write = true;
    if (c.http10_keep_alive && !c.close_after_write) {
      // An HTTP/1.0 client keeps the connection only if the answer says so.
      const std::string h = std::string(headers) + "Connection: keep-alive\r\n";
      c.wbuf += kv::http_response(status, body, h, false);
      return;
    }
    c.wbuf += kv::http_response(status, body, headers, c.close_after_write);
  }

  void flush_client_(client& c) {
    while (!c.dead && c.woff < c.wbuf.size()) {
      const ssize_t w = ::send(c.fd, c.wbuf.data() + c.woff, c.wbuf.size() - c.woff, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        c.dead = true;
        return;
      }
      c.woff += static_cast<std::size_t>(w);
    }
    if (c.dead) return;
    c.wbuf.clear();
    c.woff = 0;
    if (c.close_after_write) {
      // Close only once the answer is written: a request still waiting for
      // its commit (c.waiting) keeps the connection until reply_() is called.
      if (!c.waiting && !c.closing) start_close_(c);
    } else if (!c.waiting && !c.rbuf.empty()) {
      parse_client_(c);  // pipelined requests
    }
  }

  /// Lingering close, once the last answer is in the kernel: send FIN after
  /// it, then read and discard until the client closes too (or a second
  /// passes). Closing at once while unread request bytes sit in our receive
  /// queue would send a reset, and a reset can destroy the answer in flight.
  void start_close_(client& c) {
    c.closing = true;
    c.rbuf.clear();
    c.close_deadline = kv::now_ms() + 1000;
    if (::shutdown(c.fd, SHUT_WR) != 0) c.dead = true;
  }

  void drain_closing_(client& c) {
    char tmp[16384];
    for (;;) {
      const ssize_t n = ::recv(c.fd, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) c.dead = true;
      return;
    }
  }

  std::string status_json_() const {
    const auto st = node_.status();
    const auto& log = node_.log();
    char buf[1536];
    std::snprintf(buf, sizeof buf,
                  "{\"id\":%" PRIu64 ",\"role\":\"%s\",\"term\":%" PRIu64 ",\"leader\":%s,\"commit\":%" PRIu64
                  ",\"applied\":%" PRIu64 ",\"last_index\":%" PRIu64 ",\"keys\":%zu,\"syncs\":%" PRIu64
                  ",\"snapshot_index\":%" PRIu64 ",\"snapshot_term\":%" PRIu64 ",\"snapshot_bytes\":%zu"
                  ",\"snapshots_taken\":%" PRIu64 ",\"snapshots_installed\":%" PRIu64 ",\"log_entries\":%" PRIu64
                  ",\"log_segments\":%zu,\"log_bytes\":%" PRIu64 ",\"bad_frames\":%" PRIu64
                  ",\"durability\":\"%s\",\"quiesces\":%" PRIu64 ",\"reads\":\"%s\",\"lease_reads\":%s"
                  ",\"lease_valid\":%s,\"pre_vote\":%s,\"check_quorum\":%s,\"pending_reads\":%zu"
                  ",\"pending_writes\":%zu,\"reads_served\":%" PRIu64 ",\"reads_failed\":%" PRIu64
                  ",\"isolated\":%s,\"isolated_dropped\":%" PRIu64 ",\"transfer_target\":%s",
                  opt_.id, raft::to_string(st.role), st.term.value,
                  st.leader ? std::to_string(*st.leader).c_str() : "null", st.commit.value, st.applied.value,
                  st.last_index.value, store_.size(), syncs_total_(), log.snapshot_index().value,
                  log.snapshot_term().value, log.snapshot_data().size(), snapshots_taken_, snapshots_installed_,
                  log.last_index().value - log.snapshot_index().value, log.segment_count(), log.segment_bytes(),
                  bad_frames_, writer_ ? "async" : "sync", quiesces_, opt_.reads_through_log ? "log" : "index",
                  opt_.lease_reads ? "true" : "false", st.lease_valid ? "true" : "false", opt_.pre_vote ? "true" : "false",
                  opt_.check_quorum ? "true" : "false", reads_.size(), pending_.size(), reads_served_, reads_failed_,
                  isolated_ ? "true" : "false", isolated_dropped_,
                  st.transfer_target ? std::to_string(*st.transfer_target).c_str() : "null");
    std::string out = buf;
    out += configuration_json_();
    out += ",\"from_non_members\":" + std::to_string(from_non_members_) +
           ",\"no_address_dropped\":" + std::to_string(no_address_dropped_);
    // The last transfer this node started as leader, and how it ended.
    if (last_transfer_) {
      out += ",\"transfer\":{\"target\":" + std::to_string(last_transfer_->target) + ",\"outcome\":\"" +
             last_transfer_->outcome + "\",\"ms_ago\":" + std::to_string(kv::now_ms() - last_transfer_->at_ms) + "}";
    } else {
      out += ",\"transfer\":null";
    }
    // The leader's view of each peer (empty on other roles). Last, so that
    // a naive "first \"name\":" lookup finds the node's own fields above.
    out += ",\"peers\":[";
    for (std::size_t i = 0; i < st.peers.size(); ++i) {
      const auto& p = st.peers[i];
      std::snprintf(buf, sizeof buf,
                    "%s{\"id\":%" PRIu64 ",\"match\":%" PRIu64 ",\"next\":%" PRIu64 ",\"lag\":%" PRIu64
                    ",\"learner\":%s,\"witness\":%s"
                    ",\"state\":\"%s\",\"recent_active\":%s,\"inflight\":%zu,\"acked_round\":%" PRIu64 "}",
                    i == 0 ? "" : ",", p.id, p.match.value, p.next.value, p.lag, p.learner ? "true" : "false",
                    p.witness ? "true" : "false", raft::to_string(p.state), p.recent_active ? "true" : "false",
                    p.inflight_messages, p.acked_round);
      out += buf;
    }
    out += "]}\n";
    return out;
  }

  /// One line of the applied-entries journal and of /debug/committed:
  ///   index term kind [op client seq key-hex value-hex]
  static std::string entry_line_(const node_t::entry_type& e) {
    std::string out = std::to_string(e.index.value) + " " + std::to_string(e.term.value);
    if (e.kind == raft::entry_kind::noop) return out + " noop\n";
    if (e.kind == raft::entry_kind::config) return out + " config\n";
    if (e.data.empty()) return out + " nopayload\n";  // as a witness receives commands
    auto cmd = kv::decode(e.data.span());
    if (!cmd) return out + " bad\n";
    return out + " cmd " + kv::to_string(cmd->op) + " " + std::to_string(cmd->client) + " " + std::to_string(cmd->seq) +
           " " + hex(cmd->key) + " " + hex(cmd->value) + "\n";
  }

  [[nodiscard]] std::string journal_path_() const { return opt_.data + "/debug-applied"; }

  void flush_journal_() {
    if (journal_fd_ < 0 || journal_buf_.empty()) return;
    // write(), no fsync: the journal is for the tests, which kill processes,
    // not machines. Written before any client hears about these entries.
    std::size_t off = 0;
    while (off < journal_buf_.size()) {
      const ssize_t w = ::write(journal_fd_, journal_buf_.data() + off, journal_buf_.size() - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw kv::log_error("cannot write " + journal_path_() + ": " + std::strerror(errno));
      }
      off += static_cast<std::size_t>(w);
    }
    journal_buf_.clear();
  }

  /// Debug: the committed entries this node applied from ?from=N on, one per
  /// line (entry_line_()), read back from the journal of every incarnation of
  /// this node - so compaction does not hide them. An index this node only
  /// got inside a snapshot reads "N - snapshot"; one it applied with two
  /// different contents (which Raft forbids) reads "N - CONFLICT ...".
  std::string committed_dump_(const std::string& query) const {
    std::uint64_t from = 1;
    if (query.rfind("from=", 0) == 0) from = std::max<std::uint64_t>(1, std::strtoull(query.c_str() + 5, nullptr, 10));
    const std::uint64_t upto = applied_;
    std::vector<std::string> lines(static_cast<std::size_t>(upto + 1));
    std::uint64_t covered = 0;
    if (FILE* f = std::fopen(journal_path_().c_str(), "rb")) {
      char* line = nullptr;
      std::size_t cap = 0;
      ssize_t n = 0;
      while ((n = ::getline(&line, &cap, f)) > 0) {
        std::string l(line, static_cast<std::size_t>(n));
        const std::uint64_t idx = std::strtoull(l.c_str(), nullptr, 10);
        if (l.ends_with(" snapshot\n")) {
          covered = std::max(covered, idx);
          continue;
        }
        if (idx == 0 || idx > upto) continue;
        std::string& slot = lines[static_cast<std::size_t>(idx)];
        if (slot.empty()) {
          slot = std::move(l);
        } else if (slot != l && slot.find(" - CONFLICT ") == std::string::npos) {
          slot.pop_back();
          slot = std::to_string(idx) + " - CONFLICT " + slot + " | " + l;
        }
      }
      std::free(line);
      std::fclose(f);
    }
    std::string out;
    for (std::uint64_t i = from; i <= upto; ++i) {
      const std::string& l = lines[static_cast<std::size_t>(i)];
      if (!l.empty()) out += l;
      else out += std::to_string(i) + (i <= covered ? " - snapshot\n" : " - missing\n");
    }
    return out;
  }

  // ---------------------------------------------------------- membership

  /// This node's place in the configuration it uses.
  [[nodiscard]] const char* member_role_() const {
    const auto& m = node_.configuration();
    if (m.voters.empty()) return "joining";  // --join, and no membership heard of yet
    if (m.is_witness(opt_.id)) return "witness";
    if (m.is_voter(opt_.id)) return "voter";
    if (m.is_learner(opt_.id)) return "learner";
    // Not in the configuration: removed - or, for a node that joined and
    // was never listed yet, added by an entry it has not received.
    return joined_ && !was_member_ ? "joining" : "removed";
  }
  /// A witness never stops being one (it can only be removed): sticky.
  [[nodiscard]] bool is_witness_() const { return witness_ || node_.configuration().is_witness(opt_.id); }

  [[nodiscard]] const std::string* client_addr_(std::uint64_t id) const {
    auto it = book_.find(id);
    return it == book_.end() || it->second.client.empty() ? nullptr : &it->second.client;
  }

  /// Learns where node `id` listens. `index` is the log index the addresses
  /// come from (a configuration entry or a snapshot), 0 for a handshake:
  /// newer log data replaces older (and the command line); a handshake only
  /// adds ids not known at all (on_handshake_). Our own entry never changes.
  void learn_(std::uint64_t id, const kv::node_addresses& a, std::uint64_t index, const char* source) {
    if (id == 0 || id == opt_.id || !kv::parse_endpoint(a.raft) || (!a.client.empty() && !kv::parse_endpoint(a.client)))
      return;
    auto it = book_.find(id);
    if (it != book_.end()) {
      if (index == 0 || index < book_index_[id] || it->second == a) return;
      it->second = a;
    } else {
      book_.emplace(id, a);
    }
    book_index_[id] = index;
    logf("INFO", "address book: node %" PRIu64 " at %s (peers), %s (clients), from %s", id, a.raft.c_str(),
         a.client.empty() ? "unknown" : a.client.c_str(), source);
    no_address_warned_.erase(id);
    if (peer_out* p = peer_out_(id)) {
      const auto ep = kv::parse_endpoint(a.raft);
      if (p->ep.str() != ep->str()) {
        p->ep = *ep;
        if (p->st != peer_out::state::idle) peer_failed_(*p, "its address changed");
        p->next_attempt = 0;
      }
    }
  }

  /// The outbound connection to node `id`, created (to be dialled) if we have
  /// an address for it; nullptr for ourselves or an id without an address.
  peer_out* ensure_peer_(std::uint64_t id) {
    if (peer_out* p = peer_out_(id)) return p;
    if (id == opt_.id) return nullptr;
    auto it = book_.find(id);
    if (it == book_.end()) return nullptr;
    const auto ep = kv::parse_endpoint(it->second.raft);
    if (!ep) return nullptr;
    auto p = std::make_unique<peer_out>();
    p->id = id;
    p->ep = *ep;
    p->last_used = kv::now_ms();
    peers_out_.push_back(std::move(p));
    return peers_out_.back().get();
  }

  /// Dials every member we have an address for; closes connections to nodes
  /// that are not members of a committed configuration and that the node has
  /// not sent to for a while (it stops sending to a removed peer once the
  /// removal commits). Outside the poll loop: peers_out_ may change.
  void reconcile_peers_() {
    const auto& m = node_.configuration();
    for (const auto& id : m.members())
      if (id != opt_.id) ensure_peer_(id);
    if (m.voters.empty() || node_.configuration_index() > node_.commit_index()) return;
    const std::int64_t now = kv::now_ms();
    const std::int64_t idle_ms = 4 * static_cast<std::int64_t>(opt_.election_ticks) * opt_.tick_ms;
    std::erase_if(peers_out_, [&](const std::unique_ptr<peer_out>& p) {
      if (m.contains(p->id) || now - p->last_used < idle_ms) return false;
      logf("INFO", "node %" PRIu64 " is not in the configuration (index %" PRIu64 "): no longer sending to it",
           p->id, node_.configuration_index().value);
      if (p->fd >= 0) ::close(p->fd);
      return true;
    });
  }

  static std::string id_list_(const std::vector<std::uint64_t>& ids, const char* sep = ",") {
    std::vector<std::uint64_t> v = ids;
    std::sort(v.begin(), v.end());
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out.append(i == 0 ? "" : sep).append(std::to_string(v[i]));
    return out;
  }
  static std::string describe_(const raft::membership<std::uint64_t>& m) {
    std::string out = "voters [" + id_list_(m.voters, " ") + "]";
    if (m.joint()) out += " outgoing voters [" + id_list_(m.voters_outgoing, " ") + "] (joint)";
    if (!m.learners.empty()) out += " learners [" + id_list_(m.learners, " ") + "]";
    if (!m.learners_next.empty()) out += " learners next [" + id_list_(m.learners_next, " ") + "]";
    if (!m.witnesses.empty()) out += " witnesses [" + id_list_(m.witnesses, " ") + "]";
    return out;
  }

  /// After each output: learns the addresses carried by configuration
  /// entries the Log gained (in force once appended, thesis 4.1), and logs
  /// each new configuration. A truncation (the entry at scanned_ changed)
  /// rescans what the Log holds.
  void scan_log_() {
    const auto& log = node_.log();
    const std::uint64_t first = log.first_index().value, last = log.last_index().value;
    if (scanned_ > last || (scanned_ >= first - 1 && scanned_ > 0 && log.term_at(raft::index_t{scanned_}) != scanned_term_))
      scanned_ = 0;  // cut back (or overwritten): look again at everything
    for (std::uint64_t i = std::max(scanned_ + 1, first); i <= last; ++i) {
      const auto& e = log.entry_at(raft::index_t{i});
      if (e.kind != raft::entry_kind::config) continue;
      auto c = raft::decode_config_entry<raft::default_transport>(e.conf);
      if (c && c->members.contains(opt_.id)) was_member_ = true;
      if (!c || c->context.empty()) continue;
      auto book = kv::decode_address_book(c->context.span());
      if (!book) {
        logf("WARN", "configuration entry %" PRIu64 " carries a context that is not an address book; ignored", i);
        continue;
      }
      for (const auto& [id, a] : *book) learn_(id, a, i, ("configuration entry " + std::to_string(i)).c_str());
    }
    scanned_ = last;
    scanned_term_ = log.term_at(raft::index_t{last});
    const auto& m = node_.configuration();
    if (m.contains(opt_.id)) was_member_ = true;
    if (node_.configuration_index() != shown_conf_index_ || !(m == shown_conf_)) {
      shown_conf_index_ = node_.configuration_index();
      shown_conf_ = m;
      if (!m.voters.empty())
        logf("INFO", "configuration (index %" PRIu64 "): %s; this node: %s", shown_conf_index_.value,
             describe_(m).c_str(), member_role_());
      if (m.is_witness(opt_.id) && !witness_) {
        witness_ = true;
        logf("INFO", "this node is a witness: it votes, holds the log without payloads and no store");
      }
      if (no_store_ && !is_witness_() && m.contains(opt_.id))
        logf("ERROR", "this node received data stripped for a witness, yet it is a %s: its store is incomplete",
             member_role_());
    }
  }

  /// POST /admin/add-learner?id=N&raft=HOST:PORT&client=HOST:PORT, /admin/add-witness (the same),
  /// /admin/promote?id=N[&force=1], /admin/remove?id=N. On the leader: one
  /// membership change (raft::node::change_membership), answered once its
  /// entry commits: 200. Elsewhere: 307 to the leader (or 503/421 as for
  /// /kv). "Not yet" refusals (the previous change is not committed, the
  /// leader has not committed an entry of its term, a transfer) are retried
  /// for up to 3 s, then answered 503 with Retry-After (nothing changed).
  void admin_membership_(client& c, const kv::http_request& req, const std::string& path, const std::string& query) {
    const std::string verb = path.substr(7);  // after "/admin/"
    const bool add = verb == "add-learner" || verb == "add-witness";
    const std::string usage = add ? "use POST /admin/" + verb + "?id=N&raft=HOST:PORT&client=HOST:PORT\n"
                                  : verb == "promote" ? "use POST /admin/promote?id=N (&force=1: even if it lags)\n"
                                                      : "use POST /admin/" + verb + "?id=N\n";
    if (req.method != "POST") return reply_(c, 405, usage, "Allow: POST\r\n");
    const auto id_s = query_param_(query, "id");
    char* end = nullptr;
    const std::uint64_t id = id_s && !id_s->empty() ? std::strtoull(id_s->c_str(), &end, 10) : 0;
    if (!id_s || id_s->empty() || *end != '\0' || id == 0) return reply_(c, 400, "missing or bad id; " + usage);
    if (!node_.is_leader()) return redirect_(c, req.target);
    admin_op op;
    op.client = c.id;
    op.target = req.target;
    op.give_up = kv::now_ms() + 3000;
    const auto& m = node_.configuration();
    // The context: where the members - and the added node - listen.
    kv::address_book ctx;
    for (const auto& mid : m.members())
      if (auto it = book_.find(mid); it != book_.end()) ctx[mid] = it->second;
    if (add) {
      const auto raft_s = query_param_(query, "raft");
      const auto client_s = query_param_(query, "client");
      const auto raft_ep = raft_s ? kv::parse_endpoint(kv::percent_decode(*raft_s).value_or("")) : std::nullopt;
      const auto client_ep =
          client_s && !client_s->empty() ? kv::parse_endpoint(kv::percent_decode(*client_s).value_or("")) : std::nullopt;
      if (!raft_ep) return reply_(c, 400, "missing or bad raft address (the new node's --peers address); " + usage);
      if (client_s && !client_s->empty() && !client_ep)
        return reply_(c, 400, "bad client address (the new node's --listen address); " + usage);
      ctx[id] = kv::node_addresses{raft_ep->str(), client_ep ? client_ep->str() : std::string()};
      op.change.changes = {{verb == "add-learner" ? raft::change_type::add_learner : raft::change_type::add_witness, id}};
      op.what = (verb == "add-learner" ? "add learner " : "add witness ") + std::to_string(id) + " (peers at " +
                raft_ep->str() + ", clients at " + (client_ep ? client_ep->str() : std::string("unknown")) + ")";
    } else if (verb == "promote") {
      if (!m.is_voter(id) && !m.is_learner(id))
        return reply_(c, 404, "node " + std::to_string(id) + " is not a learner; add it with /admin/add-learner first\n");
      if (m.is_witness(id))
        return reply_(c, 409, "node " + std::to_string(id) + " is a witness: it cannot be promoted; remove it and add "
                              "it anew as a learner\n");
      const auto force = query_param_(query, "force");
      if (!m.is_voter(id) && !(force && *force == "1")) {
        // Promote only a learner that keeps up: a voter that lags slows
        // every commit (or, in a small cluster, stops them).
        const auto st = node_.status();
        const auto it = std::find_if(st.peers.begin(), st.peers.end(), [&](const auto& p) { return p.id == id; });
        if (it == st.peers.end() || it->match.value == 0 || !it->recent_active || it->lag > promote_max_lag)
          return reply_(c, 409,
                        "learner " + std::to_string(id) + " has not caught up" +
                            (it == st.peers.end() ? std::string()
                                                  : " (lag " + std::to_string(it->lag) + " entries, match " +
                                                        std::to_string(it->match.value) +
                                                        (it->recent_active ? "" : ", not heard from recently") + ")") +
                            ": wait until its lag is at most " + std::to_string(promote_max_lag) +
                            " (kv-cli members), or add force=1\n",
                        "Retry-After: 1\r\nX-Outcome: not-applied\r\nX-Reason: lagging\r\n");
      }
      op.change.changes = {{raft::change_type::add_voter, id}};
      op.what = "promote " + std::to_string(id) + " to voter";
    } else {
      op.change.changes = {{raft::change_type::remove, id}};
      op.what = "remove " + std::to_string(id);
      ctx.erase(id);
    }
    op.change.how = raft::transition::automatic;
    op.change.context = kv::encode_address_book(ctx);
    c.waiting = true;
    if (!try_change_(c, op)) admin_retry_.push_back(std::move(op));
  }

  struct admin_op {
    std::uint64_t client = 0;
    raft::conf_change<std::uint64_t> change;
    std::string what;
    std::string target;      // the request target, for a redirect
    std::int64_t give_up = 0;  // retries of "not yet" refusals end here
  };
  /// A change proposed, waiting for its entry to commit.
  struct admin_wait {
    std::uint64_t client = 0;
    raft::index_t index;
    raft::term_t term;
    std::string what;
    std::int64_t deadline = 0;
  };

  /// Tries `op`; true if answered (or proposed: then answered on commit),
  /// false to retry later (a "not yet" refusal, before op.give_up).
  bool try_change_(client& c, const admin_op& op) {
    const auto r = node_.change_membership(op.change, out_);
    using cs = raft::change_status;
    switch (r.status) {
      case cs::ok:
        logf("INFO", "admin: %s: proposed at index %" PRIu64 " (term %" PRIu64 ")", op.what.c_str(), r.index.value,
             r.term.value);
        admin_wait_.push_back(admin_wait{c.id, r.index, r.term, op.what, kv::now_ms() + opt_.request_timeout_ms});
        return true;
      case cs::not_leader: redirect_(c, op.target); return true;
      case cs::change_pending:
      case cs::not_ready:
      case cs::transferring:
        if (kv::now_ms() < op.give_up) return false;
        reply_(c, 503, op.what + ": not now: " + raft::to_string(r.status) + "; nothing changed; retry shortly\n",
               std::string("Retry-After: 1\r\nX-Outcome: not-applied\r\nX-Reason: ") +
                   (r.status == cs::change_pending ? "change-pending"
                    : r.status == cs::not_ready    ? "not-ready"
                                                   : "transferring") +
                   "\r\n");
        return true;
      case cs::unknown_node:
        reply_(c, 404, op.what + ": refused: " + raft::to_string(r.status) + "\n");
        return true;
      default:
        reply_(c, 409, op.what + ": refused: " + raft::to_string(r.status) + "; nothing changed\n");
        return true;
    }
  }

  /// Retries the membership changes refused with "not yet" (each iteration).
  void retry_admin_() {
    if (admin_retry_.empty()) return;
    std::vector<admin_op> left;
    for (auto& op : admin_retry_) {
      auto it = clients_.find(op.client);
      if (it == clients_.end()) continue;  // the client went away: nothing was changed
      if (!try_change_(*it->second, op)) left.push_back(std::move(op));
    }
    admin_retry_ = std::move(left);
  }

  /// The entry at `index` (term `term`) was applied, or covered by a
  /// snapshot (term unknown: 0): answers the change waiting on it.
  void admin_decided_(raft::index_t index, raft::term_t term, bool by_snapshot) {
    std::erase_if(admin_wait_, [&](const admin_wait& w) {
      if (by_snapshot ? w.index > index : w.index != index) return false;
      auto it = clients_.find(w.client);
      if (it == clients_.end()) return true;
      client& c = *it->second;
      const std::string idx = "X-Raft-Index: " + std::to_string(w.index.value) + "\r\n";
      if (by_snapshot)
        reply_(c, 503, w.what + ": this node installed a snapshot covering the change; it may or may not be applied "
                                "(kv-cli members shows the configuration)\n",
               idx + "X-Outcome: unknown\r\n");
      else if (w.term != term)
        reply_(c, 503, w.what + ": leadership changed before the change committed; it was not applied; retry\n",
               idx + "X-Outcome: not-applied\r\n");
      else
        reply_(c, 200, w.what + ": committed at index " + std::to_string(w.index.value) + "; configuration: " +
                           describe_(node_.configuration()) + "\n",
               idx);
      return true;
    });
  }

  /// Leadership lost (or shutdown): every change still waiting has an unknown outcome.
  void admin_unknown_(const char* why) {
    for (const auto& w : admin_wait_)
      if (auto it = clients_.find(w.client); it != clients_.end())
        reply_(*it->second, 503, w.what + ": " + why + "; its outcome is unknown (kv-cli members shows the configuration)\n",
               "X-Outcome: unknown\r\nX-Reason: leadership-lost\r\n");
    admin_wait_.clear();
    for (const auto& op : admin_retry_)
      if (auto it = clients_.find(op.client); it != clients_.end()) redirect_(*it->second, op.target);
    admin_retry_.clear();
  }

  void expire_admin_(std::int64_t now) {
    std::erase_if(admin_wait_, [&](const admin_wait& w) {
      if (w.deadline > now) return false;
      if (auto it = clients_.find(w.client); it != clients_.end())
        reply_(*it->second, 504, w.what + ": timed out before the change committed; it may or may not be applied\n",
               "X-Outcome: unknown\r\n");
      return true;
    });
  }

  /// GET /admin/members: the configuration as a table; the leader adds each
  /// peer's replication lag.
  std::string members_text_() const {
    const auto st = node_.status();
    const auto& m = st.configuration;
    std::string out = "configuration index " + std::to_string(st.configuration_index.value) +
                      (st.configuration_index <= st.commit ? " (committed)" : " (not committed yet)") + ", node " +
                      std::to_string(opt_.id) + " is " + raft::to_string(st.role) + " (" + member_role_() +
                      "), leader " + (st.leader ? std::to_string(*st.leader) : std::string("unknown")) + ", term " +
                      std::to_string(st.term.value) + ", commit " + std::to_string(st.commit.value) + "\n";
    if (m.voters.empty()) return out + "no membership known yet (a node started with --join that was not added yet)\n";
    if (m.joint()) out += "JOINT configuration: old voters [" + id_list_(m.voters_outgoing, " ") + "]\n";
    char line[512];
    std::snprintf(line, sizeof line, "%-6s %-8s %-22s %-22s %s\n", "id", "role", "peers", "clients",
                  node_.is_leader() ? "lag (entries)" : "");
    out += line;
    auto members = m.members();
    std::sort(members.begin(), members.end());
    for (const auto id : members) {
      const char* role = m.is_witness(id) ? "witness" : m.is_voter(id) ? "voter" : "learner";
      const auto it = book_.find(id);
      std::string lag;
      if (id == opt_.id && node_.is_leader()) lag = "leader";
      for (const auto& p : st.peers)
        if (p.id == id) lag = std::to_string(p.lag) + (p.recent_active ? "" : " (not heard from recently)");
      std::snprintf(line, sizeof line, "%-6" PRIu64 " %-8s %-22s %-22s %s\n", id, role,
                    it == book_.end() ? "unknown" : it->second.raft.c_str(),
                    it == book_.end() || it->second.client.empty() ? "unknown" : it->second.client.c_str(), lag.c_str());
      out += line;
    }
    return out;
  }

  /// The configuration, for /status.
  std::string configuration_json_() const {
    const auto& m = node_.configuration();
    auto arr = [](const std::vector<std::uint64_t>& v) { return "[" + id_list_(v) + "]"; };
    std::string out = ",\"member\":\"" + std::string(member_role_()) + "\",\"witness\":" + (is_witness_() ? "true" : "false") +
                      ",\"joined\":" + (joined_ ? "true" : "false") +
                      ",\"configuration_index\":" + std::to_string(node_.configuration_index().value) +
                      ",\"configuration_committed\":" +
                      (node_.configuration_index() <= node_.commit_index() ? "true" : "false") +
                      ",\"configuration\":{\"voters\":" + arr(m.voters) + ",\"voters_outgoing\":" + arr(m.voters_outgoing) +
                      ",\"learners\":" + arr(m.learners) + ",\"learners_next\":" + arr(m.learners_next) +
                      ",\"witnesses\":" + arr(m.witnesses) + ",\"joint\":" + (m.joint() ? "true" : "false") +
                      ",\"auto_leave\":" + (m.auto_leave ? "true" : "false") + "},\"addresses\":{";
    bool first = true;
    for (const auto& [id, a] : book_) {
      out += (first ? "\"" : ",\"") + std::to_string(id) + "\":{\"raft\":\"" + a.raft + "\",\"client\":\"" + a.client + "\"}";
      first = false;
    }
    return out + "}";
  }

  // ------------------------------------------------------------- cleanup

  void sweep_() {
    for (auto& p : peers_in_)
      if (p->dead) {
        ::close(p->fd);
        p->fd = -1;
      }
    std::erase_if(peers_in_, [](const auto& p) { return p->fd < 0; });
    const std::int64_t now = kv::now_ms();
    for (auto it = clients_.begin(); it != clients_.end();) {
      if (it->second->closing && now >= it->second->close_deadline) it->second->dead = true;
      if (it->second->dead) {
        ::close(it->second->fd);
        it = clients_.erase(it);
      } else {
        ++it;
      }
    }
    std::erase_if(client_order_, [&](std::uint64_t id) { return clients_.count(id) == 0; });
  }

  void shutdown_() {
    try {
      if (writer_) {
        if (auto d = writer_->wait_idle()) node_.log().mark_durable(d->ticket);
      }
      node_.log().sync();
    } catch (const kv::log_error& e) {
      logf("ERROR", "final sync failed: %s", e.what());
    }
    pending_.clear([&](const kv::pending_request& p, kv::request_fate) {
      if (auto c = clients_.find(p.client); c != clients_.end())
        reply_(*c->second, 503, "server shutting down; the request may or may not be applied\n", "X-Outcome: unknown\r\n", true);
    });
    for (const auto& [id, r] : reads_)
      if (auto c = clients_.find(r.client); c != clients_.end())
        reply_(*c->second, 503, "server shutting down; the read was not served\n", "X-Outcome: not-applied\r\n", true);
    reads_.clear();
    admin_unknown_("the server is shutting down");
    for (auto& [id, c] : clients_) {
      flush_client_(*c);
      ::close(c->fd);
    }
    for (auto& p : peers_in_) ::close(p->fd);
    for (auto& p : peers_out_)
      if (p->fd >= 0) ::close(p->fd);
    ::close(raft_listen_);
    ::close(http_listen_);
    if (journal_fd_ >= 0) ::close(journal_fd_);
    logf("INFO", "stopped cleanly (term %" PRIu64 ", commit %" PRIu64 ", %" PRIu64 " syncs)", node_.term().value,
         node_.commit_index().value, syncs_total_());
    writer_.reset();
  }

  /// Durability flushes so far: sync() calls of the loop, and the writer's fdatasyncs.
  [[nodiscard]] std::uint64_t syncs_total_() const { return syncs_ + (writer_ ? writer_->flushes() : 0); }

  std::uint64_t jitter_() {
    jitter_state_ += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = jitter_state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 27);
  }

  options opt_;
  node_t node_;
  std::unique_ptr<writer_t> writer_;  // async durability: the writer thread (null: sync)
  std::uint64_t submitted_seq_ = 0;   // the newest Log write written out (async) or synced (sync)
  std::uint64_t quiesces_ = 0;        // times the loop waited for the writer before cutting the log
  node_t::output_type out_;
  kv::store store_;
  int raft_listen_ = -1;
  int http_listen_ = -1;
  std::vector<std::unique_ptr<peer_out>> peers_out_;
  std::vector<std::unique_ptr<peer_in>> peers_in_;
  std::map<std::uint64_t, std::unique_ptr<client>> clients_;
  std::vector<std::uint64_t> client_order_;  // ids in the order their pollfds are built
  std::uint64_t next_client_ = 0;
  kv::pending_requests pending_;  // proposed requests waiting for their fate
  std::vector<queued> queued_;
  std::unordered_map<std::uint64_t, waiting_read> reads_;  // ReadIndex reads by read id
  std::vector<raft::read_state> ready_reads_;              // confirmed, index not applied yet
  std::uint64_t next_read_ = 0;
  std::uint64_t reads_served_ = 0;
  std::uint64_t reads_failed_ = 0;  // answered "not leader" after raft gave up on them
  bool was_leader_ = false;         // after the previous output
  raft::term_t leader_term_;        // the term of was_leader_
  struct transfer_report {
    std::uint64_t target = 0;
    std::string outcome;
    std::int64_t at_ms = 0;
  };
  std::optional<transfer_report> last_transfer_;
  bool isolated_ = false;  // --debug fault switch: drop all peer traffic
  std::uint64_t isolated_dropped_ = 0;
  std::vector<pollfd> pfds_;
  std::int64_t next_tick_ = 0;
  bool stopping_ = false;
  std::uint64_t syncs_ = 0;
  std::uint64_t bad_frames_ = 0;  // peer frames dropped for a checksum mismatch
  const std::uint64_t startup_snapshot_;  // the Log's snapshot index when the server started
  std::uint64_t applied_ = 0;             // last index applied to store_ (by entry or snapshot)
  std::uint64_t snapshots_taken_ = 0;
  std::uint64_t snapshots_installed_ = 0;  // received from a leader (not the local one at startup)
  // Membership (see the top of this file).
  const bool joined_;                      // started with --join now or before (DATA/joined): no bootstrap voters
  kv::address_book book_;                  // where every node we know of listens
  std::map<std::uint64_t, std::uint64_t> book_index_;  // id -> log index its addresses come from (0: command line, handshake)
  kv::node_addresses self_addrs_;          // ours, as said in handshakes and contexts
  std::set<std::uint64_t> no_address_warned_;
  std::uint64_t no_address_dropped_ = 0;   // messages to nodes without a known address
  std::uint64_t from_non_members_ = 0;     // messages raft ignored: the sender is not in our configuration
  std::uint64_t scanned_ = 0;              // configuration entries up to here were read for addresses
  raft::term_t scanned_term_;
  raft::index_t shown_conf_index_;         // the configuration last logged
  raft::membership<std::uint64_t> shown_conf_;
  bool witness_ = false;                   // the configuration made this node a witness (sticky)
  bool no_store_ = false;                  // got witness data (no payloads) before its configuration said so
  bool was_member_ = false;                // a configuration in the log or snapshot listed this node
  std::vector<admin_op> admin_retry_;      // membership changes refused "not yet", retried
  std::vector<admin_wait> admin_wait_;     // membership changes proposed, waiting for their commit
  static constexpr std::uint64_t promote_max_lag = 1000;
  int journal_fd_ = -1;                    // --debug: DATA/debug-applied
  std::string journal_buf_;
  std::uint64_t jitter_state_ = static_cast<std::uint64_t>(kv::now_us());
};

}  // namespace

int main(int argc, char** argv) {
  options opt = parse_args(argc, argv);
  g_id = opt.id;
  if (::pipe(g_signal_pipe) != 0) return 1;
  kv::set_nonblocking(g_signal_pipe[0]);
  kv::set_nonblocking(g_signal_pipe[1]);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  if (opt.debug) ::sigaction(SIGUSR1, &sa, nullptr);  // simulated power failure (tests)
  ::signal(SIGPIPE, SIG_IGN);
  try {
    kv::disk_log_options lo;
    lo.segment_bytes = opt.segment_bytes;
    lo.preallocate_bytes = opt.preallocate_bytes;
    lo.fsync = opt.fsync;
    lo.warn = [](const std::string& s) { logf("WARN", "%s", s.c_str()); };
    if (opt.join) check_join_dir(opt);
    auto log = kv::disk_log::open(opt.data, std::move(lo));
    check_identity(opt);
    if (opt.join) mark_joined(opt);
    const bool joined = opt.join || joined_before(opt);
    server s(std::move(opt), std::move(log), joined);
    return s.run();
  } catch (const kv::log_error& e) {
    logf("FATAL", "%s", e.what());
    return 3;
  } catch (const std::exception& e) {
    logf("FATAL", "%s", e.what());
    return 2;
  }
}
