// benchmarks/snapshot.cpp - time and memory to send and install a snapshot.
//
// A 3-node cluster in one process: node 1 leads, node 2 follows, node 3 is
// new and empty. Node 1 compacts its log into a snapshot of --mib MiB (default
// 64), then node 3 joins and is brought up by InstallSnapshot in chunks of
// config.snapshot_chunk_bytes (--chunk-kib, default 1024) with
// --inflight chunks in flight (default 4). With --codec every message is
// encoded to bytes and decoded again, as a network transport would.
//
// Prints a table, or JSON with --json.
#include <raft/raft.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <malloc.h>
#include <new>
#include <string>
#include <vector>

namespace {
std::size_t g_allocs = 0, g_bytes = 0, g_live = 0, g_peak = 0;
}

// Counting allocator: live bytes are tracked with malloc_usable_size, so no
// header arithmetic is needed.
void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  ++g_allocs;
  g_bytes += n;
  g_live += malloc_usable_size(p);
  if (g_live > g_peak) g_peak = g_live;
  return p;
}
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  g_live -= malloc_usable_size(p);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {
using node = raft::node<>;
using msg = node::message_type;

long rss_kib() {
  long kib = 0;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "VmHWM:", 6) == 0) kib = std::atol(line + 6);
    std::fclose(f);
  }
  return kib;
}
}  // namespace

int main(int argc, char** argv) {
  std::size_t mib = 64, chunk_kib = 1024;
  std::uint32_t inflight = 4;
  bool json = false, codec = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") json = true;
    else if (a == "--codec") codec = true;
    else if (a == "--mib" && i + 1 < argc) mib = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--chunk-kib" && i + 1 < argc) chunk_kib = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--inflight" && i + 1 < argc) inflight = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    else {
      std::fprintf(stderr, "usage: %s [--mib N] [--chunk-kib N] [--inflight N] [--codec] [--json]\n", argv[0]);
      return 2;
    }
  }
  auto cfg = [&](std::uint64_t id) {
    return raft::config<std::uint64_t>{.id = id,
                                       .voters = {1, 2, 3},
                                       .snapshot_chunk_bytes = chunk_kib * 1024,
                                       .max_snapshot_inflight = inflight,
                                       .max_snapshot_chunk_bytes = std::max<std::size_t>(chunk_kib * 1024, 16u << 20)};
  };
  std::vector<node> nodes;
  for (std::uint64_t id = 1; id <= 3; ++id) nodes.emplace_back(cfg(id));
  std::deque<msg> net;
  node::output_type out;
  bool down3 = true;
  std::size_t messages = 0, wire_bytes = 0;
  std::vector<std::byte> buf;
  auto drain = [&] {
    for (auto& m : out.messages) net.push_back(std::move(m));
    out.clear();
  };
  auto deliver_all = [&] {
    while (!net.empty()) {
      msg m = std::move(net.front());
      net.pop_front();
      if (m.to == 3 && down3) continue;
      ++messages;
      if (codec) {
        buf.clear();
        raft::codec<raft::default_transport>::encode(m, buf);
        wire_bytes += buf.size();
        auto d = raft::codec<raft::default_transport>::decode(buf);
        if (!d) {
          std::fprintf(stderr, "decode failed: %s\n", raft::to_string(d.error));
          return false;
        }
        m = std::move(*d.value);
      }
      (void)nodes[m.to - 1].step(std::move(m), out);  // a refused message shows up as a failed transfer below
      drain();
    }
    return true;
  };
  nodes[0].campaign(out);
  drain();
  if (!deliver_all() || !nodes[0].is_leader()) return 1;
  for (int k = 0; k < 100; ++k)
    if (!nodes[0].propose(raft::bytes("command"), out).ok()) return 1;
  drain();
  deliver_all();
  const raft::index_t upto = nodes[0].applied_index();

  std::string image(mib << 20, '\0');
  for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<char>(i * 131 + (i >> 12));
  if (nodes[0].compact(upto, raft::bytes(image), out) != raft::compact_status::ok) return 1;
  drain();
  image.clear();
  image.shrink_to_fit();

  const std::size_t a0 = g_allocs, b0 = g_bytes, live0 = g_live;
  g_peak = g_live;
  const long rss0 = rss_kib();
  const auto t0 = std::chrono::steady_clock::now();
  down3 = false;
  std::size_t ticks = 0;
  while (nodes[2].log().snapshot_index() != upto && ticks < 100000) {
    nodes[0].tick(out);  // the heartbeat probes node 3, which needs the snapshot
    ++ticks;
    drain();
    if (!deliver_all()) return 1;
  }
  const auto t1 = std::chrono::steady_clock::now();
  if (nodes[2].log().snapshot_index() != upto || nodes[2].log().snapshot_data().size() != (mib << 20)) {
    std::fprintf(stderr, "node 3 did not install the snapshot\n");
    return 1;
  }
  const double secs = std::chrono::duration<double>(t1 - t0).count();
  const double mb = static_cast<double>(mib << 20) / 1e6;
  const std::size_t chunks = ((mib << 20) + chunk_kib * 1024 - 1) / (chunk_kib * 1024);
  const double peak_extra_mib = static_cast<double>(g_peak - live0) / (1 << 20);
  if (json) {
    std::printf(
        "{\"benchmark\":\"snapshot\",\"snapshot_mib\":%zu,\"chunk_kib\":%zu,\"inflight\":%u,\"codec\":%s,"
        "\"seconds\":%.6f,\"mb_per_s\":%.1f,\"chunks\":%zu,\"messages\":%zu,\"heartbeats\":%zu,"
        "\"allocs\":%zu,\"alloc_mib\":%.1f,\"peak_extra_heap_mib\":%.1f,\"peak_rss_mib\":%.1f,"
        "\"rss_growth_mib\":%.1f}\n",
        mib, chunk_kib, inflight, codec ? "true" : "false", secs, mb / secs, chunks, messages, ticks, g_allocs - a0,
        static_cast<double>(g_bytes - b0) / (1 << 20), peak_extra_mib, static_cast<double>(rss_kib()) / 1024,
        static_cast<double>(rss_kib() - rss0) / 1024);
  } else {
    std::printf("snapshot transfer: %zu MiB in %zu KiB chunks, %u in flight%s\n", mib, chunk_kib, inflight,
                codec ? ", through the codec" : "");
    std::printf("  %-28s %10.3f ms\n", "send + install", secs * 1e3);
    std::printf("  %-28s %10.1f MB/s\n", "throughput", mb / secs);
    std::printf("  %-28s %10zu\n", "chunks", chunks);
    std::printf("  %-28s %10zu\n", "messages delivered", messages);
    std::printf("  %-28s %10zu\n", "leader ticks", ticks);
    std::printf("  %-28s %10zu\n", "heap allocations", g_allocs - a0);
    std::printf("  %-28s %10.1f MiB\n", "heap bytes allocated", static_cast<double>(g_bytes - b0) / (1 << 20));
    std::printf("  %-28s %10.1f MiB\n", "peak extra live heap", peak_extra_mib);
    std::printf("  %-28s %10.1f MiB\n", "peak RSS (process)", static_cast<double>(rss_kib()) / 1024);
  }
  return 0;
}
