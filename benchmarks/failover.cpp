// benchmarks/failover.cpp - workload 4: ticks from the leader's crash to a
// new leader committing, over many seeds, with the default timeouts
// (election_ticks 10, heartbeat_ticks 1).
//
// Time model: one tick = every live node's tick(), then rounds until the
// cluster is quiet (message delivery is instantaneous compared with a tick,
// as on a LAN with ticks of ~100 ms). Per seed:
//   1. the cluster starts with no leader and ticks until one is elected and
//      has committed its first entry (the election itself is not measured);
//   2. 10 entries are proposed and committed, then 0..19 more ticks pass
//      (seed-dependent) so the crash lands at different points;
//   3. the leader crashes: it stops, and messages to it are dropped;
//   4. ticks are counted until some live node is leader in a later term and
//      has committed an entry of its own term (its no-op), i.e. can serve
//      writes again.
//
//   bench_failover [--seeds N (1000)] [--nodes 3,5] [--json]
#include "common.hpp"

namespace {

const char* const usage = "usage: bench_failover [--seeds N (1000)] [--nodes 3,5] [--first-seed S (1)] [--json]\n";

using node_t = raft::node<>;

struct outcome {
  std::uint64_t ticks = 0;      // crash -> new leader committed
  std::uint64_t elections = 0;  // terms started after the crash (1 = no split vote)
  std::uint64_t messages = 0;   // delivered after the crash
};

void settle(bench::cluster<node_t>& c) {
  for (int r = 0; r < 1000 && !c.idle(); ++r) c.round();
  if (!c.idle()) bench::die("cluster did not settle");
}

void tick_all(bench::cluster<node_t>& c) {
  for (std::size_t i = 0; i < c.nodes.size(); ++i)
    if (c.up[i]) c.nodes[i].tick(c.outs[i]);
  settle(c);
}

/// Index of a live leader whose term is at least `min_term` and that has
/// committed an entry of its own term, or -1.
int serving_leader(const bench::cluster<node_t>& c, raft::term_t min_term) {
  for (std::size_t i = 0; i < c.nodes.size(); ++i) {
    const auto& n = c.nodes[i];
    if (!c.up[i] || !n.is_leader() || n.term() < min_term) continue;
    const raft::index_t ci = n.commit_index();
    if (ci.value > 0 && n.log().term_at(ci) == n.term()) return static_cast<int>(i);
  }
  return -1;
}

outcome run_seed(std::uint64_t nodes, std::uint64_t seed) {
  auto cfg = bench::default_config();  // election_ticks 10, heartbeat_ticks 1
  cfg.random_seed = seed;
  bench::cluster<node_t> c(nodes, cfg);
  c.compact_every = 0;
  // 1. first election, by ticks.
  int leader = -1;
  for (int t = 0; t < 10000 && leader < 0; ++t) {
    tick_all(c);
    leader = serving_leader(c, raft::term_t{1});
  }
  if (leader < 0) bench::die("no first leader, seed " + std::to_string(seed));
  // 2. some traffic, then a seed-dependent number of ticks.
  for (int k = 0; k < 10; ++k)
    if (!c.nodes[static_cast<std::size_t>(leader)].propose(raft::bytes("x"), c.outs[static_cast<std::size_t>(leader)]).ok())
      bench::die("propose refused");
  settle(c);
  const std::uint64_t extra = raft::detail::mix64(seed) % 20;
  for (std::uint64_t t = 0; t < extra; ++t) tick_all(c);
  leader = serving_leader(c, raft::term_t{1});
  if (leader < 0) bench::die("leader lost before the crash, seed " + std::to_string(seed));
  // 3. crash.
  const raft::term_t old_term = c.nodes[static_cast<std::size_t>(leader)].term();
  c.up[static_cast<std::size_t>(leader)] = 0;
  c.outs[static_cast<std::size_t>(leader)].clear();
  const std::uint64_t delivered0 = c.delivered;
  // 4. count ticks.
  outcome o;
  for (std::uint64_t t = 1; t <= 100000; ++t) {
    tick_all(c);
    if (serving_leader(c, old_term.next()) >= 0) {
      o.ticks = t;
      raft::term_t max_term{};
      for (std::size_t i = 0; i < c.nodes.size(); ++i)
        if (c.up[i]) max_term = std::max(max_term, c.nodes[i].term());
      o.elections = max_term.value - old_term.value;
      o.messages = c.delivered - delivered0;
      return o;
    }
  }
  bench::die("no new leader after 100000 ticks, seed " + std::to_string(seed));
}

double percentile(std::vector<std::uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  // nearest-rank
  std::size_t k = static_cast<std::size_t>(q * static_cast<double>(v.size()) + 0.999999);
  if (k == 0) k = 1;
  if (k > v.size()) k = v.size();
  return static_cast<double>(v[k - 1]);
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  const std::uint64_t seeds = a.u64("--seeds", 1000);
  const std::uint64_t first = a.u64("--first-seed", 1);
  const auto node_counts = a.list("--nodes", {3, 5});
  const bool json = a.flag("--json");
  a.done(usage);
  if (seeds == 0) bench::die("--seeds must be positive");

  std::vector<bench::record> recs;
  bench::table t({"nodes", "seeds", "p50 ticks", "p99 ticks", "max ticks", "mean ticks", "split votes", "max elections",
                  "worst seed", "msgs (mean)", "wall s"});
  for (auto n : node_counts) {
    std::vector<std::uint64_t> ticks, elections;
    std::uint64_t msgs = 0, worst_seed = first, worst = 0;
    const auto t0 = bench::clock_type::now();
    for (std::uint64_t s = first; s < first + seeds; ++s) {
      const outcome o = run_seed(n, s);
      ticks.push_back(o.ticks);
      elections.push_back(o.elections);
      msgs += o.messages;
      if (o.ticks > worst) {
        worst = o.ticks;
        worst_seed = s;
      }
    }
    const double wall = bench::seconds_since(t0);
    double mean = 0;
    for (auto x : ticks) mean += static_cast<double>(x);
    mean /= static_cast<double>(ticks.size());
    const auto split = static_cast<std::uint64_t>(std::count_if(elections.begin(), elections.end(), [](auto e) { return e > 1; }));
    const auto max_el = *std::max_element(elections.begin(), elections.end());
    bench::record rec;
    rec.integer("nodes", n)
        .integer("seeds", seeds)
        .integer("first_seed", first)
        .num("p50_ticks", percentile(ticks, 0.50), 0)
        .num("p99_ticks", percentile(ticks, 0.99), 0)
        .num("max_ticks", percentile(ticks, 1.0), 0)
        .num("mean_ticks", mean, 2)
        .integer("runs_with_split_vote", split)
        .integer("max_elections", max_el)
        .integer("worst_seed", worst_seed)
        .num("messages_mean", static_cast<double>(msgs) / static_cast<double>(seeds), 1)
        .num("wall_seconds", wall, 2);
    recs.push_back(rec);
    t.add({bench::fmt_u(n), bench::fmt_u(seeds), bench::fmt("%.0f", percentile(ticks, 0.5)),
           bench::fmt("%.0f", percentile(ticks, 0.99)), bench::fmt("%.0f", percentile(ticks, 1.0)),
           bench::fmt("%.2f", mean), bench::fmt_u(split), bench::fmt_u(max_el), bench::fmt_u(worst_seed),
           bench::fmt("%.1f", static_cast<double>(msgs) / static_cast<double>(seeds)), bench::fmt("%.2f", wall)});
  }
  if (json) {
    bench::record params;
    params.integer("election_ticks", 10).integer("heartbeat_ticks", 1).integer("seeds", seeds);
    bench::print_json("failover", params, recs);
    return 0;
  }
  bench::print_machine_header("bench_failover");
  std::printf("# default timeouts: election_ticks=10 (randomised in [10, 20)), heartbeat_ticks=1\n");
  t.print();
  std::printf(
      "\nticks: from the leader's crash to a live leader of a later term committing an entry of its term.\n"
      "split votes: runs that needed more than one election. Replay a seed with --first-seed S --seeds 1.\n");
  return 0;
}
