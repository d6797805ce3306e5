// Random, often hostile, messages thrown at single nodes: whatever arrives,
// the node never throws, never crashes, never moves its term or commit index
// backwards, and hands out a gapless sequence of committed entries.
//
// Membership as log data: the messages also carry configuration entries and
// snapshot memberships, some encoding valid memberships
// (raft::encode_config_entry), some garbage. A garbage one is refused as
// malformed and leaves node.configuration() alone; and after every input the
// node's configuration is the newest configuration in its log (or its
// snapshot's membership, or config.voters), and is valid().
#include <catch2/catch.hpp>

#include <raft/raft.hpp>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "sim/seeds.hpp"

using raft::index_t;
using raft::term_t;
using node = raft::node<>;
using msg = node::message_type;
using membership = raft::membership<std::uint64_t>;

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

raft::bytes encode(const membership& m, const raft::bytes& context = {}) {
  return raft::encode_config_entry<raft::default_transport>(m, context);
}
bool decodes(const raft::bytes& b) { return raft::decode_config_entry<raft::default_transport>(b).has_value(); }

/// A valid membership over nodes 1..5 (voters, learners, witnesses, maybe
/// joint), usually with `self` as a voter so that elections keep happening.
membership random_membership(rng& r, std::uint64_t self) {
  std::vector<std::uint64_t> ids = {1, 2, 3, 4, 5};
  for (std::size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[static_cast<std::size_t>(r.below(i + 1))]);
  if (r.below(4) != 0) std::swap(ids[0], *std::find(ids.begin(), ids.end(), self));
  membership m;
  const auto nv = static_cast<std::size_t>(1 + r.below(4));
  m.voters.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(nv));
  for (std::size_t i = nv; i < ids.size(); ++i)
    if (r.below(5) < 2) m.learners.push_back(ids[i]);
  for (std::size_t i = 1; i < nv; ++i)  // voters[0] stays able to lead
    if (r.below(5) == 0) m.witnesses.push_back(m.voters[i]);
  if (r.below(10) < 3) {
    // Joint: the outgoing voters are any non-learners, one of them no witness.
    for (auto id : ids)
      if (!membership::has(m.learners, id) && r.below(2) == 0) m.voters_outgoing.push_back(id);
    if (std::none_of(m.voters_outgoing.begin(), m.voters_outgoing.end(),
                     [&](std::uint64_t id) { return !m.is_witness(id); }))
      m.voters_outgoing.push_back(m.voters[0]);
    for (auto id : m.voters_outgoing)
      if (!membership::has(m.voters, id) && !m.is_witness(id) && r.below(2) == 0) m.learners_next.push_back(id);
    m.auto_leave = r.below(2) == 0;
  }
  if (!raft::valid(m)) FAIL("random_membership() built an invalid membership");  // a bug of this test
  return m;
}

/// Conf bytes that must not decode: empty (for a configuration entry),
/// random bytes, a cut or extended valid encoding, a wrong format or flags
/// byte, a hostile count, or the encoding of an invalid membership.
raft::bytes garbage_conf(rng& r, std::uint64_t self, bool allow_empty) {
  for (;;) {
    std::string b;
    const auto shape = r.below(8);
    const std::string valid = shape >= 2 && shape <= 5 ? encode(random_membership(r, self)).str() : std::string();
    switch (shape) {
      case 0: break;  // empty
      case 1:
        b.resize(static_cast<std::size_t>(1 + r.below(24)));
        for (auto& c : b) c = static_cast<char>(r.next());
        break;
      case 2: b = valid.substr(0, static_cast<std::size_t>(r.below(valid.size()))); break;
      case 3: b = valid + static_cast<char>(r.next()); break;
      case 4:
        b = valid;
        b[0] = static_cast<char>(r.below(2) == 0 ? 0 : 2 + r.below(254));  // format 1 is the only one
        break;
      case 5:
        b = valid;
        b[1] = static_cast<char>(2 + r.below(254));  // flags: 0 or 1
        break;
      case 6: {
        std::vector<std::byte> v = {std::byte{1}, std::byte{0}};
        raft::byte_writer(v).varint(r.below(2) == 0 ? raft::max_members + 1 : r.next() | (std::uint64_t{1} << 40));
        b.assign(reinterpret_cast<const char*>(v.data()), v.size());
        break;
      }
      default: {
        membership m = random_membership(r, self);
        switch (r.below(5)) {
          case 0: m.voters.push_back(m.voters[0]); break;              // duplicate voter
          case 1: m.witnesses = m.voters; break;                       // only witnesses
          case 2: m.learners.push_back(m.voters[0]); break;            // a learner that votes
          case 3: m.voters.clear(); break;                             // no voters
          default: m.auto_leave = m.voters_outgoing.empty(); m.learners_next.push_back(9); break;  // not joint / stray
        }
        b = encode(m).str();
      }
    }
    if (b.empty() && !allow_empty) continue;
    raft::bytes out(b);
    if (!decodes(out)) return out;
  }
}

