// tests/test_durability.cpp - asynchronous durability (thesis §10.2.1): the
// node names each Log write, the caller reports it durable with persisted(),
// and no acknowledgement or vote leaves before the write it promises.
//
// A Log that models a disk: memory_log without durable_on_write, so the node
// waits for persisted() reports.
#include <catch2/catch.hpp>

#include <raft/raft.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using raft::index_t;
using raft::term_t;
using nid = std::uint64_t;

struct disk_log : raft::memory_log<> {
  static constexpr bool durable_on_write = false;
};
using AN = raft::node<raft::default_transport, disk_log>;
using msg = AN::message_type;
using out_t = AN::output_type;
using E = AN::entry_type;
using areq = raft::append_request<raft::bytes>;
using aresp = raft::append_response;

static_assert(!AN::log_durable_on_write);
static_assert(raft::node<>::log_durable_on_write);

raft::config<nid> cfg(nid id, std::vector<nid> voters) {
  return raft::config<nid>{.id = id, .voters = std::move(voters), .election_ticks = 10, .heartbeat_ticks = 1,
                           .pre_vote = false, .check_quorum = false};
}

E ent(std::uint64_t index, std::uint64_t term, const char* data = "x") {
  return E{term_t{term}, index_t{index}, raft::entry_kind::command, raft::bytes(data)};
}

msg append(nid from, nid to, std::uint64_t term, std::uint64_t prev, std::uint64_t prev_term, std::uint64_t commit,
           std::vector<E> es) {
  return msg{from, to, term_t{term}, areq{index_t{prev}, term_t{prev_term}, index_t{commit}, std::move(es)}};
}

template <class Body>
std::vector<Body> bodies(const out_t& out) {
  std::vector<Body> r;
  for (const auto& m : out.messages)
    if (const auto* b = std::get_if<Body>(&m.body)) r.push_back(*b);
  return r;
}

/// A 3-node leader (id 1) in term 1 whose no-op (index 1) is durable and
/// acknowledged by node 2.
AN make_leader(out_t& out) {
  AN l(cfg(1, {1, 2, 3}));
  l.campaign(out);
  REQUIRE(l.persisted(*out.persist, out) == raft::persist_status::ok);
  out.clear();
  REQUIRE(l.step(msg{2, 1, term_t{1}, raft::vote_response{true}}, out) == raft::step_status::ok);
  REQUIRE(l.is_leader());
  REQUIRE(l.persisted(*out.persist, out) == raft::persist_status::ok);
  REQUIRE(l.step(msg{2, 1, term_t{1}, aresp{true, index_t{1}, {}, {}}}, out) == raft::step_status::ok);
  REQUIRE(l.commit_index() == index_t{1});
  out.clear();
  return l;
}

}  // namespace

TEST_CASE("A follower's append acknowledgement leaves only once the entries are reported durable",
          "[durability][async]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  REQUIRE(f.step(append(1, 2, 1, 0, 0, 0, {ent(1, 1), ent(2, 1)}), out) == raft::step_status::ok);
  REQUIRE(out.persist);
  CHECK(out.persist->last_index == index_t{2});
  CHECK(out.persist->last_term == term_t{1});
  CHECK(bodies<aresp>(out).empty());  // held: nothing promised before the write is durable
  const raft::log_write w = *out.persist;
  out.clear();

  // A heartbeat while the write is in flight: its acknowledgement waits too.
  REQUIRE(f.step(append(1, 2, 1, 2, 1, 0, {}), out) == raft::step_status::ok);
  CHECK(bodies<aresp>(out).empty());
  CHECK_FALSE(out.persist);  // a heartbeat writes nothing
  out.clear();

  REQUIRE(f.persisted(w, out) == raft::persist_status::ok);
  const auto acks = bodies<aresp>(out);
  REQUIRE(acks.size() == 1);  // the two held acknowledgements to one leader became one
  CHECK(acks[0].success);
  CHECK(acks[0].index == index_t{2});
  CHECK(f.durable_index() == index_t{2});
  out.clear();

  // Once everything is durable, acknowledgements leave at once.
  REQUIRE(f.step(append(1, 2, 1, 2, 1, 0, {}), out) == raft::step_status::ok);
  CHECK(bodies<aresp>(out).size() == 1);
}

