// benchmarks/scaling.cpp - workload 6: how the cost per entry scales.
//
// (a) cluster size: ns per entry for 3 / 5 / 7 / 9 nodes, workload-1 configs
//     batch=1, batch=256(multi) and window=1024(multi) (compaction as in
//     bench_throughput); the median of --reps runs (default 3).
// (b) log length: a 3-node cluster whose logs already hold --small (1e5) or
//     --large (1e7) entries, without compaction, then the same three configs
//     in turn, --entries more each (so the log grows by 3 x --entries). The prefill proposes one shared 128-byte payload
//     (batches of 4096, untimed) so that 1e7 entries x 3 logs fit in about
//     1.5 GB; the measured entries use fresh payloads as everywhere else.
// Each case runs in a forked child.
//
//   bench_scaling [--entries N (200000)] [--nodes 3,5,7,9] [--reps 3] [--small 1e5] [--large 1e7] [--json]
#include "common.hpp"

namespace {

const char* const usage =
    "usage: bench_scaling [--entries N (200000)] [--nodes 3,5,7,9] [--reps R (3)] [--small N (1e5)] [--large N (1e7)] [--json]\n";

struct result {
  bench::workload_result r;
  double prefill_seconds = 0;
  std::uint64_t log_entries_before = 0;
};

void prefill_log(bench::cluster<raft::node<>>& c, std::uint64_t n, result& out) {
  if (n == 0) return;
  bench::workload w;
  w.nodes = c.nodes.size();
  w.entries = n;
  w.batch = 4096;
  w.multi = true;
  w.shared_payload = true;
  w.compact = 0;
  const auto t0 = bench::clock_type::now();
  bench::drive(c, w);
  out.prefill_seconds = bench::seconds_since(t0);
}

/// (a): a fresh cluster per config.
result run(const bench::workload& p) {
  bench::cluster<raft::node<>> c(p.nodes, bench::default_config());
  c.compact_every = p.compact;
  c.elect(0);
  result out;
  out.log_entries_before = c.nodes[0].log().entry_count();
  out.r = bench::drive(c, p);
  return out;
}

struct mode {
  std::uint64_t batch, window;
  bool multi;
};
const mode modes[] = {{1, 0, false}, {256, 0, true}, {1, 1024, true}};

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  const std::uint64_t entries = a.u64("--entries", 200000);
  const auto node_counts = a.list("--nodes", {3, 5, 7, 9});
  const std::uint64_t small = a.u64("--small", 100000);
  const std::uint64_t large = a.u64("--large", 10000000);
  const std::uint64_t reps = std::max<std::uint64_t>(1, a.u64("--reps", 3));
  const bool json = a.flag("--json");
  a.done(usage);
  if (entries == 0) bench::die("--entries must be positive");

  std::vector<bench::record> recs;
  auto ns = [&](const bench::workload_result& r) { return r.seconds * 1e9 / static_cast<double>(entries); };

  // (a) cluster size
  bench::table ta({"nodes", "batch=1 ns/entry", "batch=1 us/commit", "batch=256(multi) ns/entry",
                   "window=1024(multi) ns/entry", "msgs/entry (batch=1)"});
  for (auto n : node_counts) {
    std::vector<std::string> row{bench::fmt_u(n)};
    double msgs = 0;
    for (const auto& m : modes) {
      bench::workload p;
      p.nodes = n;
      p.entries = entries;
      p.batch = m.batch;
      p.window = m.window;
      p.multi = m.multi;
      // Median of --reps runs (by ns/entry): this machine is noisy.
      std::vector<std::pair<result, double>> runs;
      for (std::uint64_t k = 0; k < reps; ++k) runs.push_back(bench::run_isolated<result>([&] { return run(p); }));
      std::sort(runs.begin(), runs.end(), [](const auto& x, const auto& y) { return x.first.r.seconds < y.first.r.seconds; });
      auto [res, rss] = runs[runs.size() / 2];
      bench::record rec;
      rec.str("sweep", "nodes")
          .integer("nodes", n)
          .str("mode", p.mode_name())
          .integer("entries", entries)
          .num("ns_per_entry", ns(res.r), 1)
          .num("entries_per_s", 1e9 / ns(res.r), 0)
          .num("messages_per_entry", static_cast<double>(res.r.messages) / static_cast<double>(entries), 3)
          .integer("reps", reps)
          .num("rss_mb", rss, 1);
      recs.push_back(rec);
      row.push_back(bench::fmt("%.1f", ns(res.r)));
      if (m.batch == 1 && m.window == 0) {
        row.push_back(bench::fmt("%.2f", res.r.seconds * 1e6 / static_cast<double>(entries)));
        msgs = static_cast<double>(res.r.messages) / static_cast<double>(entries);
      }
    }
    row.push_back(bench::fmt("%.2f", msgs));
    ta.add(row);
  }

  // (b) log length
  bench::table tb({"entries in log", "batch=1 ns/entry", "batch=256(multi) ns/entry", "window=1024(multi) ns/entry",
                   "prefill s", "peak RSS MB"});
  // One child per log length: prefill once, then the three configs in turn
  // (each adds --entries entries, so the log only grows by a few percent).
  struct three {
    result r[3];
  };
  for (std::uint64_t prefill : {small, large}) {
    std::vector<std::string> row{bench::fmt_u(prefill)};
    auto [res3, rss] = bench::run_isolated<three>([&] {
      three t;
      bench::cluster<raft::node<>> c(3, bench::default_config());
      c.compact_every = 0;
      c.elect(0);
      prefill_log(c, prefill, t.r[0]);
      for (std::size_t k = 0; k < 3; ++k) {
        bench::workload p;
        p.nodes = 3;
        p.entries = entries;
        p.batch = modes[k].batch;
        p.window = modes[k].window;
        p.multi = modes[k].multi;
        p.compact = 0;
        t.r[k].log_entries_before = c.nodes[0].log().entry_count();
        t.r[k].r = bench::drive(c, p);
      }
      return t;
    });
    for (std::size_t k = 0; k < 3; ++k) {
      bench::workload p;
      p.batch = modes[k].batch;
      p.window = modes[k].window;
      p.multi = modes[k].multi;
      bench::record rec;
      rec.str("sweep", "log_length")
          .integer("nodes", 3)
          .integer("log_entries_before", res3.r[k].log_entries_before)
          .str("mode", p.mode_name())
          .integer("entries", entries)
          .num("ns_per_entry", ns(res3.r[k].r), 1)
          .num("entries_per_s", 1e9 / ns(res3.r[k].r), 0)
          .num("prefill_seconds", res3.r[0].prefill_seconds, 2)
          .num("rss_mb", rss, 1);
      recs.push_back(rec);
      row.push_back(bench::fmt("%.1f", ns(res3.r[k].r)));
    }
    row.push_back(bench::fmt("%.2f", res3.r[0].prefill_seconds));
    row.push_back(bench::fmt("%.0f", rss));
    tb.add(row);
  }

  if (json) {
    bench::record params;
    params.integer("entries", entries).integer("small", small).integer("large", large).integer("payload", 128);
    bench::print_json("scaling", params, recs);
    return 0;
  }
  bench::print_machine_header("bench_scaling");
  std::printf("# (a) cluster size, %" PRIu64 " entries per config, compaction every 8192, median of %" PRIu64 " runs\n",
              entries, reps);
  ta.print();
  std::printf("\n# (b) 3 nodes, log already holding N entries (no compaction), then the three configs in turn,\n"
              "#     %" PRIu64 " entries each\n", entries);
  tb.print();
  return 0;
}