struct fuzz_message {
  msg m;
  bool garbage = false;        // holds a conf the node must refuse (config entry, or last snapshot chunk)
  bool garbage_chunk = false;  // a chunk (not the last) with a garbage membership: ignored, must not be used
};

fuzz_message random_message(rng& r, const node& n) {
  fuzz_message f;
  msg& m = f.m;
  m.from = 1 + r.below(4);  // 4 is not in the bootstrap membership
  m.to = r.below(8) == 0 ? 9 : n.id();
  const std::uint64_t t = n.term().value;
  // (One draw per statement where the order matters: operands and function
  // arguments are evaluated in an order that differs between compilers, and
  // a seed must replay the same run with all of them. Braced lists are
  // evaluated left to right.)
  if (r.below(10) == 0) {
    m.term = term_t{r.next()};
  } else {
    const std::uint64_t up = r.below(3);
    m.term = term_t{t + up - (t > 0 && r.below(2) ? 1 : 0)};
  }
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
      raft::forward_proposal<raft::bytes> fp;
      for (auto k = r.below(4); k > 0; --k) fp.commands.push_back(raft::bytes("f"));
      m.body = std::move(fp);
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
        const term_t term = r.below(10) == 0 ? trm() : et;
        const index_t index = r.below(10) == 0 ? idx() : a.prev_index + (k + 1);
        const auto kind = r.below(20);
        if (kind < 3) {
          // A configuration entry: a valid membership, or garbage.
          raft::bytes conf;
          if (r.below(5) < 3) {
            const membership valid = random_membership(r, n.id());
            conf = encode(valid, r.below(4) == 0 ? raft::bytes("ctx") : raft::bytes{});
          } else {
            conf = garbage_conf(r, n.id(), true);
            f.garbage = true;
          }
          a.entries.push_back({term, index, raft::entry_kind::config, raft::bytes{}, std::move(conf)});
        } else if (kind == 3) {
          a.entries.push_back({term, index, raft::entry_kind::noop, raft::bytes{}});
        } else {
          a.entries.push_back({term, index, raft::entry_kind::command, raft::bytes("x")});
        }
      }
      m.body = std::move(a);
      break;
    }
    case 3: m.body = raft::append_response{r.below(2) == 0, idx(), idx(), trm(), r.below(4) == 0 ? r.next() : r.below(5)}; break;
    case 4: {
      std::uint64_t total = r.below(30);
      std::uint64_t off = r.below(4) == 0 ? r.below(40) : 0;
      bool done = r.below(2) == 0;
      std::string data(static_cast<std::size_t>(r.below(12)), 's');
      if (r.below(3) == 0) {  // a whole snapshot in one chunk, so that some install
        total = data.size();
        off = 0;
        done = true;
      }
      raft::bytes members;  // empty: an old snapshot, meaning config.voters
      switch (r.below(10)) {
        case 0:
        case 1:
        case 2: break;
        case 3:
        case 4:
        case 5:
        case 6: members = encode(random_membership(r, n.id())); break;
        default:
          members = garbage_conf(r, n.id(), false);
          (done ? f.garbage : f.garbage_chunk) = true;
      }
      m.body = raft::install_snapshot{idx(), trm(), total, off, done, raft::bytes(data), std::move(members)};
      break;
    }
    case 5:
      m.body = raft::snapshot_response{idx(), r.below(40), r.below(2) == 0,
                                       static_cast<raft::snapshot_refusal>(r.below(raft::snapshot_refusal_count))};
      break;
  }
  return f;
}

