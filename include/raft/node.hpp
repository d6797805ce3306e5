// raft/node.hpp - raft::node, the Raft state machine.
//
// Design
// ------
// A node is a pure, deterministic state machine. Three inputs drive it:
//
//   tick(out)          time passed (one logical tick: elections, heartbeats)
//   step(msg, out)     a message from a peer arrived
//   propose(cmd, out)  a client asks the leader to replicate a command
//
// Each call appends what it produced to an output (raft/output.hpp): whether
// the Log must be flushed, messages to send, committed entries to apply, and
// role/leader changes. The node performs no I/O, reads no clock, starts no
// thread and owns every allocation it makes.
//
// Flow of one proposal, 3 nodes (L leader, F followers):
//   L.propose(cmd)  -> L appends to its Log, sends append_request to each F
//   F.step(append)  -> F checks prev_index/prev_term, appends, persist=true,
//                      replies append_response{success, index}
//   L.step(resp)    -> L records F's match; once a majority (L itself counts)
//                      holds an entry of the current term, L commits it
//                      (paper §5.4.2, Figure 8) and outputs it in `committed`;
//                      it sends the new commit index to the followers
//   F.step(append)  -> F learns the commit index and outputs the entry
//
// Structure. step() applies the rules that hold in every role (term
// comparison, paper §5.1; then sender and shape checks), then hands the
// message to the handler for its type. State that only a leader needs (the
// per-follower progress) or only a candidate needs (the vote tally) lives in
// a role struct inside a std::variant, so other roles cannot touch it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "assert.hpp"
#include "clock.hpp"
#include "concepts.hpp"
#include "config.hpp"
#include "memory_log.hpp"
#include "message.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "quorum.hpp"
#include "random.hpp"
#include "transport.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

namespace detail {
template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

[[noreturn]] inline void invalid_argument(const std::string& what) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
  throw std::invalid_argument(what);
#else
  std::fprintf(stderr, "raft: invalid argument: %s\n", what.c_str());
  std::abort();
#endif
}

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}
}  // namespace detail

template <class Transport = default_transport, class Log = memory_log<Transport>, class Clock = tick_clock,
          class Random = default_random>
class node {
  static_assert(check_transport<Transport>(), "raft::node: the Transport policy is incomplete (see the errors above)");
  static_assert(!transport<Transport> || check_log<Log, Transport>(),
                "raft::node: the Log policy is incomplete (see the errors above)");
  static_assert(check_clock<Clock>(), "raft::node: the Clock policy is incomplete (see the errors above)");
  static_assert(check_random<Random>(), "raft::node: the Random policy is incomplete (see the errors above)");

 public:
  using transport_type = Transport;
  using log_type = Log;
  using node_id = typename Transport::node_id;
  using payload = typename Transport::payload;
  using entry_type = entry<payload>;
  using message_type = message<node_id, payload>;
  using output_type = output<node_id, payload>;
  using config_type = raft::config<node_id>;
  using hard_state_type = raft::hard_state<node_id>;
  using propose_result_type = propose_result<node_id>;

  /// Builds a node from its configuration and its durable state. A node
  /// restarting after a crash is built from the Log it wrote before: it
  /// resumes with that term, vote and log, as a follower. A config that fails
  /// validate(), or a Log that contradicts itself, is refused with
  /// std::invalid_argument.
  explicit node(config_type cfg, Log log = Log{}, Clock clock = Clock{}, Random rng = Random{})
      : cfg_(std::move(cfg)), log_(std::move(log)), clock_(std::move(clock)), rng_(std::move(rng)) {
    if (auto problem = cfg_.validate()) detail::invalid_argument(*problem);
    if (log_.last_index() < log_.snapshot_index() || log_.first_index() != log_.snapshot_index().next())
      detail::invalid_argument("raft::node: the Log's snapshot_index, first_index and last_index disagree");
    const hard_state_type hs = log_.hard_state();
    if (log_.last_index() > log_.snapshot_index() && log_.term_at(log_.last_index()) > hs.term)
      detail::invalid_argument("raft::node: the Log holds an entry from a term later than its hard state's term");
    if (hs.vote && !is_voter(*hs.vote))
      detail::invalid_argument("raft::node: the Log's hard state votes for a node that is not in config.voters");
    term_ = hs.term;
    vote_ = hs.vote;
    commit_ = log_.snapshot_index();
    applied_ = commit_;
    // Restarting from a snapshot: the application must restore it before
    // any later entry is applied; the first output carries it.
    pending_restore_ = log_.snapshot_index() > index_t{};
    std::uint64_t id_hash = 0;
    {
      std::vector<std::byte> buf;
      byte_writer w(buf);
      Transport::encode_id(w, cfg_.id);
      for (auto b : buf) id_hash = id_hash * 131 + static_cast<std::uint64_t>(b);
    }
    rng_.seed(detail::mix64(cfg_.random_seed ^ detail::mix64(id_hash + 0x9e3779b97f4a7c15ull)));
    quorum_ = majority_config<node_id>(cfg_.voters);
    self_idx_ = *voter_index(cfg_.id);
    become_follower_(term_, std::nullopt, nullptr);
  }

  // ------------------------------------------------------------- observers

