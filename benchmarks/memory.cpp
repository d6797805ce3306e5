// benchmarks/memory.cpp - workload 3: memory held per log entry.
//
// Commits --entries entries (128-byte payloads, a fresh buffer each, as a
// client would send them) without compaction, and reports per entry:
//   * RSS growth (/proc/self/statm before and after), the number an operator sees;
//   * live heap growth (every byte obtained through operator new and not yet
//     returned, as malloc_usable_size counts it);
//   * the memory_log's own accounting: payload_bytes() / entry_count(), plus
//     sizeof(entry) for the slot in its vector.
// Two cases, each in a forked child:
//   1 node : the log of a single-node cluster (everything is the leader's);
//   3 nodes: three replicas in one process. raft::bytes is shared, so the
//            three logs reference one copy of each payload; the per-entry
//            figure covers all three logs.
//
//   bench_memory [--entries N (1000000)] [--payload B (128)] [--json]
#include "common.hpp"

namespace {

const char* const usage = "usage: bench_memory [--entries N (1000000)] [--payload BYTES (128)] [--json]\n";

struct result {
  std::uint64_t nodes = 0;
  std::uint64_t entries = 0;
  double rss_growth = 0;        // bytes
  double heap_growth = 0;       // bytes
  double log_payload_bytes = 0; // memory_log::payload_bytes(), summed over nodes
  std::uint64_t log_entries = 0;  // memory_log::entry_count(), summed over nodes
  double vector_capacity_bytes = 0;  // not visible through the Log API: estimated as the
                                     // next power of two >= entries, times sizeof(entry)
  double seconds = 0;
};

result run(std::uint64_t nodes, std::uint64_t entries, std::uint64_t payload) {
  using node_t = raft::node<>;
  const std::uint64_t rss0 = bench::rss_bytes();
  const std::int64_t heap0 = bench::g_alloc.live_bytes;
  bench::cluster<node_t> c(nodes, bench::default_config());
  c.compact_every = 0;
  c.elect(0);
  bench::workload p;
  p.nodes = nodes;
  p.entries = entries;
  p.batch = 256;
  p.multi = true;
  p.payload = payload;
  p.compact = 0;
  const auto t0 = bench::clock_type::now();
  bench::drive(c, p);
  result r;
  r.seconds = bench::seconds_since(t0);
  // Drop what the harness itself holds (outputs' and queues' capacity).
  for (auto& o : c.outs) o = node_t::output_type{};
  std::vector<node_t::message_type>().swap(c.queue);
  std::vector<node_t::message_type>().swap(c.spare);
  r.nodes = nodes;
  r.entries = entries;
  r.rss_growth = static_cast<double>(bench::rss_bytes()) - static_cast<double>(rss0);
  r.heap_growth = static_cast<double>(bench::g_alloc.live_bytes - heap0);
  for (auto& n : c.nodes) {
    r.log_payload_bytes += static_cast<double>(n.log().payload_bytes());
    r.log_entries += n.log().entry_count();
    std::uint64_t cap = 1;
    while (cap < n.log().entry_count()) cap *= 2;
    r.vector_capacity_bytes += static_cast<double>(cap * sizeof(node_t::entry_type));
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  bench::g_track_live = true;  // set before anything is allocated, so every free is matched
  bench::args a(argc, argv);
  const std::uint64_t entries = a.u64("--entries", 1000000);
  const std::uint64_t payload = a.u64("--payload", 128);
  const bool json = a.flag("--json");
  a.done(usage);
  if (entries == 0 || payload == 0) bench::die("--entries and --payload must be positive");

  using entry_t = raft::node<>::entry_type;
  // raft::bytes keeps a 16-byte header (refcount + size) in front of the data.
  const double payload_alloc = static_cast<double>(payload + 16);
  std::vector<bench::record> recs;
  bench::table t({"case", "entries", "RSS B/entry", "heap B/entry", "log acct B/entry", "payload+hdr B", "sizeof(entry)",
                  "seconds"});
  for (std::uint64_t n : {std::uint64_t{1}, std::uint64_t{3}}) {
    auto [r, peak] = bench::run_isolated<result>([&] { return run(n, entries, payload); });
    const double E = static_cast<double>(entries);
    // The log's own accounting: payload bytes plus one entry slot per entry, per node.
    const double acct = (r.log_payload_bytes + static_cast<double>(r.log_entries * sizeof(entry_t))) / E;
    bench::record rec;
    rec.integer("nodes", n)
        .integer("entries", entries)
        .integer("payload", payload)
        .num("rss_bytes_per_entry", r.rss_growth / E, 1)
        .num("heap_bytes_per_entry", r.heap_growth / E, 1)
        .num("log_accounting_bytes_per_entry", acct, 1)
        .num("log_payload_bytes_per_entry", r.log_payload_bytes / E, 1)
        .integer("sizeof_entry", sizeof(entry_t))
        .num("vector_capacity_bytes_per_entry", r.vector_capacity_bytes / E, 1)
        .num("peak_rss_mb", peak, 1)
        .num("seconds", r.seconds, 3);
    recs.push_back(rec);
    t.add({n == 1 ? "1 node (one log)" : "3 nodes (three logs, shared payloads)", bench::fmt_u(entries),
           bench::fmt("%.1f", r.rss_growth / E), bench::fmt("%.1f", r.heap_growth / E), bench::fmt("%.1f", acct),
           bench::fmt("%.0f", payload_alloc), bench::fmt_u(sizeof(entry_t)), bench::fmt("%.2f", r.seconds)});
  }
  if (json) {
    bench::record params;
    params.integer("entries", entries).integer("payload", payload);
    bench::print_json("memory", params, recs);
    return 0;
  }
  bench::print_machine_header("bench_memory");
  t.print();
  std::printf(
      "\nRSS B/entry : resident set growth over the run / entries (all logs of the case together).\n"
      "heap B/entry: live operator-new bytes growth / entries (malloc_usable_size; includes the log vectors'\n"
      "              spare capacity after doubling, excludes malloc's per-chunk header).\n"
      "log acct    : sum over nodes of memory_log::payload_bytes() + entry_count() * sizeof(entry), / entries.\n"
      "              It counts each shared payload once per log that references it.\n");
  return 0;
}