TEST_CASE("A refusal promises nothing and leaves at once, even with writes in flight", "[durability][async]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  REQUIRE(f.step(append(1, 2, 1, 0, 0, 0, {ent(1, 1)}), out) == raft::step_status::ok);
  out.clear();
  REQUIRE(f.step(append(1, 2, 1, 5, 1, 0, {ent(6, 1)}), out) == raft::step_status::ok);  // log too short
  const auto r = bodies<aresp>(out);
  REQUIRE(r.size() == 1);
  CHECK_FALSE(r[0].success);
}

TEST_CASE("A vote grant leaves only once the vote is durable; a refusal at once", "[durability][async][election]") {
  AN v(cfg(2, {1, 2, 3}));
  out_t out;
  REQUIRE(v.step(msg{1, 2, term_t{1}, raft::vote_request{index_t{0}, term_t{0}}}, out) == raft::step_status::ok);
  REQUIRE(out.persist);
  CHECK(v.voted_for() == std::optional<nid>(1));
  CHECK(bodies<raft::vote_response>(out).empty());
  const auto w = *out.persist;
  out.clear();
  REQUIRE(v.step(msg{3, 2, term_t{1}, raft::vote_request{index_t{0}, term_t{0}}}, out) == raft::step_status::ok);
  const auto no = bodies<raft::vote_response>(out);
  REQUIRE(no.size() == 1);
  CHECK_FALSE(no[0].granted);  // already voted for 1 in term 1
  out.clear();
  REQUIRE(v.persisted(w, out) == raft::persist_status::ok);
  const auto yes = bodies<raft::vote_response>(out);
  REQUIRE(yes.size() == 1);
  CHECK(yes[0].granted);
  CHECK(out.messages[0].to == 1);
}

TEST_CASE("Held promises of an older term are dropped when the term changes", "[durability][async]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  REQUIRE(f.step(append(1, 2, 1, 0, 0, 0, {ent(1, 1)}), out) == raft::step_status::ok);
  const auto w1 = *out.persist;
  out.clear();
  // A newer leader overwrites the entry before the first write is durable.
  REQUIRE(f.step(append(3, 2, 2, 0, 0, 0, {ent(1, 2)}), out) == raft::step_status::ok);
  const auto w2 = *out.persist;
  out.clear();
  REQUIRE(f.persisted(w1, out) == raft::persist_status::ok);
  CHECK(out.messages.empty());  // the term-1 acknowledgement would now be a lie: never sent
  CHECK(f.durable_index() == index_t{0});  // the entry w1 wrote was truncated and replaced
  out.clear();
  REQUIRE(f.persisted(w2, out) == raft::persist_status::ok);
  const auto acks = bodies<aresp>(out);
  REQUIRE(acks.size() == 1);
  CHECK(out.messages[0].term == term_t{2});
  CHECK(out.messages[0].to == 3);
  CHECK(f.durable_index() == index_t{1});
}

TEST_CASE("A report for entries truncated and replaced since counts only for the prefix still shared",
          "[durability][async]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  REQUIRE(f.step(append(1, 2, 1, 0, 0, 1, {ent(1, 1), ent(2, 1), ent(3, 1)}), out) == raft::step_status::ok);
  const auto w1 = *out.persist;  // entries 1-3 of term 1 (1 committed)
  out.clear();
  // Leader of term 2 keeps 1-2 and replaces 3.
  REQUIRE(f.step(append(3, 2, 2, 2, 1, 1, {ent(3, 2), ent(4, 2)}), out) == raft::step_status::ok);
  const auto w2 = *out.persist;
  CHECK(w2.seq == w1.seq + 1);
  out.clear();
  REQUIRE(f.persisted(w1, out) == raft::persist_status::ok);
  CHECK(f.durable_index() == index_t{2});  // not 3: (3, term 1) is gone
  REQUIRE(f.persisted(w2, out) == raft::persist_status::ok);
  CHECK(f.durable_index() == index_t{4});
  // Reports of writes already known durable change nothing.
  CHECK(f.persisted(w1, out) == raft::persist_status::stale);
  CHECK(f.durable_index() == index_t{4});
}

