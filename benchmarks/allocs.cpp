// benchmarks/allocs.cpp - workload 2: heap allocations per committed entry in
// steady state, counted with the replaced global operator new of common.hpp.
//
// For each workload-1 config the cluster first commits --warmup entries (so
// every reusable buffer has reached its working size), then the counters are
// read around --entries more. Two payload styles:
//   fresh  : a new 128-byte raft::bytes per entry (1 allocation that is the
//            payload's own storage);
//   shared : one raft::bytes proposed over and over, so every allocation
//            counted belongs to the library (or to the harness, which reuses
//            its buffers and allocates nothing in steady state).
// The histogram of requested sizes says where the allocations come from.
//
//   bench_allocs [--entries N] [--warmup N] [--nodes 3,5] [--json]
#include "common.hpp"

#include <array>

namespace {

const char* const usage =
    "usage: bench_allocs [--entries N (100000)] [--warmup N (50000)] [--nodes 3,5] [--json]\n";

struct result {
  bench::workload_result r;
  std::array<std::uint64_t, 257> hist;
};

result run(const bench::workload& p, std::uint64_t warmup) {
  bench::cluster<raft::node<>> c(p.nodes, bench::default_config());
  c.elect(0);
  bench::workload w = p;
  w.entries = warmup;
  if (warmup > 0) bench::drive(c, w);
  static std::array<std::uint64_t, 257> hist;
  hist.fill(0);
  bench::g_size_hist = hist.data();
  result out;
  out.r = bench::drive(c, p);
  bench::g_size_hist = nullptr;
  out.hist = hist;
  return out;
}

/// "144 B x1.00, 96 B x0.01" - the biggest buckets, per entry.
std::string top_sizes(const std::array<std::uint64_t, 257>& h, double entries) {
  std::vector<std::pair<std::uint64_t, std::size_t>> v;
  for (std::size_t i = 0; i < h.size(); ++i)
    if (h[i] != 0) v.emplace_back(h[i], i);
  std::sort(v.rbegin(), v.rend());
  std::string s;
  for (std::size_t k = 0; k < v.size() && k < 3; ++k) {
    if (k) s += ", ";
    const std::size_t b = v[k].second;
    s += b == 256 ? ">=4096B" : std::to_string(b * 16) + "-" + std::to_string(b * 16 + 15) + "B";
    s += " x" + bench::fmt("%.3f", static_cast<double>(v[k].first) / entries);
  }
  return s.empty() ? "-" : s;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  const std::uint64_t entries = a.u64("--entries", 100000);
  const std::uint64_t warmup = a.u64("--warmup", 50000);
  const auto node_counts = a.list("--nodes", {3, 5});
  const bool json = a.flag("--json");
  a.done(usage);
  if (entries == 0) bench::die("--entries must be positive");

  struct mode {
    std::uint64_t batch, window;
    bool multi;
  };
  const mode modes[] = {{1, 0, false}, {64, 0, false}, {256, 0, false}, {64, 0, true},
                        {256, 0, true}, {1, 1024, false}, {1, 1024, true}};
  std::vector<bench::record> recs;
  bench::table t({"config", "allocs/entry (fresh)", "lib allocs/entry (shared)", "lib B/entry (shared)",
                  "lib allocs per AppendEntries with entries", "largest size buckets per entry (shared)"});
  for (auto n : node_counts)
    for (const auto& m : modes) {
      bench::workload p;
      p.nodes = n;
      p.entries = entries;
      p.batch = m.batch;
      p.window = m.window;
      p.multi = m.multi;
      p.shared_payload = false;
      auto fresh = bench::run_isolated<result>([&] { return run(p, warmup); }).first;
      p.shared_payload = true;
      auto shared = bench::run_isolated<result>([&] { return run(p, warmup); }).first;
      const double N = static_cast<double>(entries);
      const double appends = static_cast<double>(shared.r.appends);
      bench::record rec;
      rec.integer("nodes", n)
          .str("mode", p.mode_name())
          .integer("entries", entries)
          .integer("warmup", warmup)
          .num("allocs_per_entry_fresh_payload", static_cast<double>(fresh.r.allocs) / N, 4)
          .num("bytes_alloc_per_entry_fresh_payload", static_cast<double>(fresh.r.alloc_bytes) / N, 1)
          .num("allocs_per_entry_shared_payload", static_cast<double>(shared.r.allocs) / N, 4)
          .num("bytes_alloc_per_entry_shared_payload", static_cast<double>(shared.r.alloc_bytes) / N, 1)
          .num("messages_per_entry", static_cast<double>(shared.r.messages) / N, 3)
          .num("entry_carrying_appends_per_entry", appends / N, 4)
          .num("lib_allocs_per_entry_carrying_append", appends > 0 ? static_cast<double>(shared.r.allocs) / appends : 0, 3)
          .str("top_sizes_shared", top_sizes(shared.hist, N));
      recs.push_back(rec);
      t.add({std::to_string(n) + "nodes " + p.mode_name(), bench::fmt("%.3f", static_cast<double>(fresh.r.allocs) / N),
             bench::fmt("%.3f", static_cast<double>(shared.r.allocs) / N),
             bench::fmt("%.1f", static_cast<double>(shared.r.alloc_bytes) / N),
             appends > 0 ? bench::fmt("%.2f", static_cast<double>(shared.r.allocs) / appends) : "-",
             top_sizes(shared.hist, N)});
    }
  if (json) {
    bench::record params;
    params.integer("entries", entries).integer("warmup", warmup).integer("payload", 128);
    bench::print_json("allocs", params, recs);
    return 0;
  }
  bench::print_machine_header("bench_allocs");
  std::printf("# steady state: %" PRIu64 " entries measured after %" PRIu64 " warm-up entries; 128-byte payloads\n",
              entries, warmup);
  t.print();
  std::printf(
      "\nfresh : a new raft::bytes per entry; its buffer is 1 allocation per entry (the payload's own storage).\n"
      "shared: one raft::bytes proposed every time; what is left is the library's (target: 0 per entry).\n"
      "lib allocs per AppendEntries with entries: library allocations / AppendEntries messages that carried entries.\n");
  return 0;
}
