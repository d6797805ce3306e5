// benchmarks/multiraft.cpp - workload 5: many idle Raft groups on one thread.
//
// --groups groups (default 10,000) of --nodes replicas (default 3) live in
// this process; every group has elected node 1 (campaign, no ticks) and
// committed its no-op, and nothing is proposed: the groups are idle. Then
// --ticks ticks (default 100) are run; each tick has two timed passes:
//   tick   : tick() on every replica of every group (leaders emit heartbeats
//            into their outputs: heartbeat_ticks = 1 by default);
//   deliver: every group runs rounds until quiet (heartbeats reach the
//            followers, their responses reach the leader).
// Reported: ns for one tick of all groups (tick pass alone, and with the
// heartbeat exchange), ns per group and per replica, and memory per idle
// group (live heap bytes measured by the counting operator new, and RSS).
// All replicas of a group are in this process, so "per group" covers all of
// them; a real deployment spreads them over machines, hence "per replica".
//
//   bench_multiraft [--groups N] [--nodes R] [--ticks T] [--heartbeat-ticks H] [--json]
#include "common.hpp"

namespace {

const char* const usage =
    "usage: bench_multiraft [--groups N (10000)] [--nodes R (3)] [--ticks T (100)]\n"
    "                       [--heartbeat-ticks H (1)] [--election-ticks E (10)] [--json]\n";

using node_t = raft::node<>;
using group_t = bench::cluster<node_t>;

struct result {
  std::uint64_t groups = 0, nodes = 0, ticks = 0;
  double tick_ns = 0;     // all ticks, tick pass
  double deliver_ns = 0;  // all ticks, deliver pass
  double heap_bytes_all = 0;    // live heap: groups incl. harness buffers
  double heap_bytes_nodes = 0;  // live heap after freeing harness buffers
  double rss_bytes = 0;
  std::uint64_t messages = 0;
  std::uint64_t leaders_ok = 0;
  std::uint64_t node_sizeof = 0;
};

result run(std::uint64_t groups, std::uint64_t nodes, std::uint64_t ticks, std::uint32_t hb, std::uint32_t el) {
  auto cfg = bench::default_config();
  cfg.heartbeat_ticks = hb;
  cfg.election_ticks = el;
  const std::uint64_t rss0 = bench::rss_bytes();
  const std::int64_t heap0 = bench::g_alloc.live_bytes;
  std::vector<group_t> g;
  g.reserve(groups);
  for (std::uint64_t k = 0; k < groups; ++k) {
    cfg.random_seed = k + 1;
    g.emplace_back(nodes, cfg);
    g.back().compact_every = 0;
    g.back().elect(0);
    for (int r = 0; r < 100 && !g.back().idle(); ++r) g.back().round();
  }
  result r;
  r.groups = groups;
  r.nodes = nodes;
  r.ticks = ticks;
  r.node_sizeof = sizeof(node_t);
  std::uint64_t delivered0 = 0;
  for (auto& x : g) delivered0 += x.delivered;
  for (std::uint64_t t = 0; t < ticks; ++t) {
    const auto t0 = bench::clock_type::now();
    for (auto& x : g)
      for (std::size_t i = 0; i < x.nodes.size(); ++i) x.nodes[i].tick(x.outs[i]);
    const auto t1 = bench::clock_type::now();
    for (auto& x : g)
      for (int round = 0; round < 100 && !x.idle(); ++round) x.round();
    const auto t2 = bench::clock_type::now();
    r.tick_ns += std::chrono::duration<double, std::nano>(t1 - t0).count();
    r.deliver_ns += std::chrono::duration<double, std::nano>(t2 - t1).count();
  }
  for (auto& x : g) {
    r.messages += x.delivered;
    if (x.nodes[0].is_leader()) ++r.leaders_ok;
  }
  r.messages -= delivered0;
  r.heap_bytes_all = static_cast<double>(bench::g_alloc.live_bytes - heap0);
  r.rss_bytes = static_cast<double>(bench::rss_bytes()) - static_cast<double>(rss0);
  // Free what the harness holds (outputs, queues, counters) to see the nodes alone.
  for (auto& x : g) {
    for (auto& o : x.outs) o = node_t::output_type{};
    std::vector<node_t::message_type>().swap(x.queue);
    std::vector<node_t::message_type>().swap(x.spare);
    std::vector<std::uint64_t>().swap(x.applied);
    std::vector<std::uint64_t>().swap(x.last_applied);
    std::vector<std::uint64_t>().swap(x.sum);
    std::vector<char>().swap(x.up);
    std::vector<node_t::output_type>().swap(x.outs);
  }
  r.heap_bytes_nodes = static_cast<double>(bench::g_alloc.live_bytes - heap0) -
                       static_cast<double>(g.capacity() * sizeof(group_t));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  bench::g_track_live = true;  // set before anything is allocated, so every free is matched
  bench::args a(argc, argv);
  const std::uint64_t groups = a.u64("--groups", 10000);
  const std::uint64_t nodes = a.u64("--nodes", 3);
  const std::uint64_t ticks = a.u64("--ticks", 100);
  const auto hb = static_cast<std::uint32_t>(a.u64("--heartbeat-ticks", 1));
  const auto el = static_cast<std::uint32_t>(a.u64("--election-ticks", 10));
  const bool json = a.flag("--json");
  a.done(usage);
  if (groups == 0 || nodes == 0 || ticks == 0) bench::die("--groups, --nodes and --ticks must be positive");

  auto [r, peak] = bench::run_isolated<result>([&] { return run(groups, nodes, ticks, hb, el); });
  const double G = static_cast<double>(groups), T = static_cast<double>(ticks), R = static_cast<double>(nodes);
  const double tick_all = r.tick_ns / T, deliver_all = r.deliver_ns / T;
  if (r.leaders_ok != groups) bench::die("some group lost its leader while idle");
  bench::record rec;
  rec.integer("groups", groups)
      .integer("replicas_per_group", nodes)
      .integer("ticks", ticks)
      .integer("heartbeat_ticks", hb)
      .integer("election_ticks", el)
      .num("ns_tick_pass_all_groups", tick_all, 0)
      .num("ns_tick_and_heartbeats_all_groups", tick_all + deliver_all, 0)
      .num("ns_tick_pass_per_group", tick_all / G, 1)
      .num("ns_tick_and_heartbeats_per_group", (tick_all + deliver_all) / G, 1)
      .num("ns_tick_per_replica", tick_all / (G * R), 1)
      .num("messages_per_group_tick", static_cast<double>(r.messages) / (G * T), 2)
      .num("heap_bytes_per_group_with_buffers", r.heap_bytes_all / G, 0)
      .num("heap_bytes_per_group_nodes_only", r.heap_bytes_nodes / G, 0)
      .num("heap_bytes_per_replica_nodes_only", r.heap_bytes_nodes / (G * R), 0)
      .integer("sizeof_node", r.node_sizeof)
      .num("rss_bytes_per_group", r.rss_bytes / G, 0)
      .num("peak_rss_mb", peak, 1);
  if (json) {
    bench::record params;
    params.integer("groups", groups).integer("nodes", nodes).integer("ticks", ticks);
    bench::print_json("multiraft", params, {rec});
    return 0;
  }
  bench::print_machine_header("bench_multiraft");
  std::printf("# %" PRIu64 " idle groups x %" PRIu64 " replicas, one thread, %" PRIu64
              " ticks, heartbeat_ticks=%u election_ticks=%u\n",
              groups, nodes, ticks, hb, el);
  bench::table t({"measure", "value"});
  t.add({"tick all groups: tick() pass (us)", bench::fmt("%.1f", tick_all / 1e3)});
  t.add({"tick all groups: tick() + heartbeat exchange (us)", bench::fmt("%.1f", (tick_all + deliver_all) / 1e3)});
  t.add({"  per group: tick() pass (ns)", bench::fmt("%.1f", tick_all / G)});
  t.add({"  per group: tick() + heartbeat exchange (ns)", bench::fmt("%.1f", (tick_all + deliver_all) / G)});
  t.add({"  per replica: tick() (ns)", bench::fmt("%.1f", tick_all / (G * R))});
  t.add({"messages per group per tick", bench::fmt("%.2f", static_cast<double>(r.messages) / (G * T))});
  t.add({"heap bytes per idle group (nodes only)", bench::fmt("%.0f", r.heap_bytes_nodes / G)});
  t.add({"heap bytes per idle replica (nodes only)", bench::fmt("%.0f", r.heap_bytes_nodes / (G * R))});
  t.add({"heap bytes per idle group (with harness output buffers)", bench::fmt("%.0f", r.heap_bytes_all / G)});
  t.add({"RSS bytes per idle group (with harness)", bench::fmt("%.0f", r.rss_bytes / G)});
  t.add({"sizeof(raft::node<>)", bench::fmt_u(r.node_sizeof)});
  t.print();
  return 0;
}
