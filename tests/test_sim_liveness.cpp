// Liveness features and reads in the simulator: PreVote, CheckQuorum and
// leader stickiness, leadership transfer, ReadIndex and lease reads (checked
// for linearizability by the cluster on every completed read), and
// back-pressure. Also a self-test of the linearizability checker.
#include <catch2/catch.hpp>

#include "sim/cluster.hpp"
#include "sim/history.hpp"
#include "sim/seeds.hpp"

using raft::index_t;
using raft::term_t;
using sim::cluster;
using sim::node_id;

namespace {

std::vector<node_id> all_but(std::size_t n, node_id except) {
  std::vector<node_id> r;
  for (node_id i = 1; i <= n; ++i)
    if (i != except) r.push_back(i);
  return r;
}

/// Transfer outcomes other than `started` that node `at` reported.
int final_outcomes(const cluster& c, node_id at) {
  int n = 0;
  for (const auto& t : c.transfers())
    if (t.at == at && t.outcome != raft::transfer_outcome::started) ++n;
  return n;
}

bool has_transfer(const cluster& c, node_id at, node_id target, raft::transfer_outcome how) {
  for (const auto& t : c.transfers())
    if (t.at == at && t.target == target && t.outcome == how) return true;
  return false;
}

}  // namespace

// ------------------------------------------------------------ the checker

TEST_CASE("the linearizability checker flags a read that misses a write completed before it began", "[history]") {
  sim::history h(7);
  // w1 commits at index 3 and its client learns it at t=10.
  const auto w1 = h.invoke_write(1, 1);
  h.complete_write(w1, 3, 10);
  // A read concurrent with w1 may miss it.
  sim::history h2(7);
  const auto w = h2.invoke_write(1, 1);
  const auto r0 = h2.invoke_read(2, 2);
  h2.complete_write(w, 3, 10);
  REQUIRE_NOTHROW(h2.complete_read(r0, 2, 2, 11));
  // A read invoked after w1 completed must see index 3 or later.
  const auto ok = h.invoke_read(2, 11);
  REQUIRE_NOTHROW(h.complete_read(ok, 2, 3, 12));
  const auto bad = h.invoke_read(3, 13);
  try {
    h.complete_read(bad, 3, 2, 14);
    FAIL("a stale read was not flagged");
  } catch (const sim::violation& v) {
    const std::string what = v.what();
    CHECK_THAT(what, Catch::Contains("Linearizability"));
    CHECK_THAT(what, Catch::Contains("read " + std::to_string(bad) + " at node 3"));
    CHECK_THAT(what, Catch::Contains("observed applied index 2 below its floor 3"));
    CHECK_THAT(what, Catch::Contains("invoked t=13, completed t=14"));
  }
}

TEST_CASE("the linearizability checker flags reads going back in time, and writes below a completed read", "[history]") {
  {
    sim::history h;
    // A read observes index 9; a read invoked after it completed observes 5.
    const auto r1 = h.invoke_read(1, 1);
    const auto r2 = h.invoke_read(2, 1);  // concurrent with r1: unconstrained
    h.complete_read(r1, 1, 9, 5);
    REQUIRE_NOTHROW(h.complete_read(r2, 2, 4, 6));
    const auto r3 = h.invoke_read(2, 7);
    REQUIRE_THROWS_AS(h.complete_read(r3, 2, 5, 8), sim::violation);
  }
  {
    sim::history h;
    const auto r = h.invoke_read(1, 1);
    h.complete_read(r, 1, 7, 2);
    const auto w = h.invoke_write(1, 3);  // begins after a read saw index 7
    REQUIRE_THROWS_AS(h.complete_write(w, 6, 4), sim::violation);
  }
  {
    sim::history h;
    // Failed reads and abandoned writes constrain nothing; double answers are caught.
    const auto w = h.invoke_write(1, 1);
    h.abandon_write(w);
    const auto r = h.invoke_read(1, 2);
    h.fail_read(r, 1, 3);
    const auto r2 = h.invoke_read(1, 4);
    REQUIRE_NOTHROW(h.complete_read(r2, 1, 0, 5));
    REQUIRE_THROWS_AS(h.complete_read(r2, 1, 0, 6), sim::violation);
    const auto r3 = h.invoke_read(1, 7);
    REQUIRE_THROWS_AS(h.complete_read(r3, 2, 0, 8), sim::violation);  // answered by another node
  }
}

