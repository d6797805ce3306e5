// benchmarks/throughput.cpp - workload 1 (throughput and commit latency) with
// the allocation count per entry of workload 2, in the exact shape of the
// peer harnesses in ../shared/peers (etcd raft, canonical raft), so that the
// output lines line up with theirs.
//
//   bench_throughput                      all 14 configs (3 and 5 nodes): table + peer-format lines
//   bench_throughput --json               the same as JSON
//   bench_throughput --lines              peer-format lines only
//   bench_throughput --nodes 3 --batch 64 --multi --entries 1e6
//                                         one config, one line (for ../shared/peers/common/median.py)
//
// See benchmarks/README.md for what every number means.
#include "common.hpp"

namespace {

const char* const usage =
    "usage: bench_throughput [options]\n"
    "  --entries N        entries to commit per config (default 200000)\n"
    "  --nodes 3,5        cluster sizes (default 3,5; one value with --batch/--window)\n"
    "  --batch B          run only this closed-loop config (propose B, run rounds until the leader applied them)\n"
    "  --window W         run only this open-loop config (keep up to W proposed but not applied by the leader)\n"
    "  --multi            with --batch/--window: one propose_batch() call per batch instead of one propose() per entry\n"
    "  --payload BYTES    payload size (default 128)\n"
    "  --shared-payload   propose one shared raft::bytes every time (default: a fresh buffer per entry)\n"
    "  --compact K        compact each node's memory_log every K applied entries, keeping K (default 8192; 0 = never)\n"
    "  --no-fork          run every config in this process (default: each in a forked child)\n"
    "  --json             machine-readable output\n"
    "  --lines            peer-format lines only\n";

bench::record to_record(const bench::workload& p, const bench::workload_result& r, double rss_mb) {
  const double N = static_cast<double>(p.entries);
  bench::record rec;
  rec.str("library", "raftpp")
      .integer("nodes", p.nodes)
      .str("mode", p.mode_name())
      .integer("entries", p.entries)
      .num("entries_per_s", N / r.seconds, 0)
      .num("ns_per_entry", r.seconds * 1e9 / N, 1);
  if (p.window == 0) {
    const double batches = N / static_cast<double>(p.batch);
    rec.num("us_per_batch_commit", r.seconds * 1e6 / batches, 2)
        .num("rounds_per_batch", static_cast<double>(r.rounds) / batches, 2);
  }
  rec.integer("rounds_total", r.rounds)
      .num("messages_per_entry", static_cast<double>(r.messages) / N, 3)
      .num("allocs_per_entry", static_cast<double>(r.allocs) / N, 3)
      .num("bytes_alloc_per_entry", static_cast<double>(r.alloc_bytes) / N, 0)
      .num("rss_mb", rss_mb, 1)
      .integer("drain_ticks", r.drain_ticks)
      .integer("not_ok_steps", r.not_ok);
  return rec;
}

bench::record params_record(const bench::workload& p) {
  bench::record r;
  r.integer("entries", p.entries)
      .integer("payload", p.payload)
      .str("payload_mode", p.shared_payload ? "shared" : "fresh")
      .integer("compact", p.compact);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  bench::workload base;
  base.entries = a.u64("--entries", 200000);
  const std::vector<std::uint64_t> node_counts = a.list("--nodes", {3, 5});
  std::string v;
  const bool one_batch = a.value("--batch", v);
  if (one_batch) base.batch = std::stoull(v);
  const bool one_window = a.value("--window", v);
  if (one_window) base.window = std::stoull(v);
  base.multi = a.flag("--multi");
  base.payload = a.u64("--payload", 128);
  base.shared_payload = a.flag("--shared-payload");
  base.compact = a.u64("--compact", 8192);
  const bool no_fork = a.flag("--no-fork");
  const bool json = a.flag("--json");
  const bool lines_only = a.flag("--lines");
  a.done(usage);
  if (base.entries == 0 || base.payload == 0) bench::die("--entries and --payload must be positive");
  if ((one_batch && base.batch == 0) || (one_window && base.window == 0)) bench::die("--batch/--window must be positive");

  // One config, in this process: exactly one line and no rss_mb, which
  // median.py adds from /usr/bin/time -v as it does for the peers.
  if (one_batch || one_window) {
    if (node_counts.size() != 1) bench::die("give one --nodes value with --batch/--window");
    bench::workload p = base;
    p.nodes = node_counts[0];
    if (one_window) p.batch = 1;
    const bench::workload_result r = bench::run_workload(p);
    const double rss = static_cast<double>(bench::peak_rss_bytes()) / (1024.0 * 1024.0);
    if (json) bench::print_json("throughput", params_record(p), {to_record(p, r, rss)});
    else std::printf("%s\n", bench::peer_line("raftpp", p, r).c_str());
    return 0;
  }

  struct mode {
    std::uint64_t batch, window;
    bool multi;
  };
  const mode modes[] = {{1, 0, false}, {64, 0, false}, {256, 0, false}, {64, 0, true},
                        {256, 0, true}, {1, 1024, false}, {1, 1024, true}};
  struct row {
    bench::workload p;
    bench::workload_result r;
    double rss_mb;
  };
  std::vector<row> rows;
  if (!json && !lines_only) {
    bench::print_machine_header("bench_throughput");
    std::printf("# entries=%" PRIu64 " payload=%" PRIu64 " %s compact=%" PRIu64 "\n", base.entries, base.payload,
                base.shared_payload ? "shared-payload" : "fresh-payload-per-entry", base.compact);
  }
  for (auto n : node_counts)
    for (const auto& m : modes) {
      bench::workload p = base;
      p.nodes = n;
      p.batch = m.batch;
      p.window = m.window;
      p.multi = m.multi;
      auto [r, rss] = bench::run_isolated<bench::workload_result>([&] { return bench::run_workload(p); }, !no_fork);
      if (lines_only) {
        std::printf("%s rss_mb=%.1f\n", bench::peer_line("raftpp", p, r).c_str(), rss);
        std::fflush(stdout);
      }
      rows.push_back({p, r, rss});
    }
  if (lines_only) return 0;

  if (json) {
    std::vector<bench::record> recs;
    for (const auto& x : rows) recs.push_back(to_record(x.p, x.r, x.rss_mb));
    bench::print_json("throughput", params_record(base), recs);
    return 0;
  }

  bench::table t({"config", "entries/s", "ns/entry", "us/commit", "rounds/commit", "msgs/entry", "allocs/entry",
                  "B alloc/entry", "rss MB"});
  for (const auto& x : rows) {
    const double N = static_cast<double>(x.p.entries);
    const double batches = N / static_cast<double>(x.p.batch);
    const bool closed = x.p.window == 0;
    t.add({std::to_string(x.p.nodes) + "nodes " + x.p.mode_name(), bench::fmt("%.0f", N / x.r.seconds),
           bench::fmt("%.1f", x.r.seconds * 1e9 / N), closed ? bench::fmt("%.2f", x.r.seconds * 1e6 / batches) : "na",
           closed ? bench::fmt("%.2f", static_cast<double>(x.r.rounds) / batches) : "na",
           bench::fmt("%.2f", static_cast<double>(x.r.messages) / N),
           bench::fmt("%.2f", static_cast<double>(x.r.allocs) / N),
           bench::fmt("%.0f", static_cast<double>(x.r.alloc_bytes) / N), bench::fmt("%.1f", x.rss_mb)});
  }
  t.print();
  std::printf(
      "\nus/commit and rounds/commit: per closed-loop batch (batch=1: latency of one entry).\n"
      "allocs/entry counts every operator new in the timed section, the payload's own buffer included\n"
      "(1 per entry unless --shared-payload).\n\npeer-format lines (compare with ../shared/peers):\n");
  for (const auto& x : rows) std::printf("%s rss_mb=%.1f\n", bench::peer_line("raftpp", x.p, x.r).c_str(), x.rss_mb);
  return 0;
}
