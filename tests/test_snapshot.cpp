// InstallSnapshot at the node level: the follower's rules (paper §7, thesis
// §5.3) and its answers to bad or hostile chunks.
#include <catch2/catch.hpp>

#include <raft/raft.hpp>

using raft::index_t;
using raft::term_t;
using node = raft::node<>;
using msg = node::message_type;

namespace {
raft::config<std::uint64_t> cfg(std::uint64_t id) {
  return {.id = id,
          .voters = {1, 2, 3},
          .snapshot_chunk_bytes = 4,
          .max_snapshot_bytes = 64,
          .max_snapshot_chunk_bytes = 8,
          .pre_vote = false,
          .check_quorum = false};
}

msg chunk(term_t term, index_t idx, term_t idx_term, std::uint64_t total, std::uint64_t off, std::string data,
          bool done) {
  return msg{1, 2, term, raft::install_snapshot{idx, idx_term, total, off, done, raft::bytes(data)}};
}

msg append(term_t term, index_t prev, term_t prev_term, index_t commit, std::vector<std::pair<std::uint64_t, std::uint64_t>> ents) {
  raft::append_request<raft::bytes> a{prev, prev_term, commit, {}};
  for (auto [i, t] : ents) a.entries.push_back({term_t{t}, index_t{i}, raft::entry_kind::command, raft::bytes(std::string("e") += std::to_string(i))});
  return msg{1, 2, term, std::move(a)};
}

const raft::snapshot_response& last_snapshot_response(const node::output_type& out) {
  REQUIRE(!out.messages.empty());
  const auto* r = std::get_if<raft::snapshot_response>(&out.messages.back().body);
  REQUIRE(r != nullptr);
  return *r;
}

/// A follower holding entries 1..n of term 1, with commit `commit`.
node follower(std::uint64_t n, std::uint64_t commit) {
  node f(cfg(2));
  node::output_type out;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ents;
  for (std::uint64_t i = 1; i <= n; ++i) ents.push_back({i, 1});
  REQUIRE(f.step(append(term_t{1}, index_t{}, term_t{}, index_t{commit}, ents), out) == raft::step_status::ok);
  return f;
}
}  // namespace

TEST_CASE("a snapshot sent in chunks is assembled and handed to the application once complete",
          "[snapshot][follower]") {
  node f = follower(2, 2);
  node::output_type out;
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 10, 0, "abcd", false), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).offset == 4);
  CHECK_FALSE(last_snapshot_response(out).installed);
  CHECK_FALSE(out.snapshot);
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 10, 4, "efgh", false), out) == raft::step_status::ok);
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 10, 8, "ij", true), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).installed);
  REQUIRE(out.snapshot);
  CHECK(out.snapshot->index == index_t{8});
  CHECK(out.snapshot->data.view() == "abcdefghij");
  CHECK(out.persist);
  CHECK(f.commit_index() == index_t{8});
  CHECK(f.applied_index() == index_t{8});
  CHECK(f.log().snapshot_index() == index_t{8});
  CHECK(f.last_index() == index_t{8});
  // Replication continues from the entry after it.
  out.clear();
  CHECK(f.step(append(term_t{1}, index_t{8}, term_t{1}, index_t{9}, {{9, 1}}), out) == raft::step_status::ok);
  REQUIRE(out.committed.size() == 1);
  CHECK(out.committed[0].index == index_t{9});
}

TEST_CASE("a follower whose log holds the snapshot's last entry keeps the entries after it", "[snapshot][follower]") {
  node f = follower(10, 2);
  node::output_type out;
  CHECK(f.step(chunk(term_t{1}, index_t{5}, term_t{1}, 3, 0, "abc", true), out) == raft::step_status::ok);
  REQUIRE(out.snapshot);
  CHECK(f.log().snapshot_index() == index_t{5});
  CHECK(f.last_index() == index_t{10});
  CHECK(f.log().entry_at(index_t{6}).data.view() == "e6");
}

TEST_CASE("a follower whose log conflicts with the snapshot discards its log", "[snapshot][follower]") {
  node f = follower(10, 2);
  node::output_type out;
  // The snapshot ends at index 5 with term 2; the follower has term 1 there.
  CHECK(f.step(chunk(term_t{2}, index_t{5}, term_t{2}, 3, 0, "abc", true), out) == raft::step_status::ok);
  REQUIRE(out.snapshot);
  CHECK(f.log().snapshot_index() == index_t{5});
  CHECK(f.log().snapshot_term() == term_t{2});
  CHECK(f.last_index() == index_t{5});
  CHECK(f.log().entry_count() == 0);
}