// ------------------------------------------------------------ PreVote

TEST_CASE("a partitioned follower rejoins without raising the leader's term (PreVote)", "[sim][liveness]") {
  for (auto seed : sim::seeds(5)) {
    for (const bool pre_vote : {true, false}) {
      INFO("seed " << seed << " pre_vote=" << pre_vote);
      // The contrast: without PreVote (and CheckQuorum) the same scenario
      // raises the term, which shows the scenario can fail.
      cluster c({.nodes = 3, .seed = seed, .pre_vote = pre_vote, .check_quorum = pre_vote});
      const std::uint32_t e = c.opts().election_ticks;
      REQUIRE(c.one("a", 3));
      const node_id l = *c.leader();
      const term_t term = c.node(l).term();
      const node_id f = l % 3 + 1;
      c.isolate(f);
      c.run_ticks(5 * e);  // its election timer fires several times
      REQUIRE(c.one("b", 2));
      c.connect(f);
      c.run_ticks(3 * e);
      REQUIRE(c.one("c", 3));
      if (pre_vote) {
        CHECK(c.node(f).term() == term);  // its pre-votes never raised it
        CHECK(c.node(l).is_leader());
        CHECK(c.node(l).term() == term);
        CHECK(c.leaders_by_term().size() == 1);
      } else {
        CHECK(c.node(*c.leader()).term() > term);
      }
    }
  }
}

// -------------------------------------------------------- CheckQuorum

TEST_CASE("an isolated leader steps down within two election timeouts, the majority elects another, its reads fail",
          "[sim][liveness]") {
  std::uint64_t worst_down = 0, worst_new = 0, fast = 0;
  const auto seeds = sim::seeds(20);
  for (auto seed : seeds) {
    const bool lease = seed % 2 == 0;
    INFO("seed " << seed << " lease_reads=" << lease);
    cluster c({.nodes = 5, .seed = seed, .lease_reads = lease});
    const std::uint32_t e = c.opts().election_ticks;
    REQUIRE(c.one("a", 5));
    c.run_ticks(2);
    const node_id l = *c.leader();
    const auto t0 = c.ticks();
    c.isolate(l);
    // Reads that need a heartbeat round can never be confirmed now.
    std::vector<std::uint64_t> reads;
    for (int k = 0; k < 3; ++k) reads.push_back(c.read_at(l, raft::read_mode::read_index));
    c.run_ticks(2);
    reads.push_back(c.read_at(l, raft::read_mode::read_index));
    // CheckQuorum: one election timeout after the leader last heard from a
    // quorum (checked at every tick), plus the answers already in flight.
    REQUIRE(c.run_until([&] { return !c.node(l).is_leader(); }, 2 * e + 1));
    const auto down = c.ticks() - t0;
    CHECK(down >= e - 1);
    CHECK(down <= e + 2);
    for (auto id : reads) {
      CHECK(c.read(id).done);
      CHECK(c.read(id).failed);
    }
    // Followers time out in [e, 2e) after the last heartbeat; one pre-vote
    // and one vote round trip later there is a leader. A split vote costs
    // another timeout: within 3e always, within 2e (+ a few ticks of round
    // trips) for most seeds.
    const auto nl = c.wait_leader_among(all_but(5, l), 3 * e);
    REQUIRE(nl);
    const auto elected = c.ticks() - t0;
    CHECK(elected <= 3 * e);
    if (elected <= 2 * e + 3) ++fast;
    worst_down = std::max<std::uint64_t>(worst_down, down);
    worst_new = std::max<std::uint64_t>(worst_new, elected);
    c.heal();
    REQUIRE(c.one("b", 5));
  }
  CHECK(fast >= seeds.size() * 3 / 4);
  WARN("isolated leader: stepped down after at most " << worst_down << " ticks, new leader after at most " << worst_new
                                                      << " ticks (election timeout 10); " << fast << " of "
                                                      << seeds.size() << " seeds elected within 2e + 3");
}