TEST_CASE("persisted() refuses a write the node never issued", "[durability][async][bad-input]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  CHECK(f.persisted(raft::log_write{1, index_t{1}, term_t{1}}, out) == raft::persist_status::unknown);
  CHECK(f.persisted(raft::log_write{0, {}, {}}, out) == raft::persist_status::unknown);
  REQUIRE(f.step(append(1, 2, 1, 0, 0, 0, {ent(1, 1)}), out) == raft::step_status::ok);
  auto w = *out.persist;
  out.clear();
  auto forged = w;
  forged.last_index = index_t{7};
  CHECK(f.persisted(forged, out) == raft::persist_status::unknown);
  forged = w;
  forged.last_term = term_t{9};
  CHECK(f.persisted(forged, out) == raft::persist_status::unknown);
  forged = w;
  forged.seq += 1;
  CHECK(f.persisted(forged, out) == raft::persist_status::unknown);
  CHECK(out.messages.empty());
  CHECK(f.durable_index() == index_t{0});
  CHECK(f.persisted(w, out) == raft::persist_status::ok);
  CHECK(f.durable_index() == index_t{1});
}

TEST_CASE("The leader replicates before its own write is durable and counts itself only once it is",
          "[durability][async][replication]") {
  out_t out;
  AN l = make_leader(out);
  REQUIRE(l.propose(raft::bytes("a"), out).ok());
  REQUIRE(out.persist);
  const auto w = *out.persist;
  // Sent at once, before the leader's own write is durable (to node 2; node 3
  // has not answered its probe yet, so it waits for the next heartbeat).
  const auto sent = bodies<areq>(out);
  REQUIRE(sent.size() == 1);
  CHECK(out.messages[0].to == 2);
  CHECK(sent[0].entries.size() == 1);
  out.clear();
  // One follower acknowledges: with the leader's copy not durable, that is 1 of 3.
  REQUIRE(l.step(msg{2, 1, term_t{1}, aresp{true, index_t{2}, {}, {}}}, out) == raft::step_status::ok);
  CHECK(l.commit_index() == index_t{1});
  CHECK(out.committed.empty());
  // The leader's write becomes durable: 2 of 3, committed.
  REQUIRE(l.persisted(w, out) == raft::persist_status::ok);
  CHECK(l.commit_index() == index_t{2});
  REQUIRE(out.committed.size() == 1);
  CHECK(out.committed[0].data.str() == "a");
}

TEST_CASE("A majority of followers commits an entry the leader has not made durable yet (thesis §10.2.1)",
          "[durability][async][replication]") {
  out_t out;
  AN l = make_leader(out);
  REQUIRE(l.propose(raft::bytes("b"), out).ok());
  out.clear();
  REQUIRE(l.step(msg{2, 1, term_t{1}, aresp{true, index_t{2}, {}, {}}}, out) == raft::step_status::ok);
  REQUIRE(l.step(msg{3, 1, term_t{1}, aresp{true, index_t{2}, {}, {}}}, out) == raft::step_status::ok);
  CHECK(l.commit_index() == index_t{2});
  CHECK(l.durable_index() == index_t{1});
}

TEST_CASE("A single node commits only what it reported durable", "[durability][async]") {
  AN n(cfg(1, {1}));
  out_t out;
  n.campaign(out);
  CHECK_FALSE(n.is_leader());  // its own vote is not durable yet
  REQUIRE(n.persisted(*out.persist, out) == raft::persist_status::ok);
  REQUIRE(n.is_leader());
  CHECK(n.commit_index() == index_t{0});  // the no-op is not durable yet
  REQUIRE(n.persisted(*out.persist, out) == raft::persist_status::ok);
  CHECK(n.commit_index() == index_t{1});
  out.clear();
  REQUIRE(n.propose(raft::bytes("c"), out).ok());
  CHECK(out.committed.empty());
  REQUIRE(n.persisted(*out.persist, out) == raft::persist_status::ok);
  CHECK(n.commit_index() == index_t{2});
  CHECK(out.committed.size() == 1);
}

TEST_CASE("A candidate counts its own vote only once it is durable", "[durability][async][election]") {
  AN c(cfg(1, {1, 2, 3}));
  out_t out;
  c.campaign(out);
  const auto w = *out.persist;
  CHECK(bodies<raft::vote_request>(out).size() == 2);  // requests may leave at once
  out.clear();
  REQUIRE(c.step(msg{2, 1, term_t{1}, raft::vote_response{true}}, out) == raft::step_status::ok);
  CHECK(c.role() == raft::role::candidate);  // 1 durable grant of 3
  REQUIRE(c.persisted(w, out) == raft::persist_status::ok);
  CHECK(c.is_leader());
}