TEST_CASE("a snapshot older than the follower's commit index is acknowledged and ignored", "[snapshot][follower]") {
  node f = follower(10, 6);
  node::output_type out;
  CHECK(f.step(chunk(term_t{1}, index_t{4}, term_t{1}, 3, 0, "abc", false), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).installed);
  CHECK_FALSE(out.snapshot);
  CHECK(f.log().snapshot_index() == index_t{});
  CHECK(f.last_index() == index_t{10});
  CHECK(f.commit_index() == index_t{6});
}

TEST_CASE("a snapshot whose metadata contradicts committed entries is refused and changes nothing",
          "[snapshot][follower][hostile]") {
  node f = follower(10, 6);
  node::output_type out;
  // Index 4 is committed with term 1; a snapshot claiming term 2 there lies.
  CHECK(f.step(chunk(term_t{2}, index_t{4}, term_t{2}, 3, 0, "abc", true), out) == raft::step_status::malformed);
  CHECK(last_snapshot_response(out).refusal == raft::snapshot_refusal::inconsistent);
  CHECK_FALSE(out.snapshot);
  CHECK(f.last_index() == index_t{10});
  CHECK(f.commit_index() == index_t{6});
  CHECK(f.log().term_at(index_t{4}) == term_t{1});
}

TEST_CASE("a chunk at an unexpected offset is refused with the offset the follower expects", "[snapshot][hostile]") {
  node f = follower(2, 2);
  node::output_type out;
  // A transfer must start at 0.
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 12, 4, "abcd", false), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).refusal == raft::snapshot_refusal::bad_offset);
  CHECK(last_snapshot_response(out).offset == 0);
  // A gap after the first chunk.
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 12, 0, "abcd", false), out) == raft::step_status::ok);
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 12, 8, "ijkl", true), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).refusal == raft::snapshot_refusal::bad_offset);
  CHECK(last_snapshot_response(out).offset == 4);
  CHECK_FALSE(out.snapshot);
  // A duplicate of the first chunk is refused the same way; the transfer survives.
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 12, 0, "abcd", false), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).offset == 4);
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 12, 4, "efgh", false), out) == raft::step_status::ok);
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 12, 8, "ijkl", true), out) == raft::step_status::ok);
  REQUIRE(out.snapshot);
  CHECK(out.snapshot->data.view() == "abcdefghijkl");
}

TEST_CASE("chunks or snapshots beyond the configured limits are refused as too large", "[snapshot][hostile]") {
  node f = follower(2, 2);
  node::output_type out;
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 100, 0, "abcd", false), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).refusal == raft::snapshot_refusal::too_large);
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 20, 0, "0123456789", false), out) == raft::step_status::ok);
  CHECK(last_snapshot_response(out).refusal == raft::snapshot_refusal::too_large);
  CHECK_FALSE(out.snapshot);
  CHECK(f.log().snapshot_index() == index_t{});
}

TEST_CASE("chunks that contradict their own sizes are refused as inconsistent", "[snapshot][hostile]") {
  node f = follower(2, 2);
  node::output_type out;
  // Data runs past the announced total.
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 3, 0, "abcd", true), out) == raft::step_status::malformed);
  CHECK(last_snapshot_response(out).refusal == raft::snapshot_refusal::inconsistent);
  // "done" before the total is reached.
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{1}, 8, 0, "abcd", true), out) == raft::step_status::malformed);
  // A term of 0 or an index of 0, or a last term above the message term.
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{}, 4, 0, "abcd", true), out) == raft::step_status::malformed);
  CHECK(f.step(chunk(term_t{1}, index_t{}, term_t{1}, 4, 0, "abcd", true), out) == raft::step_status::malformed);
  CHECK(f.step(chunk(term_t{1}, index_t{8}, term_t{5}, 4, 0, "abcd", true), out) == raft::step_status::malformed);
  CHECK_FALSE(out.snapshot);
  CHECK(f.log().snapshot_index() == index_t{});
  CHECK(f.term() == term_t{1});
}