TEST_CASE("leader stickiness: a follower whose election timer fires cannot depose a healthy leader",
          "[sim][liveness]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    REQUIRE(c.one("a", 3));
    const node_id l = *c.leader();
    const term_t term = c.node(l).term();
    c.reset_stats();
    for (int k = 0; k < 20; ++k) {
      const node_id f = all_but(3, l)[c.rand(2)];
      c.campaign(f);  // as if its timer fired
      c.run_ticks(1 + c.rand(4));
      REQUIRE(c.node(l).is_leader());
      REQUIRE(c.node(l).term() == term);
    }
    CHECK(c.stats().by_type.count("pre_vote_request") > 0);  // the timers did fire
    CHECK(c.leaders_by_term().size() == 1);
    REQUIRE(c.one("b", 3));
    CHECK(c.node(l).term() == term);

    // The contrast, without PreVote and CheckQuorum: one campaign deposes it.
    cluster d({.nodes = 3, .seed = seed, .pre_vote = false, .check_quorum = false});
    REQUIRE(d.one("a", 3));
    const node_id dl = *d.leader();
    const term_t dterm = d.node(dl).term();
    d.campaign(all_but(3, dl)[0]);
    d.run_ticks(3);
    CHECK(d.node(dl).term() > dterm);
  }
}

// ------------------------------------------------------------ transfer

TEST_CASE("leadership transfer under load: proposals are refused during it, the target takes over",
          "[sim][liveness][transfer]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    const std::uint32_t e = c.opts().election_ticks;
    REQUIRE(c.one("a", 3));
    const node_id l = *c.leader();
    const node_id t = l % 3 + 1;
    std::uint64_t k = 0;
    for (int u = 0; u < 30; ++u) {
      REQUIRE(c.propose_at(l, "load-" + std::to_string(k++)).ok());
      c.run_units_until([] { return false; }, 3);
    }
    const term_t before = c.node(l).term();
    REQUIRE(c.transfer_at(l, t) == raft::transfer_status::started);
    CHECK(has_transfer(c, l, t, raft::transfer_outcome::started));
    CHECK(c.transfer_at(l, t) == raft::transfer_status::in_progress);
    // The load goes on: the old leader refuses until it steps down.
    int transferring = 0;
    REQUIRE(c.run_units_until(
        [&] {
          if (c.node(t).is_leader()) return true;
          if (c.node(l).is_leader()) {
            const auto r = c.propose_at(l, "load-" + std::to_string(k++));
            REQUIRE(r.status == raft::propose_status::transferring);
            ++transferring;
          }
          return false;
        },
        e * c.opts().units_per_tick));
    CHECK(transferring >= 1);
    CHECK(c.node(t).term() > before);
    // The old leader reports how it ended, once.
    REQUIRE(c.run_until([&] { return final_outcomes(c, l) == 1; }, e + 2));
    for (int u = 0; u < 10; ++u) {
      REQUIRE(c.propose_at(t, "after-" + std::to_string(u)).ok());
      c.run_units_until([] { return false; }, 3);
    }
    REQUIRE(c.one("b", 3));
    CHECK(*c.leader() == t);
  }
}

TEST_CASE("leadership transfer to a target far behind brings it up to date first", "[sim][liveness][transfer]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed, .max_append_entries = 16});
    const std::uint32_t e = c.opts().election_ticks;
    REQUIRE(c.one("a", 3));
    const node_id l = *c.leader();
    const node_id t = l % 3 + 1;
    c.set_link(l, t, false);
    for (int k = 0; k < 200; ++k) {
      REQUIRE(c.propose_at(l, "bulk-" + std::to_string(k)).ok());
      if (k % 10 == 9) c.run_ticks(1);
    }
    REQUIRE(c.one("b", 2));
    REQUIRE(c.node(l).is_leader());
    const auto lag = distance(c.node(t).last_index(), c.node(l).last_index());
    REQUIRE(lag >= 200);
    c.set_link(l, t, true);
    REQUIRE(c.transfer_at(l, t) == raft::transfer_status::started);
    REQUIRE(c.run_until([&] { return c.node(t).is_leader(); }, e));
    CHECK(has_transfer(c, l, t, raft::transfer_outcome::started));
    REQUIRE(c.run_until([&] { return final_outcomes(c, l) == 1; }, e + 2));
    REQUIRE(c.one("c", 3));
    CHECK(c.n_committed("bulk-199").first == 3);
  }
}