TEST_CASE("Several writes in flight are reported in one batch: the newest covers the older ones",
          "[durability][async]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  std::vector<raft::log_write> ws;
  for (std::uint64_t i = 1; i <= 4; ++i) {
    REQUIRE(f.step(append(1, 2, 1, i - 1, i == 1 ? 0 : 1, 0, {ent(i, 1)}), out) == raft::step_status::ok);
    ws.push_back(*out.persist);
  }
  CHECK(bodies<aresp>(out).empty());
  for (std::size_t k = 1; k < ws.size(); ++k) CHECK(ws[k].seq == ws[k - 1].seq + 1);
  out.clear();
  REQUIRE(f.persisted(ws.back(), out) == raft::persist_status::ok);
  const auto acks = bodies<aresp>(out);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].index == index_t{4});
  for (std::size_t k = 0; k + 1 < ws.size(); ++k) CHECK(f.persisted(ws[k], out) == raft::persist_status::stale);
}

TEST_CASE("An installed snapshot is acknowledged only once it is durable", "[durability][async][snapshot]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  REQUIRE(f.step(msg{1, 2, term_t{1}, raft::install_snapshot{index_t{5}, term_t{1}, 4, 0, true, raft::bytes("snap")}},
                 out) == raft::step_status::ok);
  REQUIRE(out.snapshot);
  REQUIRE(out.persist);
  CHECK(bodies<raft::snapshot_response>(out).empty());
  const auto w = *out.persist;
  out.clear();
  REQUIRE(f.persisted(w, out) == raft::persist_status::ok);
  const auto r = bodies<raft::snapshot_response>(out);
  REQUIRE(r.size() == 1);
  CHECK(r[0].installed);
  CHECK(f.durable_index() == index_t{5});
}

TEST_CASE("A snapshot that replaces the log racing a write in flight: the old write proves only the committed prefix",
          "[durability][async][snapshot]") {
  AN f(cfg(2, {1, 2, 3}));
  out_t out;
  REQUIRE(f.step(append(1, 2, 1, 0, 0, 1, {ent(1, 1), ent(2, 1)}), out) == raft::step_status::ok);
  const auto w1 = *out.persist;
  out.clear();
  // Leader of term 2 sends a snapshot at 4 (term 2): entry 2 of term 1 conflicts.
  REQUIRE(f.step(msg{3, 2, term_t{2}, raft::install_snapshot{index_t{4}, term_t{2}, 1, 0, true, raft::bytes("s")}},
                 out) == raft::step_status::ok);
  const auto w2 = *out.persist;
  out.clear();
  REQUIRE(f.persisted(w1, out) == raft::persist_status::ok);
  CHECK(f.durable_index() == index_t{1});  // only the committed entry is shared with the new log
  CHECK(out.messages.empty());             // the term-1 acknowledgement is void
  REQUIRE(f.persisted(w2, out) == raft::persist_status::ok);
  CHECK(f.durable_index() == index_t{4});
}

TEST_CASE("A Log whose entries are newer than its hard state is refused with a message saying what to fix",
          "[durability][restart][bad-input]") {
  raft::memory_log<> lg;
  lg.append(E{term_t{3}, index_t{1}, raft::entry_kind::command, raft::bytes("x")});
  lg.save_hard_state({term_t{2}, std::nullopt});
  try {
    raft::node<> n(cfg(1, {1, 2, 3}), lg);
    FAIL("a Log breaking the hard-state rule was accepted");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("term 3") != std::string::npos);
    CHECK(what.find("hard state") != std::string::npos);
    CHECK(what.find("before or together with") != std::string::npos);
  }
}

TEST_CASE("With a durable-on-write Log (memory_log) nothing waits: synchronous use needs no persisted() call",
          "[durability]") {
  raft::node<> f(cfg(2, {1, 2, 3}));
  raft::node<>::output_type out;
  REQUIRE(f.step(raft::node<>::message_type{1, 2, term_t{1}, areq{index_t{0}, term_t{0}, index_t{0}, {ent(1, 1)}}},
                 out) == raft::step_status::ok);
  REQUIRE(out.persist);  // the write is still named (e.g. for a caller that mirrors the Log)
  CHECK(f.durable_index() == index_t{1});
  REQUIRE(out.messages.size() == 1);
  CHECK(std::get<aresp>(out.messages[0].body).success);
  CHECK(f.persisted(*out.persist, out) == raft::persist_status::stale);
}