  [[nodiscard]] const node_id& id() const noexcept { return cfg_.id; }
  [[nodiscard]] raft::role role() const noexcept { return static_cast<raft::role>(role_.index()); }
  [[nodiscard]] bool is_leader() const noexcept { return role() == raft::role::leader; }
  [[nodiscard]] term_t term() const noexcept { return term_; }
  [[nodiscard]] const std::optional<node_id>& voted_for() const noexcept { return vote_; }
  /// The leader of the current term, if this node knows it.
  [[nodiscard]] const std::optional<node_id>& leader() const noexcept { return leader_; }
  [[nodiscard]] index_t commit_index() const noexcept { return commit_; }
  /// Last index handed out in an output's `committed` list.
  [[nodiscard]] index_t applied_index() const noexcept { return applied_; }
  [[nodiscard]] index_t last_index() const { return log_.last_index(); }
  [[nodiscard]] const config_type& config() const noexcept { return cfg_; }
  [[nodiscard]] const Log& log() const noexcept { return log_; }
  /// Mutable access for flushing a write-back Log, or for compaction. Writing
  /// entries or hard state through it behind the node's back breaks Raft.
  [[nodiscard]] Log& log() noexcept { return log_; }
  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }
  /// Leader only: the replication progress of voter `peer` (nullptr otherwise).
  [[nodiscard]] const progress* progress_of(const node_id& peer) const noexcept {
    const auto* l = std::get_if<leader_state>(&role_);
    auto i = voter_index(peer);
    if (l == nullptr || !i) return nullptr;
    return &l->peers[*i];
  }

  // ---------------------------------------------------------------- inputs

  /// One logical tick. Followers and candidates count toward an election
  /// timeout; a leader counts toward its next heartbeat.
  void tick(output_type& out) {
    begin_(out);
    clock_.advance();
    if (auto* l = std::get_if<leader_state>(&role_)) {
      if (++heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
        heartbeat_elapsed_ = 0;
        broadcast_heartbeat_(*l, out);
      }
      return;
    }
    if (++election_elapsed_ >= randomized_timeout_) campaign(out);
  }

  /// Starts an election now (paper §5.2), as if the election timeout had
  /// elapsed. Useful to choose the first leader in tests and benchmarks. A
  /// leader ignores it.
  void campaign(output_type& out) {
    begin_(out);
    if (is_leader()) return;
    set_hard_state_(term_.next(), cfg_.id, out);
    role_.template emplace<candidate_state>(cfg_.voters.size());
    leader_.reset();
    reset_election_timer_();
    record_change_(out);
    auto& c = std::get<candidate_state>(role_);
    c.granted[self_index_()] = 1;
    if (maybe_win_(out)) return;
    const vote_request req{log_.last_index(), log_.term_at(log_.last_index())};
    for (const auto& v : cfg_.voters)
      if (!(v == cfg_.id)) send_(v, req, out);
  }

  /// Appends `cmd` to the leader's log and starts replicating it at once.
  /// On a non-leader nothing happens and the result says who the leader is.
  propose_result_type propose(payload cmd, output_type& out) {
    begin_(out);
    auto* l = std::get_if<leader_state>(&role_);
    if (l == nullptr) return not_leader_();
    append_own_(entry_kind::command, std::move(cmd), out);
    replicate_(*l, out);
    return {propose_status::ok, log_.last_index(), term_, leader_};
  }

  /// Appends every command of `cmds` (a range of payloads, moved from if it
  /// is an rvalue range) and replicates them together: one AppendEntries per
  /// follower for the whole batch, within the flow-control limits.
  template <class Range>
  propose_result_type propose_batch(Range&& cmds, output_type& out) {
    begin_(out);
    auto* l = std::get_if<leader_state>(&role_);
    if (l == nullptr) return not_leader_();
    for (auto&& c : cmds) {
      if constexpr (std::is_rvalue_reference_v<Range&&>)
        append_own_(entry_kind::command, payload(std::move(c)), out);
      else
        append_own_(entry_kind::command, payload(c), out);
    }
    replicate_(*l, out);
    return {propose_status::ok, log_.last_index(), term_, leader_};
  }

  /// Log compaction (paper §7): the application hands over a snapshot of its
  /// state machine covering every entry up to `upto`, which must already have
  /// been handed out for applying. The Log stores it and drops the entries it
  /// covers; followers that need them later get the snapshot instead. Sets
  /// out.persist (the snapshot must be durable like any other Log write).
  compact_status compact(index_t upto, raft::bytes data, output_type& out) {
    begin_(out);
    if (upto > applied_) return compact_status::beyond_applied;
    if (upto <= log_.snapshot_index()) return compact_status::not_newer;
    log_.install_snapshot(raft::snapshot{upto, log_.term_at(upto), std::move(data)});
    out.persist = true;
    return compact_status::ok;
  }

  /// Handles a message from a peer. Whatever the message says, the node stays
  /// consistent: bad or stale input is ignored (or answered with a rejection)
  /// and reported in the returned status.
  step_status step(message_type m, output_type& out) {
    begin_(out);
    if (!(m.to == cfg_.id)) return step_status::not_for_me;
    const auto from_slot = voter_index(m.from);
    if (m.from == cfg_.id || !from_slot) return step_status::unknown_sender;
    if (!well_formed_(m)) return step_status::malformed;

    // Term rules common to every role (paper §5.1, Figure 2 "Rules for
    // Servers"): a newer term makes us a follower of that term; an older one
    // is answered so that its sender can catch up, then dropped.
    if (m.term > term_) {
      std::optional<node_id> leader;
      if (std::holds_alternative<append_request<payload>>(m.body) || std::holds_alternative<install_snapshot>(m.body))
        leader = m.from;
      become_follower_(m.term, leader, &out);
    } else if (m.term < term_) {
      if (std::holds_alternative<append_request<payload>>(m.body)) {
        send_(m.from, append_response{false, std::get<append_request<payload>>(m.body).prev_index, {}, {}}, out);
      } else if (std::holds_alternative<vote_request>(m.body)) {
        send_(m.from, vote_response{false}, out);
      } else if (const auto* is = std::get_if<install_snapshot>(&m.body)) {
        send_(m.from, snapshot_response{is->last_index, 0, false, snapshot_refusal::none}, out);
      }
      return step_status::stale_term;
    }

    return std::visit(detail::overloaded{
                          [&](vote_request& b) { return on_vote_request_(m.from, b, out); },
                          [&](vote_response& b) { return on_vote_response_(*from_slot, b, out); },
                          [&](append_request<payload>& b) { return on_append_request_(m.from, b, out); },
                          [&](append_response& b) { return on_append_response_(*from_slot, b, out); },
                          [&](install_snapshot& b) { return on_install_snapshot_(m.from, b, out); },
                          [&](snapshot_response& b) { return on_snapshot_response_(*from_slot, b, out); },
                      },
                      m.body);
  }

 private:
  struct follower_state {};
  struct candidate_state {
    std::vector<std::int8_t> granted;  // per voter: 0 unknown, 1 granted, -1 rejected
    explicit candidate_state(std::size_t n) : granted(n, 0) {}
  };
  struct leader_state {
    std::vector<progress> peers;  // per voter, parallel to cfg_.voters (own slot unused)
  };
  // Order matches raft::role.
  using role_state = std::variant<follower_state, candidate_state, leader_state>;

  // ------------------------------------------------------------- helpers

  [[nodiscard]] std::optional<std::size_t> voter_index(const node_id& id) const noexcept {
    for (std::size_t i = 0; i < cfg_.voters.size(); ++i)
      if (cfg_.voters[i] == id) return i;
    return std::nullopt;
  }
  [[nodiscard]] bool is_voter(const node_id& id) const noexcept { return voter_index(id).has_value(); }
  [[nodiscard]] std::size_t self_index_() const noexcept { return self_idx_; }

  template <class Body>
  void send_(const node_id& to, Body&& body, output_type& out) {
    out.messages.push_back(message_type{cfg_.id, to, term_, std::forward<Body>(body)});
  }

  propose_result_type not_leader_() const { return {propose_status::not_leader, {}, {}, leader_}; }

  void set_hard_state_(term_t t, std::optional<node_id> vote, output_type& out) {
    term_ = t;
    vote_ = std::move(vote);
    log_.save_hard_state(hard_state_type{term_, vote_});
    out.persist = true;
  }

  void reset_election_timer_() {
    election_elapsed_ = 0;
    // Randomised in [election_ticks, 2 * election_ticks) (paper §5.2).
    randomized_timeout_ = cfg_.election_ticks + static_cast<std::uint32_t>(rng_.next() % cfg_.election_ticks);
  }

  void record_change_(output_type& out) { out.changes.push_back({role(), term_, leader_}); }

  /// `out` is null only in the constructor (nothing to report yet).
  void become_follower_(term_t t, std::optional<node_id> leader, output_type* out) {
    if (t > term_) {
      RAFT_ASSERT(out != nullptr, "term change without an output");
      set_hard_state_(t, std::nullopt, *out);
    }
    const bool changed = role() != raft::role::follower || !(leader_ == leader);
    role_.template emplace<follower_state>();
    leader_ = std::move(leader);
    reset_election_timer_();
    if (out != nullptr && changed) record_change_(*out);
  }

  void become_leader_(output_type& out) {
    leader_state l;
    l.peers.reserve(cfg_.voters.size());
    for (std::size_t i = 0; i < cfg_.voters.size(); ++i)
      l.peers.emplace_back(log_.last_index().next(), cfg_.max_inflight);
    role_.template emplace<leader_state>(std::move(l));
    leader_ = cfg_.id;
    heartbeat_elapsed_ = 0;
    record_change_(out);
    // A new leader commits an entry of its own term at once (paper §8,
    // thesis §6.4): it is what lets entries of earlier terms commit (§5.4.2).
    append_own_(entry_kind::noop, payload{}, out);
    replicate_(std::get<leader_state>(role_), out);
  }

  /// Candidate: become leader once a majority granted its vote.
  bool maybe_win_(output_type& out) {
    auto& c = std::get<candidate_state>(role_);
    const auto result = quorum_.vote([&](const node_id& id) -> std::optional<bool> {
      const auto g = c.granted[*voter_index(id)];
      return g == 0 ? std::nullopt : std::optional<bool>(g > 0);
    });
    switch (result) {
      case vote_result::won: become_leader_(out); return true;
      case vote_result::lost: become_follower_(term_, std::nullopt, &out); return true;
      case vote_result::pending: return false;
    }
    return false;
  }

  void append_own_(entry_kind kind, payload data, output_type& out) {
    log_.append(entry_type{term_, log_.last_index().next(), kind, std::move(data)});
    out.persist = true;
  }

  [[nodiscard]] term_t last_term_() const { return log_.term_at(log_.last_index()); }

  /// Start of every input: hand a restored node's snapshot to the application.
  void begin_(output_type& out) {
    if (!pending_restore_) return;
    pending_restore_ = false;
    out.snapshot = raft::snapshot{log_.snapshot_index(), log_.snapshot_term(), log_.snapshot_data()};
  }

  /// Emits every committed, not yet emitted entry, in order.
  void emit_committed_(output_type& out) {
    if (applied_ >= commit_) return;
    out.committed.extend_(&log_, &entry_at_thunk_, applied_.next(), commit_);
    applied_ = commit_;
  }
  static const entry_type& entry_at_thunk_(const void* log, index_t i) {
    return static_cast<const Log*>(log)->entry_at(i);
  }

  // --------------------------------------------------------- validation

  /// Shape checks that need no state: a message that fails them is hostile or
  /// corrupt and is dropped before it can touch anything.
  [[nodiscard]] bool well_formed_(const message_type& m) const {
    if (m.term == term_t{}) return false;  // every real message carries a term >= 1
    // Terms and indexes this large never occur in a real cluster (2^62 elections
    // or entries); accepting them would let one hostile message make the
    // counters overflow.
    constexpr std::uint64_t limit = std::uint64_t{1} << 62;
    if (m.term.value >= limit) return false;
    if (const auto* a = std::get_if<append_request<payload>>(&m.body)) {
      if (a->prev_index.value >= limit || a->commit.value >= limit || a->entries.size() >= limit - a->prev_index.value)
        return false;
    }
    if (const auto* r = std::get_if<append_response>(&m.body)) {
      if (r->index.value >= limit || r->conflict_index.value >= limit || r->conflict_term > m.term) return false;
    }
    if (const auto* is = std::get_if<install_snapshot>(&m.body)) {
      if (is->last_index.value >= limit) return false;
    }
    if (const auto* sr = std::get_if<snapshot_response>(&m.body)) {
      if (sr->last_index.value >= limit) return false;
    }
    if (const auto* a = std::get_if<append_request<payload>>(&m.body)) {
      if (a->prev_term > m.term) return false;
      if (a->prev_index == index_t{} && a->prev_term != term_t{}) return false;
      term_t prev_term = a->prev_term;
      index_t expect = a->prev_index.next();
      if (a->entries.size() > cfg_.max_append_entries * std::size_t{4} + 65536) return false;
      for (const auto& e : a->entries) {
        if (e.index != expect || e.term < prev_term || e.term > m.term || e.term == term_t{}) return false;
        if (static_cast<std::uint8_t>(e.kind) >= entry_kind_count) return false;
        prev_term = e.term;
        expect = expect.next();
      }
    }
    if (const auto* is = std::get_if<install_snapshot>(&m.body)) {
      if (is->last_index == index_t{} || is->last_term == term_t{} || is->last_term > m.term) return false;
    }
    if (const auto* v = std::get_if<vote_request>(&m.body)) {
      if (v->last_term > m.term) return false;
      if (v->last_index == index_t{} && v->last_term != term_t{}) return false;
    }
    return true;
  }

  // ----------------------------------------------------------- elections

  step_status on_vote_request_(const node_id& from, const vote_request& req, output_type& out) {
    // Grant at most one vote per term (§5.2), and only to a candidate whose
    // log is at least as up-to-date as ours (§5.4.1): a later last term wins,
    // equal last terms compare by length. A node that already follows a
    // leader this term refuses: a leader exists.
    const bool may_vote = vote_ ? *vote_ == from : !leader_.has_value();
    const term_t my_last_term = last_term_();
    const bool up_to_date =
        req.last_term > my_last_term || (req.last_term == my_last_term && req.last_index >= log_.last_index());
    const bool grant = may_vote && up_to_date && !is_leader();
    if (grant) {
      if (!vote_) set_hard_state_(term_, from, out);  // durable before the reply leaves (see output.hpp)
      reset_election_timer_();
    }
    send_(from, vote_response{grant}, out);
    return step_status::ok;
  }

  step_status on_vote_response_(std::size_t from, const vote_response& resp, output_type& out) {
    auto* c = std::get_if<candidate_state>(&role_);
    if (c == nullptr) return step_status::unexpected;  // late answer: the election is over
    auto& slot = c->granted[from];
    if (slot == 0) slot = resp.granted ? 1 : -1;  // duplicates count once
    maybe_win_(out);
    return step_status::ok;
  }

  // ---------------------------------------------------------- replication

  /// A message only the leader of the current term sends arrived from `from`.
  /// Returns false if this node is itself that term's leader (impossible from a
  /// correct peer: Election Safety).
  bool heard_from_leader_(const node_id& from, output_type& out) {
    if (is_leader()) return false;
    if (role() == raft::role::candidate || !(leader_ == from)) {
      // A candidate that hears from the leader of its term steps down (§5.2).
      become_follower_(term_, from, &out);
    }
    election_elapsed_ = 0;
    return true;
  }

  step_status on_append_request_(const node_id& from, append_request<payload>& req, output_type& out) {
    if (!heard_from_leader_(from, out)) return step_status::malformed;

    // Entries up to our commit index are already known to match the leader's
    // log (Log Matching + Leader Completeness): skip them, never rewrite them.
    if (req.prev_index < commit_) {
      // ...but check that they agree with what we committed: a message that
      // contradicts a committed entry comes from no correct leader.
      if (req.prev_index >= log_.snapshot_index() && log_.term_at(req.prev_index) != req.prev_term)
        return step_status::malformed;
      for (const auto& e : req.entries) {
        if (e.index > commit_) break;
        if (e.index >= log_.first_index() && log_.term_at(e.index) != e.term) return step_status::malformed;
      }
      const std::uint64_t gap = distance(req.prev_index, commit_);
      if (gap >= req.entries.size()) {
        send_(from, append_response{true, commit_, {}, {}}, out);
        return step_status::ok;
      }
      req.entries.erase(req.entries.begin(), req.entries.begin() + static_cast<std::ptrdiff_t>(gap));
      req.prev_index = commit_;
      req.prev_term = log_.term_at(commit_);
      if (req.entries.front().term < req.prev_term) return step_status::malformed;
    }

    const index_t last = log_.last_index();
    if (req.prev_index > last) {
      // Our log is too short: tell the leader where it ends.
      send_(from, append_response{false, req.prev_index, last.next(), term_t{}}, out);
      return step_status::ok;
    }
    const term_t have = log_.term_at(req.prev_index);
    if (have != req.prev_term) {
      // Consistency check failed (§5.3). Report the conflicting term and the
      // first index we hold for it, so the leader skips the whole term.
      send_(from, append_response{false, req.prev_index, first_index_of_term_(have, req.prev_index), have}, out);
      return step_status::ok;
    }

    // Find the first entry we do not already hold; a conflicting entry and
    // everything after it go (§5.3). Everything here follows commit_ (the
    // committed prefix was checked and skipped above), so a committed entry
    // is never truncated.
    std::size_t k = 0;
    for (; k < req.entries.size(); ++k) {
      const auto& e = req.entries[k];
      if (e.index > last) break;
      if (log_.term_at(e.index) != e.term) {
        RAFT_ASSERT(e.index > commit_, "about to truncate a committed entry");
        log_.truncate_after(e.index.prev());
        out.persist = true;
        break;
      }
    }
    for (; k < req.entries.size(); ++k) {
      log_.append(std::move(req.entries[k]));
      out.persist = true;
    }
    const index_t last_new = req.prev_index + req.entries.size();
    // Commit up to the leader's commit index, but only as far as this
    // message proves our log matches the leader's (Figure 2, rule 5).
    if (const index_t c = min(req.commit, last_new); c > commit_) {
      commit_ = c;
      emit_committed_(out);
    }
    send_(from, append_response{true, last_new, {}, {}}, out);
    return step_status::ok;
  }

  /// First index still in the log holding term `t`, searching back from
  /// `from` (which holds it). Terms never decrease along the log, so a binary
  /// search over [first_index, from] finds it in O(log n).
  [[nodiscard]] index_t first_index_of_term_(term_t t, index_t from) const {
    index_t lo = log_.first_index();
    if (from < lo) return from;
    index_t hi = from;  // term_at(hi) == t
    while (lo < hi) {
      index_t mid{lo.value + (hi.value - lo.value) / 2};
      if (log_.term_at(mid) < t) lo = mid.next();
      else hi = mid;
    }
    return lo;
  }

  /// Last index in our log holding term `t`, or nothing.
  [[nodiscard]] std::optional<index_t> last_index_of_term_(term_t t, index_t upto) const {
    index_t lo = log_.snapshot_index();
    index_t hi = min(upto, log_.last_index());
    if (hi < lo || log_.term_at(lo) > t) return std::nullopt;
    // Largest i in [lo, hi] with term_at(i) <= t.
    while (lo < hi) {
      index_t mid{lo.value + (hi.value - lo.value + 1) / 2};
      if (log_.term_at(mid) <= t) lo = mid;
      else hi = mid.prev();
    }
    if (log_.term_at(lo) == t) return lo;
    return std::nullopt;
  }

  step_status on_append_response_(std::size_t from_idx, const append_response& resp, output_type& out) {
    auto* l = std::get_if<leader_state>(&role_);
    if (l == nullptr) return step_status::unexpected;
    auto& pr = l->peers[from_idx];
    if (resp.success) {
      if (resp.index > log_.last_index()) return step_status::malformed;  // acknowledges entries we never sent
      const bool advanced = pr.acknowledge(resp.index);
      if (pr.state == replication_state::probe) {
        pr.become_replicate();
      }
      if (advanced && maybe_commit_(*l, out)) {
        // Tell followers about the new commit index now rather than at the
        // next heartbeat, so they apply promptly.
        for (std::size_t i = 0; i < l->peers.size(); ++i) {
          if (i == self_index_()) continue;
          if (!send_append_(i, l->peers[i], out)) maybe_send_commit_(i, l->peers[i], out);
        }
      } else if (!send_append_(from_idx, pr, out)) {
        maybe_send_commit_(from_idx, pr, out);
      }
      return step_status::ok;
    }
    // Rejected. Ignore answers to messages older than what we already know.
    if (resp.index <= pr.match) return step_status::unexpected;
    if (pr.state == replication_state::probe && resp.index != pr.next.prev()) return step_status::unexpected;
    if (resp.index > log_.last_index()) return step_status::malformed;
    // Fast back-tracking (thesis §5.3 / the 6.824 optimisation): if we hold
    // the follower's conflicting term, resume after our last entry of that
    // term; otherwise skip the follower's whole term.
    index_t next = resp.conflict_index;
    if (resp.conflict_term != term_t{}) {
      if (auto li = last_index_of_term_(resp.conflict_term, resp.index)) next = li->next();
    }
    next = min(next, resp.index);        // we must probe strictly below the rejected prev
    next = max(next, pr.match.next());   // and never below what is known to match
    pr.become_probe();
    pr.next = next;
    send_append_(from_idx, pr, out);
    return step_status::ok;
  }

  // ------------------------------------------------------------ snapshots

  /// Sends snapshot chunks while the in-flight byte budget allows. Returns
  /// whether anything was sent.
  bool send_snapshot_(std::size_t peer, progress& pr, output_type& out) {
    if (pr.snap_index != log_.snapshot_index()) {
      // The leader compacted again since the transfer started: send the new one.
      pr.become_snapshot(log_.snapshot_index(), log_.snapshot_data().size());
    }
    const raft::bytes data = log_.snapshot_data();
    const std::uint64_t budget = std::uint64_t{cfg_.max_snapshot_inflight} * cfg_.snapshot_chunk_bytes;
    bool sent = false;
    while (!pr.snap_all_sent && pr.snap_sent - pr.snap_acked < budget) {
      const std::uint64_t n = std::min<std::uint64_t>(cfg_.snapshot_chunk_bytes, pr.snap_total - pr.snap_sent);
      install_snapshot chunk{pr.snap_index, log_.snapshot_term(), pr.snap_total, pr.snap_sent, false,
                             raft::bytes(data.data() + pr.snap_sent, static_cast<std::size_t>(n))};
      pr.snap_sent += n;
      chunk.done = pr.snap_sent == pr.snap_total;
      pr.snap_all_sent = chunk.done;
      send_(cfg_.voters[peer], std::move(chunk), out);
      sent = true;
    }
    return sent;
  }

  snapshot_response refuse_(const install_snapshot& req, snapshot_refusal why, std::uint64_t offset) const {
    return snapshot_response{req.last_index, offset, false, why};
  }

  step_status on_install_snapshot_(const node_id& from, install_snapshot& req, output_type& out) {
    if (!heard_from_leader_(from, out)) return step_status::malformed;
    if (req.last_index <= commit_) {
      // We already hold everything it covers. It must agree with what we
      // committed; then acknowledge and ignore it.
      if (req.last_index >= log_.snapshot_index() && log_.term_at(req.last_index) != req.last_term) {
        send_(from, refuse_(req, snapshot_refusal::inconsistent, 0), out);
        return step_status::malformed;
      }
      rx_.reset();
      send_(from, snapshot_response{req.last_index, req.total_size, true, snapshot_refusal::none}, out);
      return step_status::ok;
    }
    if (req.total_size > cfg_.max_snapshot_bytes || req.data.size() > cfg_.max_snapshot_chunk_bytes) {
      send_(from, refuse_(req, snapshot_refusal::too_large, 0), out);
      return step_status::ok;
    }
    if (req.offset > req.total_size || req.data.size() > req.total_size - req.offset ||
        (req.done && req.offset + req.data.size() != req.total_size)) {
      send_(from, refuse_(req, snapshot_refusal::inconsistent, rx_ ? rx_->received : 0), out);
      return step_status::malformed;
    }
    if (!rx_ || rx_->index != req.last_index || rx_->term != req.last_term || rx_->total != req.total_size) {
      // A new transfer; it must start at offset 0.
      rx_.reset();
      if (req.offset != 0) {
        send_(from, refuse_(req, snapshot_refusal::bad_offset, 0), out);
        return step_status::ok;
      }
      // The whole image is allocated once (its size is bounded by
      // config.max_snapshot_bytes) and filled in place, chunk by chunk.
      rx_.emplace(snapshot_rx{req.last_index, req.last_term, req.total_size,
                              raft::bytes::for_overwrite(static_cast<std::size_t>(req.total_size)), 0});
    }
    if (req.offset != rx_->received) {
      // Lost or reordered chunk: say where we are; the leader resends from there.
      send_(from, refuse_(req, snapshot_refusal::bad_offset, rx_->received), out);
      return step_status::ok;
    }
    if (!req.data.empty()) {
      std::byte* dst = rx_->data.fill_data();
      RAFT_ASSERT(dst != nullptr, "snapshot receive buffer was shared before completion");
      std::memcpy(dst + rx_->received, req.data.data(), req.data.size());
      rx_->received += req.data.size();
    }
    if (!req.done) {
      send_(from, snapshot_response{req.last_index, rx_->received, false, snapshot_refusal::none}, out);
      return step_status::ok;
    }
    // Complete: store it, keep the log suffix it does not cover if that
    // suffix agrees with it (thesis §5.1), and tell the application.
    raft::snapshot snap{rx_->index, rx_->term, std::move(rx_->data)};
    rx_.reset();
    log_.install_snapshot(snap);
    out.persist = true;
    commit_ = snap.index;
    applied_ = snap.index;
    out.committed.drop_through_(snap.index);
    send_(from, snapshot_response{snap.index, snap.data.size(), true, snapshot_refusal::none}, out);
    out.snapshot = std::move(snap);
    return step_status::ok;
  }

  step_status on_snapshot_response_(std::size_t peer, const snapshot_response& resp, output_type& out) {
    auto* l = std::get_if<leader_state>(&role_);
    if (l == nullptr) return step_status::unexpected;
    auto& pr = l->peers[peer];
    if (resp.installed) {
      if (resp.last_index > log_.last_index()) return step_status::malformed;  // beyond anything we hold
      pr.acknowledge(resp.last_index);
      if (pr.state == replication_state::snapshot) pr.become_probe();
      if (!send_append_(peer, pr, out)) maybe_send_commit_(peer, pr, out);
      return step_status::ok;
    }
    if (pr.state != replication_state::snapshot || resp.last_index != pr.snap_index) return step_status::unexpected;
    switch (resp.refusal) {
      case snapshot_refusal::none:
        if (resp.offset > pr.snap_sent) return step_status::malformed;
        if (resp.offset > pr.snap_acked) {
          pr.snap_acked = resp.offset;
          pr.stalled_heartbeats = 0;
        }
        break;
      case snapshot_refusal::bad_offset:
        if (resp.offset > pr.snap_sent) return step_status::malformed;
        pr.rewind_snapshot(resp.offset);
        break;
      case snapshot_refusal::too_large:
      case snapshot_refusal::inconsistent:
        // The follower cannot take this snapshot; try again from scratch at
        // the next heartbeat (the follower's limits may be raised meanwhile).
        pr.become_probe();
        pr.probe_sent = true;
        return step_status::ok;
    }
    send_snapshot_(peer, pr, out);
    return step_status::ok;
  }

  /// Leader: advance the commit index to the highest index replicated on a
  /// majority, if that entry is from the current term (§5.4.2, Figure 8).
  bool maybe_commit_(leader_state& l, output_type& out) {
    const std::size_t self = self_index_();
    const index_t n = *quorum_.template committed<index_t>([&](const node_id& id) {
      const std::size_t i = *voter_index(id);
      return i == self ? log_.last_index() : l.peers[i].match;
    });
    if (n <= commit_ || log_.term_at(n) != term_) return false;
    commit_ = n;
    emit_committed_(out);
    return true;
  }

  /// Sends new entries to every follower that flow control allows.
  void replicate_(leader_state& l, output_type& out) {
    const std::size_t self = self_index_();
    for (std::size_t i = 0; i < l.peers.size(); ++i)
      if (i != self) send_append_(i, l.peers[i], out);
    if (l.peers.size() == 1) maybe_commit_(l, out);
  }

  /// Sends entries from pr.next on, if there are any and flow control allows.
  /// In probe state an empty message is sent too (it is the probe). Returns
  /// whether a message was sent.
  bool send_append_(std::size_t peer, progress& pr, output_type& out) {
    if (pr.state == replication_state::snapshot) return send_snapshot_(peer, pr, out);
    if (pr.state == replication_state::replicate && extend_pending_(peer, pr, out)) return true;
    if (!pr.can_send()) return false;
    if (pr.next.prev() < log_.snapshot_index()) {
      // The entries this follower needs were compacted away: send the
      // snapshot instead (paper §7).
      pr.become_snapshot(log_.snapshot_index(), log_.snapshot_data().size());
      return send_snapshot_(peer, pr, out);
    }
    const index_t last = log_.last_index();
    if (pr.state == replication_state::replicate && pr.next > last) return false;
    const index_t prev = pr.next.prev();
    append_request<payload> req{prev, log_.term_at(prev), commit_, {}};
    if (pr.next <= last) req.entries.reserve(std::min<std::uint64_t>(distance(pr.next, last) + 1, cfg_.max_append_entries));
    std::size_t bytes = 0;
    take_entries_(req.entries, pr.next, bytes);
    if (pr.state == replication_state::replicate) {
      pr.next = prev.next() + req.entries.size();
      pr.inflight.add(pr.next.prev());
    } else {
      pr.probe_sent = true;
    }
    // What the follower may commit from this message (Figure 2, rule 5).
    pr.sent_commit = min(commit_, prev + req.entries.size());
    const bool has_entries = !req.entries.empty();
    send_(cfg_.voters[peer], std::move(req), out);
    if (pr.state == replication_state::replicate && has_entries) {
      pr.pending_out = &out;
      pr.pending_msg = out.messages.size() - 1;
      pr.pending_bytes = bytes;
    }
    return true;
  }

  /// Appends log entries from `from` on to `entries`, within
  /// max_append_entries and max_append_bytes (`bytes` counts the payload bytes
  /// already in the message; an empty message always takes one entry).
  /// Returns how many were added.
  std::size_t take_entries_(std::vector<entry_type>& entries, index_t from, std::size_t& bytes) const {
    const index_t last = log_.last_index();
    std::size_t added = 0;
    for (index_t i = from; i <= last && entries.size() < cfg_.max_append_entries; i = i.next()) {
      const entry_type& e = log_.entry_at(i);
      const std::size_t sz = Transport::payload_size(e.data);
      if (!entries.empty() && bytes + sz > cfg_.max_append_bytes) break;
      bytes += sz;
      entries.push_back(e);
      ++added;
    }
    return added;
  }

  /// Batching across calls: if the newest AppendEntries to this follower is
  /// still in `out` (the caller has not taken it yet) and ends right before
  /// pr.next, new entries join it instead of making another message. Many
  /// propose() calls whose output is sent together thus cost one message per
  /// follower, like one propose_batch(). Returns whether it extended one.
  bool extend_pending_(std::size_t peer, progress& pr, output_type& out) {
    const index_t last = log_.last_index();
    if (pr.pending_out != &out || pr.pending_msg >= out.messages.size()) return false;
    if (pr.next > last || pr.next <= log_.snapshot_index() || pr.inflight.count() == 0 ||
        pr.inflight.last() != pr.next.prev())
      return false;
    auto& m = out.messages[pr.pending_msg];
    auto* req = std::get_if<append_request<payload>>(&m.body);
    if (req == nullptr || !(m.to == cfg_.voters[peer]) || !(m.from == cfg_.id) || m.term != term_ ||
        req->entries.empty() || req->entries.back().index != pr.next.prev())
      return false;
    const std::size_t added = take_entries_(req->entries, pr.next, pr.pending_bytes);
    if (added == 0) return false;  // that message is full: a new one, within the window
    pr.next = pr.next + added;
    pr.inflight.extend_last(pr.next.prev());
    req->commit = commit_;
    pr.sent_commit = min(commit_, pr.next.prev());
    return true;
  }

  /// An empty AppendEntries anchored at the follower's match index, which it
  /// is guaranteed to hold: carries the commit index, never fails the
  /// consistency check, never disturbs the stream of entries in flight.
  void send_commit_(std::size_t peer, progress& pr, output_type& out) {
    if (pr.match < log_.snapshot_index()) return;  // cannot anchor it; the follower needs the snapshot
    pr.sent_commit = min(commit_, pr.match);
    send_(cfg_.voters[peer], append_request<payload>{pr.match, log_.term_at(pr.match), commit_, {}}, out);
  }

  /// Sends the commit index to a follower that could commit more than it was
  /// last told.
  void maybe_send_commit_(std::size_t peer, progress& pr, output_type& out) {
    if (min(commit_, pr.match) > pr.sent_commit) send_commit_(peer, pr, out);
  }

  void broadcast_heartbeat_(leader_state& l, output_type& out) {
    const std::size_t self = self_index_();
    for (std::size_t i = 0; i < l.peers.size(); ++i) {
      if (i == self) continue;
      auto& pr = l.peers[i];
      if (pr.state == replication_state::probe) {
        // The heartbeat is the probe: re-send it whether or not the last one
        // was answered (it may have been lost).
        pr.probe_sent = false;
        send_append_(i, pr, out);
        continue;
      }
      if (pr.state == replication_state::snapshot) {
        // No acknowledgement since the last heartbeat: chunks were lost (or
        // the follower is gone). Resend from the last acknowledged offset;
        // the chunk also serves as the heartbeat.
        if (++pr.stalled_heartbeats >= 2) pr.rewind_snapshot(pr.snap_acked);
        send_snapshot_(i, pr, out);
        continue;
      }
      // Replicate: entries in flight but no progress for two heartbeats means
      // messages were lost; fall back to probing from the known match.
      if (pr.inflight.count() > 0 && ++pr.stalled_heartbeats >= 2) {
        pr.become_probe();
        send_append_(i, pr, out);
        continue;
      }
      if (!send_append_(i, pr, out)) send_commit_(i, pr, out);
    }
  }

  config_type cfg_;
  Log log_;
  Clock clock_;
  Random rng_;

  term_t term_;                   // mirrors log_.hard_state().term
  std::optional<node_id> vote_;   // mirrors log_.hard_state().vote
  std::optional<node_id> leader_;
  index_t commit_;
  index_t applied_;
  role_state role_;
  std::uint32_t election_elapsed_ = 0;
  std::uint32_t randomized_timeout_ = 0;
  std::uint32_t heartbeat_elapsed_ = 0;
  std::size_t self_idx_ = 0;  // position of cfg_.id in cfg_.voters
  majority_config<node_id> quorum_;  // cfg_.voters
  bool pending_restore_ = false;

  struct snapshot_rx {
    index_t index;
    term_t term;
    std::uint64_t total;
    raft::bytes data;  // total bytes, filled up to `received`
    std::uint64_t received;
  };
  std::optional<snapshot_rx> rx_;  // follower: the snapshot being received
};

}  // namespace v0
}  // namespace raft