// Regression: become_follower_() once recorded the transfer watch after
// adopting the target's term, so the old leader could never see the target
// lead in a newer term and reported every transfer that worked as aborted.
TEST_CASE("a transfer that made the target leader is reported succeeded, not aborted", "[sim][liveness][transfer]") {
  for (auto seed : sim::seeds(3)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    const std::uint32_t e = c.opts().election_ticks;
    REQUIRE(c.one("a", 3));
    const node_id l = *c.leader();
    const node_id t = l % 3 + 1;
    REQUIRE(c.transfer_at(l, t) == raft::transfer_status::started);
    REQUIRE(c.run_until([&] { return c.node(t).is_leader(); }, e));
    c.run_ticks(e + 2);
    REQUIRE(c.node(t).is_leader());
    std::string log;
    for (const auto& x : c.transfers())
      log += "node " + std::to_string(x.at) + ": " + raft::to_string(x.outcome) + " -> " + std::to_string(x.target) +
             " at t=" + std::to_string(x.time) + "; ";
    INFO("transfers: " << log);
    CHECK(has_transfer(c, l, t, raft::transfer_outcome::succeeded));
    CHECK_FALSE(has_transfer(c, l, t, raft::transfer_outcome::aborted));
  }
}

TEST_CASE("a transfer to an unreachable target aborts after an election timeout and the leader takes proposals again",
          "[sim][liveness][transfer]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed});
    const std::uint32_t e = c.opts().election_ticks;
    REQUIRE(c.one("a", 3));
    const node_id l = *c.leader();
    const node_id t = l % 3 + 1;
    c.isolate(t);
    const auto t0 = c.ticks();
    REQUIRE(c.transfer_at(l, t) == raft::transfer_status::started);
    CHECK(c.propose_at(l, "refused").status == raft::propose_status::transferring);
    REQUIRE(c.run_until([&] { return has_transfer(c, l, t, raft::transfer_outcome::aborted); }, e + 2));
    CHECK(c.ticks() - t0 >= e - 1);
    REQUIRE(c.node(l).is_leader());
    const auto r = c.propose_at(l, "accepted");
    REQUIRE(r.ok());
    REQUIRE(c.run_until([&] { return c.node(l).commit_index() >= r.index; }, e));
    CHECK_FALSE(has_transfer(c, l, t, raft::transfer_outcome::succeeded));
    CHECK(c.n_committed("refused").first == 0);
    c.heal();
    REQUIRE(c.one("b", 3));
  }
}

// --------------------------------------------------------------- reads