/// A change the node's leader may be asked for: one to three items over
/// nodes 1..6, sometimes with a change_type no enum value names.
raft::conf_change<std::uint64_t> random_change(rng& r) {
  raft::conf_change<std::uint64_t> c;
  for (auto k = 1 + r.below(3); k > 0; --k)
    c.changes.push_back({static_cast<raft::change_type>(r.below(raft::change_type_count + 1)), 1 + r.below(6)});
  c.how = static_cast<raft::transition>(r.below(3));
  if (r.below(4) == 0) c.context = raft::bytes("addr");
  return c;
}

/// Why the node's configuration is not the newest configuration entry in
/// its log, else its snapshot's membership, else config.voters, or not
/// valid(); empty if it is all of these. Without `scan`, the log is not
/// searched for a configuration entry newer than configuration_index();
/// without `content`, the configuration is not compared with its source.
std::string configuration_error(const node& n, bool scan, bool content) {
  const auto& lg = n.log();
  const membership& conf = n.configuration();
  if (content && !raft::valid(conf)) return "configuration() is not valid()";
  if (n.configuration_index() > lg.last_index() || n.configuration_index() < lg.snapshot_index())
    return "configuration_index() is outside the log";
  index_t newest;  // the newest configuration entry (0: none)
  if (scan) {
    for (index_t i = lg.last_index(); i > lg.snapshot_index(); i = index_t{i.value - 1})
      if (lg.entry_at(i).kind == raft::entry_kind::config) {
        newest = i;
        break;
      }
  } else if (n.configuration_index() > lg.snapshot_index()) {
    newest = n.configuration_index();  // trusted to be the newest; its content is checked
    if (lg.entry_at(newest).kind != raft::entry_kind::config) return "configuration_index() is no configuration entry";
  }
  if (newest != index_t{}) {
    if (n.configuration_index() != newest)
      return "configuration_index() " + std::to_string(n.configuration_index().value) +
             " is not the newest configuration entry " + std::to_string(newest.value);
    if (!content) return {};
    const auto e = raft::decode_config_entry<raft::default_transport>(lg.entry_at(newest).conf);
    if (!e) return "the newest configuration entry does not decode";
    if (!(e->members == conf)) return "configuration() differs from the newest configuration entry";
    return {};
  }
  if (n.configuration_index() != lg.snapshot_index())
    return "no configuration entry, but configuration_index() is not the snapshot index";
  if (!content) return {};
  if (!lg.snapshot_membership().empty()) {
    const auto e = raft::decode_config_entry<raft::default_transport>(lg.snapshot_membership());
    if (!e) return "the snapshot membership does not decode";
    if (!(e->members == conf)) return "configuration() differs from the snapshot membership";
    return {};
  }
  membership boot;
  boot.voters = n.config().voters;
  if (!(conf == boot)) return "configuration() differs from config.voters";
  return {};
}
}  // namespace