TEST_CASE("a snapshot chunk from a stale term is answered with the current term and ignored", "[snapshot][hostile]") {
  node f = follower(2, 2);
  node::output_type out;
  REQUIRE(f.step(append(term_t{3}, index_t{2}, term_t{1}, index_t{2}, {}), out) == raft::step_status::ok);
  out.clear();
  CHECK(f.step(chunk(term_t{2}, index_t{8}, term_t{2}, 4, 0, "abcd", true), out) == raft::step_status::stale_term);
  REQUIRE(out.messages.size() == 1);
  CHECK(out.messages[0].term == term_t{3});
  CHECK_FALSE(out.snapshot);
  CHECK(f.log().snapshot_index() == index_t{});
}

TEST_CASE("a leader whose follower needs compacted entries sends the snapshot in bounded chunks", "[snapshot][leader]") {
  node l(cfg(1));
  node::output_type out;
  l.campaign(out);
  out.clear();
  REQUIRE(l.step(msg{2, 1, term_t{1}, raft::vote_response{true}}, out) == raft::step_status::ok);
  REQUIRE(l.is_leader());
  // Followers 2 and 3 acknowledge the no-op at index 1; then 5 commands commit via 2.
  out.clear();
  REQUIRE(l.step(msg{2, 1, term_t{1}, raft::append_response{true, index_t{1}, {}, {}}}, out) == raft::step_status::ok);
  for (int k = 0; k < 5; ++k) REQUIRE(l.propose(raft::bytes("c"), out).ok());
  REQUIRE(l.step(msg{2, 1, term_t{1}, raft::append_response{true, index_t{6}, {}, {}}}, out) == raft::step_status::ok);
  REQUIRE(l.applied_index() == index_t{6});
  out.clear();  // applied
  REQUIRE(l.compact(index_t{6}, raft::bytes("0123456789abcdefghij"), out) == raft::compact_status::ok);
  out.clear();
  // Follower 3 never answered; its entries are gone now. The next heartbeat
  // re-sends its probe, which has to be the snapshot.
  l.tick(out);
  std::vector<raft::install_snapshot> chunks;
  for (auto& m : out.messages)
    if (auto* s = std::get_if<raft::install_snapshot>(&m.body); s && m.to == 3) chunks.push_back(*s);
  // 20 bytes in 4-byte chunks, at most max_snapshot_inflight (4) ahead.
  REQUIRE(chunks.size() == 4);
  CHECK(chunks[0].offset == 0);
  CHECK(chunks[3].offset == 12);
  CHECK(chunks[0].total_size == 20);
  CHECK(chunks[0].last_index == index_t{6});
  // An acknowledgement of two chunks frees room for two more, the last one "done".
  out.clear();
  REQUIRE(l.step(msg{3, 1, term_t{1}, raft::snapshot_response{index_t{6}, 8, false, raft::snapshot_refusal::none}}, out) ==
          raft::step_status::ok);
  REQUIRE(out.messages.size() == 1);
  CHECK(std::get<raft::install_snapshot>(out.messages[0].body).offset == 16);
  CHECK(std::get<raft::install_snapshot>(out.messages[0].body).done);
  // A refusal with an offset never sent is hostile.
  out.clear();
  CHECK(l.step(msg{3, 1, term_t{1}, raft::snapshot_response{index_t{6}, 999, false, raft::snapshot_refusal::bad_offset}}, out) ==
        raft::step_status::malformed);
  // Lost chunk: the follower asks for offset 8 again; the leader goes back.
  CHECK(l.step(msg{3, 1, term_t{1}, raft::snapshot_response{index_t{6}, 8, false, raft::snapshot_refusal::bad_offset}}, out) ==
        raft::step_status::ok);
  REQUIRE(!out.messages.empty());
  CHECK(std::get<raft::install_snapshot>(out.messages[0].body).offset == 8);
  // Installed: replication resumes after the snapshot.
  out.clear();
  CHECK(l.step(msg{3, 1, term_t{1}, raft::snapshot_response{index_t{6}, 20, true, raft::snapshot_refusal::none}}, out) ==
        raft::step_status::ok);
  REQUIRE(l.progress_of(3) != nullptr);
  CHECK(l.progress_of(3)->match == index_t{6});
}
