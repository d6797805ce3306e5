// Random, often hostile, messages thrown at single nodes: whatever arrives,
// the node never throws, never crashes, never moves its term or commit index
// backwards, and hands out a gapless sequence of committed entries.
#include <catch2/catch.hpp>

#include <raft/raft.hpp>

#include "sim/seeds.hpp"

using raft::index_t;
using raft::term_t;
using node = raft::node<>;
using msg = node::message_type;

namespace {
struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
};

msg random_message(rng& r, const node& n) {
  msg m;
  m.from = 1 + r.below(4);  // 4 is not a member
  m.to = r.below(8) == 0 ? 9 : n.id();
  const std::uint64_t t = n.term().value;
  m.term = term_t{r.below(10) == 0 ? r.next() : t + r.below(3) - (t > 0 && r.below(2) ? 1 : 0)};
  auto idx = [&] { return index_t{r.below(20) == 0 ? r.next() : r.below(n.last_index().value + 5)}; };
  auto trm = [&] { return term_t{r.below(m.term.value + 2)}; };
  switch (r.below(12)) {
    case 0: m.body = raft::vote_request{idx(), trm(), r.below(4) == 0}; break;
    case 6: m.body = raft::pre_vote_request{idx(), trm()}; break;
    case 7: m.body = raft::pre_vote_response{r.below(2) == 0}; break;
    case 8: m.body = raft::timeout_now{}; break;
    case 9: m.body = raft::read_index_request{r.below(4)}; break;
    case 10: m.body = raft::read_index_response{r.below(4), idx(), r.below(2) == 0}; break;
    case 11: {
      raft::forward_proposal<raft::bytes> f;
      for (auto k = r.below(4); k > 0; --k) f.commands.push_back(raft::bytes("f"));
      m.body = std::move(f);
      break;
    }
    case 1: m.body = raft::vote_response{r.below(2) == 0}; break;
    case 2: {
      raft::append_request<raft::bytes> a{idx(), trm(), idx(), {}};
      a.round = r.below(5);
      const auto n_ent = r.below(5);
      term_t et = a.prev_term;
      for (std::uint64_t k = 0; k < n_ent; ++k) {
        if (r.below(3) == 0) et = term_t{et.value + r.below(2)};
        a.entries.push_back({r.below(10) == 0 ? trm() : et, r.below(10) == 0 ? idx() : a.prev_index + (k + 1),
                             raft::entry_kind::command, raft::bytes("x")});
      }
      m.body = std::move(a);
      break;
    }
    case 3: m.body = raft::append_response{r.below(2) == 0, idx(), idx(), trm(), r.below(4) == 0 ? r.next() : r.below(5)}; break;
    case 4: {
      const std::uint64_t total = r.below(30);
      const std::uint64_t off = r.below(4) == 0 ? r.below(40) : 0;
      std::string data(static_cast<std::size_t>(r.below(12)), 's');
      m.body = raft::install_snapshot{idx(), trm(), total, off, r.below(2) == 0, raft::bytes(data)};
      break;
    }
    case 5:
      m.body = raft::snapshot_response{idx(), r.below(40), r.below(2) == 0,
                                       static_cast<raft::snapshot_refusal>(r.below(raft::snapshot_refusal_count))};
      break;
  }
  return m;
}
}  // namespace

TEST_CASE("a node fed random and hostile messages never breaks its own invariants", "[fuzz][hostile]") {
  std::uint64_t applied_total = 0, leaders = 0;
  for (auto seed : sim::seeds(40)) {
    INFO("seed " << seed << " (replay with RAFT_SIM_SEED=" << seed << ")");
    rng r{seed};
    node n(raft::config<std::uint64_t>{.id = 1 + seed % 3,
                                       .voters = {1, 2, 3},
                                       .snapshot_chunk_bytes = 8,
                                       .max_snapshot_bytes = 32,
                                       .max_snapshot_chunk_bytes = 16,
                                       .lease_reads = seed % 2 == 0,
                                       .random_seed = seed});
    node::output_type out;
    term_t last_term = n.term();
    index_t last_commit = n.commit_index();
    std::uint64_t next_apply = 1;
    for (int step = 0; step < 3000; ++step) {
      const auto what = r.below(20);
      if (what == 0) {
        REQUIRE_NOTHROW(n.tick(out));
      } else if (what == 1) {
        REQUIRE_NOTHROW(n.propose(raft::bytes("p"), out));
      } else if (what == 2 && n.applied_index() > n.log().snapshot_index()) {
        REQUIRE_NOTHROW(n.compact(n.applied_index(), raft::bytes("snap"), out));
      } else if (what == 3 && !n.is_leader()) {
        // An honest election now and then, so that leader paths get hostile input too.
        n.campaign(out);
        const std::uint64_t peer = n.id() % 3 + 1;
        if (n.role() == raft::role::pre_candidate)
          REQUIRE_NOTHROW(n.step(msg{peer, n.id(), n.term().next(), raft::pre_vote_response{true}}, out));
        REQUIRE_NOTHROW(n.step(msg{peer, n.id(), n.term(), raft::vote_response{true}}, out));
      } else if (what == 4) {
        // The other inputs of the liveness and read features, with any argument.
        switch (r.below(5)) {
          case 0: REQUIRE_NOTHROW(n.read_index(r.next(), out, r.below(2) ? raft::read_mode::lease : raft::read_mode::read_index)); break;
          case 1: REQUIRE_NOTHROW(n.transfer_leadership(r.below(5), out)); break;
          case 2: REQUIRE_NOTHROW(n.report_unreachable(r.below(5), out)); break;
          case 3: REQUIRE_NOTHROW(n.report_snapshot(r.below(5), r.below(2) == 0, out)); break;
          default: {
            const auto st = n.status();
            CHECK(st.term == n.term());
            CHECK(st.commit == n.commit_index());
          }
        }
      } else {
        REQUIRE_NOTHROW(n.step(random_message(r, n), out));
      }
      CHECK(n.term() >= last_term);
      CHECK(n.commit_index() >= last_commit);
      CHECK(n.commit_index() <= n.last_index());
      CHECK(n.log().hard_state().term == n.term());
      if (out.snapshot) {
        CHECK(out.snapshot->index.value + 1 >= next_apply);
        next_apply = out.snapshot->index.value + 1;
      }
      for (const auto& e : out.committed) {
        REQUIRE(e.index.value == next_apply);
        ++next_apply;
      }
      last_term = n.term();
      last_commit = n.commit_index();
      leaders += n.is_leader() ? 1 : 0;
      out.clear();
    }
    applied_total += next_apply - 1;
  }
  // The messages are plausible enough to drive the node through its paths.
  CHECK(applied_total > 0);
  CHECK(leaders > 0);
}