TEST_CASE("a node fed random and hostile messages never breaks its own invariants", "[fuzz][hostile]") {
  std::uint64_t applied_total = 0, leaders = 0;
  std::uint64_t garbage_refused = 0, conf_changes_seen = 0, snapshot_memberships = 0, changes_made = 0;
  const auto seeds = sim::seeds(40);
  for (auto seed : seeds) {
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
    index_t conf_index_seen = n.configuration_index();
    std::array<std::uint64_t, 4> source_checked{};
    membership conf_checked;
    for (int step = 0; step < 3000; ++step) {
      const index_t conf_index_before = n.configuration_index();
      const index_t last_before = n.last_index();
      const index_t snapshot_before = n.log().snapshot_index();
      bool membership_input = false;  // this step fed the node a conf, a snapshot or a change
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
        // The other inputs of the liveness, read and membership features, with any argument.
        switch (r.below(7)) {
          case 0: {
            const std::uint64_t read_id = r.next();
            const auto mode = r.below(2) ? raft::read_mode::lease : raft::read_mode::read_index;
            REQUIRE_NOTHROW(n.read_index(read_id, out, mode));
            break;
          }
          case 1: REQUIRE_NOTHROW(n.transfer_leadership(r.below(5), out)); break;
          case 2: REQUIRE_NOTHROW(n.report_unreachable(r.below(5), out)); break;
          case 3: {
            const std::uint64_t peer = r.below(5);
            REQUIRE_NOTHROW(n.report_snapshot(peer, r.below(2) == 0, out));
            break;
          }
          case 4:
          case 5: {
            membership_input = true;
            const membership conf_before = n.configuration();
            raft::change_result<std::uint64_t> res;
            if (r.below(4) == 0) REQUIRE_NOTHROW(res = n.leave_joint(out));
            else REQUIRE_NOTHROW(res = n.change_membership(random_change(r), out));
            if (res.ok()) {
              ++changes_made;
              CHECK(n.configuration_index() == res.index);
              CHECK(n.last_index() == res.index);
            } else {
              CHECK(n.configuration() == conf_before);  // refused: nothing appended
              CHECK(n.configuration_index() == conf_index_before);
            }
            break;
          }
          default: {
            const auto st = n.status();
            CHECK(st.term == n.term());
            CHECK(st.commit == n.commit_index());
            CHECK(st.configuration == n.configuration());
          }
        }
      } else {
        const fuzz_message f = random_message(r, n);
        const bool addressed = f.m.to == n.id() && f.m.from != n.id();
        membership_input = f.garbage || f.garbage_chunk || std::holds_alternative<raft::install_snapshot>(f.m.body);
        if (const auto* a = std::get_if<raft::append_request<raft::bytes>>(&f.m.body))
          for (const auto& e : a->entries) membership_input |= e.kind == raft::entry_kind::config;
        std::optional<membership> conf_before;
        if (f.garbage || f.garbage_chunk) conf_before = n.configuration();
        raft::step_status st{};
        REQUIRE_NOTHROW(st = n.step(f.m, out));
        if (f.garbage || f.garbage_chunk) {
          // A garbage conf changes nothing; one the node would use is refused outright.
          CHECK(n.configuration() == *conf_before);
          CHECK(n.configuration_index() == conf_index_before);
          if (f.garbage && addressed) {
            CHECK(st == raft::step_status::malformed);
            CHECK(n.last_index() == last_before);
            CHECK_FALSE(out.snapshot.has_value());
            ++garbage_refused;
          }
        }
        if (out.snapshot && !out.snapshot->membership.empty()) ++snapshot_memberships;
      }
      // The configuration follows the log. The log is searched for a newer
      // configuration entry whenever the snapshot or the configuration moved
      // or the log was cut back, and every eighth step. The configuration is
      // compared with its source (decoded) whenever that source - index and
      // term of the configuration entry and of the snapshot - is not the one
      // checked last, or a membership input changed the configuration anyway.
      const bool scan = step % 8 == 0 || n.last_index() < last_before ||
                        n.log().snapshot_index() != snapshot_before || n.configuration_index() != conf_index_before;
      const index_t ci = n.configuration_index();
      const bool ci_in_log = ci >= n.log().snapshot_index() && ci <= n.last_index();
      const std::array<std::uint64_t, 4> source = {ci.value, ci_in_log ? n.log().term_at(ci).value : UINT64_MAX,
                                                   n.log().snapshot_index().value, n.log().snapshot_term().value};
      const bool content = source != source_checked || (membership_input && !(n.configuration() == conf_checked));
      if (scan || content) {
        const std::string why = configuration_error(n, scan, content);
        INFO("step " << step << ": " << why);
        CHECK(why.empty());
        if (content) {
          source_checked = source;
          conf_checked = n.configuration();
        }
      }
      if (n.configuration_index() != conf_index_seen) ++conf_changes_seen;
      conf_index_seen = n.configuration_index();
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
  CAPTURE(applied_total, leaders, garbage_refused, conf_changes_seen, snapshot_memberships, changes_made);
  CHECK(applied_total > 0);
  CHECK(leaders > 0);
  if (seeds.size() >= 40) {  // not when one seed is replayed (RAFT_SIM_SEED)
    CHECK(garbage_refused > 1000);
    CHECK(conf_changes_seen > 200);
    CHECK(snapshot_memberships > 20);
    CHECK(changes_made > 0);
  }
}