TEST_CASE("reads during partitions and leader changes, ReadIndex and leases, are linearizable", "[sim][liveness][reads]") {
  std::uint64_t total_ok = 0;
  for (auto seed : sim::seeds(12)) {
    const bool lease = seed % 2 == 0;
    INFO("seed " << seed << " lease_reads=" << lease);
    cluster c({.nodes = 5, .seed = seed, .lease_reads = lease});
    REQUIRE(c.one("a", 5));
    struct issued {
      std::uint64_t id;
      raft::read_mode mode;
      bool on_leader;
    };
    std::vector<issued> reads;
    std::uint64_t k = 0;
    // Clients: a write through the leader, three reads at random nodes.
    const auto clients = [&] {
      if (auto l = c.leader()) (void)c.propose_at(*l, "w-" + std::to_string(k++));
      for (int r = 0; r < 3; ++r) {
        const node_id at = 1 + c.rand(5);
        const auto mode = lease && c.rand(2) ? raft::read_mode::lease : raft::read_mode::read_index;
        const auto id = c.read_at(at, mode);
        reads.push_back({id, mode, c.node(at).is_leader()});
      }
    };
    const auto calm = [&] {
      c.heal();
      for (node_id x = 1; x <= 5; ++x)
        for (node_id y = 1; y <= 5; ++y) c.set_delay(x, y, 0);
    };
    for (int round = 0; round < 200; ++round) {
      clients();
      const auto what = c.rand(100);
      if (what < 8) {
        if (auto l = c.leader()) c.isolate(*l);  // the old leader keeps getting reads
      } else if (what < 14) {
        c.isolate(1 + c.rand(5));
      } else if (what < 30) {
        calm();
      } else if (what < 36) {
        if (auto l = c.leader()) (void)c.transfer_at(*l, 1 + c.rand(5));
      } else if (what < 39) {
        // A gray failure: the links into the leader slow down tick by tick
        // (answers to its heartbeat rounds arrive later and later, but keep
        // arriving), then its outgoing links fail. The others elect a new
        // leader while answers to the old one's rounds are on their way.
        if (auto l = c.leader()) {
          const auto step = static_cast<std::uint32_t>(4 + c.rand(5));
          for (std::uint32_t tick = 1; tick <= 40; ++tick) {
            for (node_id j = 1; j <= 5; ++j)
              if (j != *l) c.set_delay(j, *l, tick * step);
            clients();
            c.run_ticks(1);
          }
          for (node_id j = 1; j <= 5; ++j)
            if (j != *l) c.set_link_one_way(*l, j, false);
          for (int tick = 0; tick < 40; ++tick) {
            clients();
            c.run_ticks(1);
          }
          calm();
        }
      }
      c.run_units_until([] { return false; }, 1 + c.rand(30));
    }
    calm();
    REQUIRE(c.one("z", 5, 1000));
    c.run_ticks(5);
    std::uint64_t ok_index = 0, ok_lease = 0, ok_follower = 0, failed = 0;
    for (const auto& r : reads) {
      const auto& rec = c.read(r.id);
      if (!rec.done) continue;
      if (rec.failed) {
        ++failed;
        continue;
      }
      (r.mode == raft::read_mode::lease ? ok_lease : ok_index) += 1;
      if (!r.on_leader) ++ok_follower;
    }
    INFO("served: " << ok_index << " ReadIndex, " << ok_lease << " lease, " << ok_follower << " on followers; "
                    << failed << " failed; " << c.hist().writes_ok() << " writes completed");
    CHECK(ok_index >= 50);
    CHECK(ok_follower >= 30);
    if (lease) CHECK(ok_lease >= 50);
    CHECK(failed >= 1);  // the partitions did bite
    CHECK(c.hist().writes_ok() >= 50);
    total_ok += c.hist().reads_ok();
  }
  WARN("reads scenario: " << total_ok << " linearizable reads served");
}

// ------------------------------------------------------- back-pressure

TEST_CASE("back-pressure: a leader cut off from its quorum drops proposals past max_uncommitted_bytes, "
          "and takes them again once the quorum is back",
          "[sim][liveness][backpressure]") {
  for (auto seed : sim::seeds(5)) {
    INFO("seed " << seed);
    cluster c({.nodes = 3, .seed = seed, .max_uncommitted_bytes = 100});
    const std::uint32_t e = c.opts().election_ticks;
    REQUIRE(c.one("a", 3));
    c.run_ticks(2);
    const node_id l = *c.leader();
    c.isolate(l);
    int ok = 0, dropped = 0;
    for (int k = 0; k < 30; ++k) {
      const auto r = c.propose_at(l, "bp-" + std::string(7, static_cast<char>('a' + k % 26)));  // 10 bytes
      if (r.ok()) ++ok;
      else if (r.status == raft::propose_status::dropped) ++dropped;
    }
    CHECK(ok == 10);  // 100 bytes
    CHECK(dropped == 20);
    CHECK(c.node(l).status().uncommitted_bytes == 100);
    c.run_ticks(2);
    CHECK(c.propose_at(l, "bp-late-xx").status == raft::propose_status::dropped);
    c.connect(l);  // the quorum is back before CheckQuorum would step it down
    REQUIRE(c.run_until([&] { return c.node(l).status().uncommitted_bytes == 0; }, e / 2));
    REQUIRE(c.node(l).is_leader());
    const auto r = c.propose_at(l, "bp-after-x");
    REQUIRE(r.ok());
    REQUIRE(c.one("b", 3));
    CHECK(c.n_committed("bp-after-x").first == 3);
  }
}
