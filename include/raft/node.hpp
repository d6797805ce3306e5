// raft/node.hpp - raft::node, the Raft state machine: its interface and state.
//
// Design
// ------
// A node is a pure, deterministic state machine. These inputs drive it:
//
//   tick(out)               time passed (one logical tick: elections, heartbeats)
//   step(msg, out)          a message from a peer arrived
//   propose(cmd, out)       a client asks the leader to replicate a command
//   persisted(write, out)   the caller made the node's Log writes durable, up to `write`
//   read_index(id, out)     a client wants a linearizable read (answered in a later out.reads)
//   transfer_leadership(to, out), report_unreachable(peer, out), report_snapshot(peer, ok, out)
//
// Each call appends what it produced to an output (raft/output.hpp): the Log
// write to make durable, messages to send, committed entries to apply, and
// role/term/leader changes. The node performs no I/O, reads no clock, starts
// no thread and owns every allocation it makes.
//
// Durability (thesis §10.2.1). The node writes its Log during a call; the
// call's output names that write (out.persist, a raft::log_write). The caller
// makes it durable whenever it likes - at once, or on another thread while
// the messages go out - and reports it with persisted(). Until then:
//   * a follower's append acknowledgement and a vote grant wait inside the
//     node (they promise durable state), and leave in the output of the
//     persisted() call that makes them true: sending one early is impossible;
//   * a leader replicates the new entries at once, but counts itself toward
//     the commit quorum only up to what was reported durable;
//   * a candidate counts its own vote only once its vote is durable.
// A Log that is durable when written (memory_log) declares durable_on_write
// and the node reports for itself: synchronous use needs no persisted() call.
//
// Flow of one proposal, 3 nodes (L leader, F followers):
//   L.propose(cmd)  -> L appends to its Log (out.persist), sends append_request
//                      to each F at once, before its own write is durable
//   F.step(append)  -> F checks prev_index/prev_term, appends (out.persist); its
//                      append_response waits for F.persisted(...)
//   L.step(resp)    -> L records F's match; once a majority of durable copies
//                      (L's own counted once L.persisted() reported it) holds
//                      an entry of the current term, L commits it (paper §5.4.2,
//                      Figure 8) and outputs it in `committed`
//   F.step(append)  -> F learns the commit index and outputs the entry
//
// Where to find things. This header declares the node; the rules live in
// raft/detail/, one file per concern:
//   detail/term_rules.hpp        step(): the §5.1 term rules, one row per message type
//   detail/validation.hpp        shape checks every incoming message must pass
//   detail/election.hpp          timeouts, campaign, votes, role changes (§5.2, §5.4.1)
//   detail/replication.hpp       leader: proposals, sending, acknowledgements, commit (§5.3, §5.4.2)
//   detail/follower_append.hpp   follower: the AppendEntries consistency check and truncation (§5.3)
//   detail/snapshot_transfer.hpp compaction and chunked InstallSnapshot (§7, thesis §5)
//   detail/durability.hpp        Log writes, persisted(), held acknowledgements (thesis §10.2.1)
//   detail/leadership.hpp        leadership transfer (thesis §3.10), forwarding, back-pressure, status()
//   detail/reads.hpp             ReadIndex and leases over heartbeat rounds (thesis §6.4, §6.4.1)
//   detail/membership_change.hpp membership from the log, changes, joint consensus, witnesses (thesis §4)
// Per-peer state lives in a tracker keyed by node id (raft/tracker.hpp) and
// every quorum question goes through raft/quorum.hpp, which takes a
// configuration (a majority, or joint).
//
// Roles are types: state that only a leader needs (the tracker) or only a
// candidate needs (the votes) lives in a role struct inside a std::variant,
// so other roles cannot touch it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "assert.hpp"
#include "clock.hpp"
#include "concepts.hpp"
#include "config.hpp"
#include "memory_log.hpp"
#include "membership.hpp"
#include "message.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "quorum.hpp"
#include "random.hpp"
#include "status.hpp"
#include "trace.hpp"
#include "tracker.hpp"
#include "transport.hpp"
#include "types.hpp"

namespace raft {
inline namespace v0 {

namespace detail {
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

/// Terms and indexes this large never occur in a real cluster (2^62 elections
/// or entries); refusing them keeps every counter far from overflow.
inline constexpr std::uint64_t counter_limit = std::uint64_t{1} << 62;
/// A message may raise the receiver's term by at most this much. A real
/// cluster never skips 2^32 terms at once (each term is an election timeout),
/// while without a bound one hostile message could push every member's term
/// to the limit, after which no election could ever be held again.
inline constexpr std::uint64_t max_term_jump = std::uint64_t{1} << 32;

/// A Trace policy that wants to be called.
template <class T>
inline constexpr bool trace_enabled = requires {
  requires static_cast<bool>(T::enabled);
};

/// A Log whose writes are durable when the call that made them returns.
template <class L>
inline constexpr bool durable_on_write = requires {
  requires static_cast<bool>(L::durable_on_write);
};
}  // namespace detail

template <class Transport = default_transport, class Log = memory_log<Transport>, class Clock = tick_clock,
          class Random = default_random, class Trace = no_trace>
class node {
  static_assert(check_transport<Transport>(), "raft::node: the Transport policy is incomplete (see the errors above)");
  static_assert(!transport<Transport> || check_log<Log, Transport>(),
                "raft::node: the Log policy is incomplete (see the errors above)");
  static_assert(check_clock<Clock>(), "raft::node: the Clock policy is incomplete (see the errors above)");
  static_assert(check_random<Random>(), "raft::node: the Random policy is incomplete (see the errors above)");
  static_assert(requires { { Trace::enabled } -> std::convertible_to<bool>; },
                "raft: the Trace policy needs 'static constexpr bool enabled' (false: never called; see raft/trace.hpp)");
  static_assert(!detail::trace_enabled<Trace> ||
                    requires(Trace& t, const trace_event<typename Transport::node_id>& e) { t(e); },
                "raft: the Trace policy needs 'void operator()(const raft::trace_event<node_id>&)' when enabled");

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
  using status_type = node_status<node_id>;
  using trace_event_type = trace_event<node_id>;
  using membership_type = raft::membership<node_id>;
  using conf_change_type = raft::conf_change<node_id>;
  using change_result_type = raft::change_result<node_id>;

  /// Whether the Log is durable when written (then persisted() is never needed).
  static constexpr bool log_durable_on_write = detail::durable_on_write<Log>;

  /// Builds a node from its configuration and its durable state. A node
  /// restarting after a crash is built from what its Log made durable: it
  /// resumes with that term, vote and log, as a follower, and counts all of
  /// it as durable. A config that fails validate(), or a Log that contradicts
  /// itself, is refused with std::invalid_argument saying what to fix.
  explicit node(config_type cfg, Log log = Log{}, Clock clock = Clock{}, Random rng = Random{}, Trace trace = Trace{});

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
  [[nodiscard]] index_t last_index() const { return log_->last_index(); }
  /// The Log is durable up to this index (as reported through persisted()).
  [[nodiscard]] index_t durable_index() const noexcept { return durable_index_; }
  /// The newest write issued, and the newest reported durable (0: none).
  [[nodiscard]] std::uint64_t last_write() const noexcept { return write_seq_; }
  [[nodiscard]] std::uint64_t durable_write() const noexcept { return durable_seq_; }
  [[nodiscard]] const config_type& config() const noexcept { return cfg_; }
  [[nodiscard]] const quorum_config<node_id>& voters() const noexcept { return conf_; }
  /// The membership this node uses: the newest configuration in its log,
  /// committed or not (thesis §4.1), else its snapshot's, else config.voters.
  [[nodiscard]] const membership_type& configuration() const noexcept { return members_; }
  /// Index of the entry that set configuration() (the snapshot index, or 0
  /// for the bootstrap membership). Committed once commit_index() reaches it.
  [[nodiscard]] index_t configuration_index() const noexcept { return conf_index_; }
  [[nodiscard]] const Log& log() const noexcept { return *log_; }
  /// Mutable access for flushing a write-back Log. Writing entries or hard
  /// state through it behind the node's back breaks Raft.
  [[nodiscard]] Log& log() noexcept { return *log_; }
  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }
  [[nodiscard]] const Trace& tracer() const noexcept { return tracer_; }
  [[nodiscard]] Trace& tracer() noexcept { return tracer_; }
  /// A snapshot of the node's state, with the leader's view of every peer:
  /// plain values, safe to keep and to print (raft/status.hpp).
  [[nodiscard]] status_type status() const;
  /// Leader: whether a lease read would be answered at once now.
  [[nodiscard]] bool lease_valid() const noexcept;
  /// Leader only: the replication progress of peer `peer` (nullptr otherwise).
  [[nodiscard]] const progress* progress_of(const node_id& peer) const noexcept {
    const auto* l = std::get_if<leader_state>(&role_);
    return l == nullptr ? nullptr : l->peers.find(peer);
  }

  // ---------------------------------------------------------------- inputs

  /// One logical tick. Followers and candidates count toward an election
  /// timeout; a leader counts toward its next heartbeat.
  void tick(output_type& out);

  /// Starts an election now (paper §5.2), as if the election timeout had
  /// elapsed. Useful to choose the first leader in tests and benchmarks. A
  /// leader ignores it.
  void campaign(output_type& out);

  /// Appends `cmd` to the leader's log and starts replicating it at once.
  /// On a non-leader nothing happens and the result says who the leader is.
  [[nodiscard]] propose_result_type propose(payload cmd, output_type& out);

  /// Appends every command of `cmds` (a forward range of payloads, moved from
  /// if it is an rvalue range) and replicates them together: one AppendEntries per
  /// follower for the whole batch, within the flow-control limits. An empty
  /// range appends nothing and returns empty_batch.
  template <class Range>
  [[nodiscard]] propose_result_type propose_batch(Range&& cmds, output_type& out);

  /// Log compaction (paper §7): the application hands over a snapshot of its
  /// state machine covering every entry up to `upto`, which must already have
  /// been handed out for applying (and applied: an `out` that still holds
  /// those committed entries is refused). The Log stores it and drops the
  /// entries it covers; followers that need them later get the snapshot.
  /// This is a Log write like any other (out.persist).
  [[nodiscard]] compact_status compact(index_t upto, raft::bytes data, output_type& out);

  /// Leadership transfer (thesis §3.10): the leader stops taking proposals
  /// (propose_status::transferring), brings `to` up to date, and tells it to
  /// campaign at once (TimeoutNow). out.transfers reports the start, and later
  /// the success (this node hears from `to` as leader of a newer term) or the
  /// abort (not done within an election timeout). A transfer to another
  /// target replaces the one under way (which is reported aborted).
  [[nodiscard]] transfer_status transfer_leadership(const node_id& to, output_type& out);

  /// Membership change (thesis §4): the leader appends a configuration entry
  /// holding the membership after `change` (raft/membership.hpp) and uses it
  /// at once; so does every node that receives it. A change of one voter
  /// (any number of learner changes) is applied directly; a larger one, or
  /// one asking for transition::joint*, enters a joint configuration in
  /// which every decision needs a majority of the old voters and of the new,
  /// left automatically once committed (or by leave_joint()). Refused (and
  /// nothing appended) unless this node leads, the previous change is
  /// committed and the leader committed an entry of its own term (the
  /// correction to single-server changes, thesis §4.1); see change_status.
  [[nodiscard]] change_result_type change_membership(const conf_change_type& change, output_type& out);

  /// Leaves a joint configuration entered with transition::joint_explicit.
  [[nodiscard]] change_result_type leave_joint(output_type& out);

  /// A linearizable read without a log entry (thesis §6.4). On the leader:
  /// the read index is the commit index (once the leader committed an entry
  /// of its term), confirmed by one heartbeat round that every read waiting
  /// at that moment shares; on a follower: the leader is asked for it. When
  /// safe, out.reads holds {id, index}: serve the read once the state machine
  /// applied through index. If the node loses track of it (leadership or
  /// leader changed), out.failed_reads holds id. `id` is the caller's; it is
  /// echoed, never interpreted. read_mode::lease answers at once while the
  /// leader's lease holds (config.lease_reads); a follower's read is always
  /// confirmed by the leader's heartbeat round.
  [[nodiscard]] read_status read_index(std::uint64_t id, output_type& out, read_mode mode = read_mode::read_index);

  /// The caller's transport could not deliver to `peer`: the leader stops
  /// streaming to it and probes it instead (one message per heartbeat) until
  /// it answers.
  void report_unreachable(const node_id& peer, output_type& out);

  /// How sending a snapshot to `peer` ended, as the caller's transport saw
  /// it. `delivered == false`: the leader resends from the last acknowledged
  /// offset at once instead of waiting for two silent heartbeats.
  void report_snapshot(const node_id& peer, bool delivered, output_type& out);

  /// Handles a message from a peer. Whatever the message says, the node stays
  /// consistent: bad or stale input is ignored (or answered with a rejection)
  /// and reported in the returned status.
  [[nodiscard]] step_status step(message_type m, output_type& out);

  /// The caller made every Log write up to and including `w` durable (`w` is
  /// an out.persist this node produced; writes become durable in order, so
  /// reporting the newest of several covers them all). Releases the
  /// acknowledgements and votes that waited for it, and lets a leader count
  /// its own copy toward commitment. A report for entries truncated since
  /// counts only for the prefix the log still shares with them.
  [[nodiscard]] persist_status persisted(const log_write& w, output_type& out);

 private:
  struct follower_state {};
  struct pre_candidate_state {
    std::vector<std::pair<node_id, bool>> votes;  // pre-vote answers received, by voter
  };
  struct candidate_state {
    std::vector<std::pair<node_id, bool>> votes;  // answers received, by voter
    std::uint64_t self_vote_write = 0;            // the write that holds our own vote
  };
  struct pending_read {
    std::uint64_t id;            // the caller's id, or the asking follower's context
    index_t index;               // the read index (0: not yet known, waiting for a commit in our term)
    std::uint64_t round;         // confirmed once a quorum answered this round
    std::optional<node_id> from; // a follower asked for it
  };
  struct leader_state {
    tracker<node_id> peers;  // every member but this node (and removed ones until their removal commits)
    std::uint64_t ticks = 0; // ticks since it became leader (CheckQuorum's clock)
    // Leadership transfer (thesis §3.10).
    std::optional<node_id> transfer_to;
    std::uint32_t transfer_elapsed = 0;
    bool sent_timeout_now = false;  // in this term: no more lease reads (see reads.hpp)
    // Heartbeat rounds (ReadIndex, leases): every append_request carries
    // `round`; a quorum echoing round r confirms every read waiting for r.
    std::uint64_t round = 1;
    std::uint64_t confirmed_round = 0;
    bool round_wanted = false;                                  // reads wait for a round not yet begun
    std::vector<std::pair<std::uint64_t, std::uint64_t>> round_start;  // (round, clock when begun), recent ones
    std::vector<pending_read> reads;
    bool committed_in_term = false;      // an entry of our term is committed (thesis §6.4 step 1)
    index_t conf_seen_committed;         // the newest configuration entry seen committed, and the
    std::uint64_t conf_committed_at = 0; // tick it was seen: removed peers are dropped one election timeout later
    std::uint64_t uncommitted_bytes = 0; // back-pressure (config.max_uncommitted_bytes)
  };
  // Order matches raft::role.
  using role_state = std::variant<follower_state, pre_candidate_state, candidate_state, leader_state>;

  struct pending_write {
    std::uint64_t seq;
    index_t last_index;    // as the write left the Log (checked against reports)
    term_t last_term;
    index_t durable_upto;  // what a report of it proves durable today (capped by later truncations)
  };
  struct held_message {
    std::uint64_t needs;  // sent once this write is durable
    message_type msg;
  };
  struct snapshot_rx {
    node_id from;
    term_t msg_term;  // term of the leader that sends it
    index_t index;
    term_t term;
    std::uint64_t total;
    raft::bytes data;  // total bytes, filled up to `received`
    std::uint64_t received;
  };

  // -------------------------------------------------- detail/term_rules.hpp
  template <class Body>
  void answer_stale_(const node_id& from, const Body& body, output_type& out);

  // -------------------------------------------------- detail/validation.hpp
  [[nodiscard]] bool well_formed_(const message_type& m) const;

  // ---------------------------------------------------- detail/election.hpp
  void pre_campaign_(output_type& out);
  void campaign_(bool transfer, output_type& out);
  bool leader_active_() const noexcept;
  bool maybe_win_pre_vote_(output_type& out);
  step_status on_pre_vote_request_(const node_id& from, term_t msg_term, const pre_vote_request& req, output_type& out);
  step_status on_pre_vote_response_(const node_id& from, term_t msg_term, const pre_vote_response& resp,
                                    output_type& out);
  void check_quorum_(leader_state& l, output_type& out);
  void heard_from_(progress& pr) { pr.last_heard = std::get<leader_state>(role_).ticks; }
  bool recently_active_(const leader_state& l, const progress& pr) const noexcept {
    return l.ticks - pr.last_heard < cfg_.election_ticks;
  }
  /// Heard from a leader less than an election timeout ago (stickiness, PreVote).
  bool heard_leader_recently_() const noexcept {
    return leader_.has_value() && election_elapsed_ < cfg_.election_ticks;
  }
  void reset_election_timer_();
  void become_follower_(term_t t, std::optional<node_id> leader, output_type* out);
  void become_leader_(output_type& out);
  bool maybe_win_(output_type& out);
  step_status on_vote_request_(const node_id& from, const vote_request& req, output_type& out);
  step_status on_vote_response_(const node_id& from, const vote_response& resp, output_type& out);
  void record_change_(output_type& out) { out.changes.push_back({role(), term_, leader_}); }

  // ------------------------------------------------- detail/replication.hpp
  propose_result_type not_leader_() const { return {propose_status::not_leader, {}, {}, leader_}; }
  void append_own_(entry_kind kind, payload data);
  bool maybe_commit_(leader_state& l, output_type& out);
  void after_commit_(leader_state& l, output_type& out);
  void replicate_(leader_state& l, output_type& out);
  bool send_append_(const node_id& to, progress& pr, output_type& out);
  std::size_t take_entries_(std::vector<entry_type>& entries, index_t from, std::size_t& bytes, bool strip) const;
  bool extend_pending_(const node_id& to, progress& pr, output_type& out);
  void send_commit_(const node_id& to, progress& pr, output_type& out);
  void maybe_send_commit_(const node_id& to, progress& pr, output_type& out);
  void send_entries_or_commit_(const node_id& to, progress& pr, output_type& out);
  void broadcast_heartbeat_(leader_state& l, output_type& out);
  step_status on_append_response_(const node_id& from, const append_response& resp, output_type& out);
  [[nodiscard]] std::optional<index_t> last_index_of_term_(term_t t, index_t upto) const;

  // ---------------------------------------------------- detail/leadership.hpp
  void abort_transfer_(leader_state& l, output_type& out);
  void report_transfer_(const node_id& target, transfer_outcome how, output_type& out);
  void maybe_send_timeout_now_(leader_state& l, const node_id& to, progress& pr, output_type& out);
  step_status on_timeout_now_(const node_id& from, output_type& out);
  void watch_transfer_(const node_id& leader, output_type& out);
  step_status on_forward_proposal_(const node_id& from, forward_proposal<payload>& req, output_type& out);
  bool admit_bytes_(leader_state& l, std::uint64_t bytes);

  // --------------------------------------------------------- detail/reads.hpp
  void begin_round_(leader_state& l);
  void start_round_(leader_state& l, output_type& out);
  void send_heartbeat_(const node_id& to, progress& pr, output_type& out);
  void send_empty_append_(const node_id& to, index_t at, output_type& out);
  void round_answered_(leader_state& l, progress* pr, std::uint64_t round, output_type& out);
  void release_reads_(leader_state& l, output_type& out);
  void leader_read_(leader_state& l, std::uint64_t id, std::optional<node_id> from, read_mode mode, output_type& out);
  void answer_read_(const pending_read& r, index_t index, output_type& out);
  void fail_reads_(output_type& out);
  void release_follower_reads_(output_type& out);
  void resend_read_requests_(output_type& out);
  step_status on_read_index_request_(const node_id& from, const read_index_request& req, output_type& out);
  step_status on_read_index_response_(const node_id& from, const read_index_response& resp, output_type& out);

  // --------------------------------------------- detail/follower_append.hpp
  bool heard_from_leader_(const node_id& from, output_type& out);
  step_status on_append_request_(const node_id& from, append_request<payload>& req, output_type& out);
  [[nodiscard]] index_t first_index_of_term_(term_t t, index_t from) const;

  // ------------------------------------------- detail/snapshot_transfer.hpp
  bool send_snapshot_(const node_id& to, progress& pr, output_type& out);
  step_status on_install_snapshot_(const node_id& from, term_t msg_term, install_snapshot& req, output_type& out);
  step_status on_snapshot_response_(const node_id& from, const snapshot_response& resp, output_type& out);

  // --------------------------------------------------- detail/durability.hpp
  void begin_(output_type& out);
  void set_hard_state_(term_t t, std::optional<node_id> vote, output_type& out);
  void log_truncate_after_(index_t i, output_type& out);
  void log_install_snapshot_(const raft::snapshot& snap, output_type& out);
  void wrote_(output_type& out);
  void truncated_(index_t keep);
  void mark_durable_(std::uint64_t seq);
  template <class Body>
  void send_durable_(const node_id& to, Body&& body, output_type& out);
  void emit_committed_(output_type& out);

  // ------------------------------------------- detail/membership_change.hpp
  void load_membership_();
  [[nodiscard]] membership_type bootstrap_members_() const;
  [[nodiscard]] std::optional<change_status> change_refused_(const leader_state& l) const;
  void conf_appended_(const entry_type& e);
  void conf_truncated_(index_t keep);
  void conf_snapshot_(const raft::snapshot& snap, bool keeps_suffix);
  [[nodiscard]] const membership_type& membership_at_(index_t i) const;
  [[nodiscard]] bool was_witness_(const node_id& id) const;
  [[nodiscard]] raft::bytes encoded_membership_at_(index_t i) const;
  void refresh_conf_();
  void sync_peers_(leader_state& l);
  void tidy_membership_(leader_state& l, output_type& out);
  change_result_type append_config_(membership_type next, const raft::bytes& context, output_type& out);
  /// May this node campaign? A voter of its newest configuration that is not
  /// a witness; and, while that configuration is not committed, a full
  /// voter of the one before it (thesis §4.2.2: a server the new
  /// configuration leaves out may still be needed to commit it). Learners,
  /// witnesses and removed servers never campaign.
  [[nodiscard]] bool promotable_() const noexcept {
    return self_witness_ ? false : self_voter_ || (self_prev_voter_ && conf_index_ > commit_);
  }
  [[nodiscard]] progress new_progress_() const;

  // ----------------------------------------------------------------- misc
  template <class Body>
  void send_(const node_id& to, Body&& body, output_type& out) {
    out.messages.push_back(message_type{cfg_.id, to, term_, std::forward<Body>(body)});
  }
  /// Builds and reports a trace event, only if the Trace policy is enabled.
  void trace_(trace_kind kind, std::optional<node_id> peer = std::nullopt, std::uint64_t index = 0) {
    if constexpr (Trace::enabled) tracer_(trace_event_type{kind, term_, std::move(peer), index});
    else (void)kind, (void)peer, (void)index;
  }
  [[nodiscard]] term_t last_term_() const { return log_->term_at(log_->last_index()); }
  static const entry_type& entry_at_thunk_(const void* log, index_t i) {
    return static_cast<const Log*>(log)->entry_at(i);
  }
  static index_t first_index_thunk_(const void* log) { return static_cast<const Log*>(log)->first_index(); }

  config_type cfg_;
  // Membership (detail/membership_change.hpp): the configuration as of the
  // snapshot (or the bootstrap one), then every configuration entry in the
  // log after it, oldest first. members_ is the newest of them, conf_ its
  // quorum rules; both change only through refresh_conf_().
  struct conf_point {
    index_t index;
    membership_type members;
  };
  membership_type base_members_;
  std::vector<conf_point> conf_log_;
  membership_type members_;
  index_t conf_index_;
  quorum_config<node_id> conf_;
  bool self_voter_ = false;    // this node votes in conf_ (either set)
  bool self_witness_ = false;  // this node is (or its log shows it was) a witness: it never campaigns
  bool self_prev_voter_ = false;  // a full voter of the configuration before members_ (see promotable_())
  bool self_quorum_ = false;   // this node alone is a quorum of conf_
  // On the heap: out.committed reads entries in place, and must stay valid
  // when the node itself moves (e.g. a std::vector<node> grows).
  std::unique_ptr<Log> log_;
  Clock clock_;
  Random rng_;
  Trace tracer_;

  term_t term_;                  // mirrors log_->hard_state().term
  std::optional<node_id> vote_;  // mirrors log_->hard_state().vote
  std::optional<node_id> leader_;
  index_t commit_;
  index_t applied_;
  role_state role_;
  std::uint32_t election_elapsed_ = 0;
  std::uint32_t randomized_timeout_ = 0;
  std::uint32_t heartbeat_elapsed_ = 0;
  bool pending_restore_ = false;

  // Durability bookkeeping (detail/durability.hpp).
  std::uint64_t write_seq_ = 0;    // newest write issued
  std::uint64_t durable_seq_ = 0;  // newest write reported durable
  bool write_open_ = false;        // the current call already opened write_seq_
  index_t durable_index_;          // the log is durable up to here
  std::vector<pending_write> pending_;  // writes issued, not yet reported (oldest first)
  std::vector<held_message> held_;      // promises waiting for durability

  std::optional<snapshot_rx> rx_;  // follower: the snapshot being received

  // Reads a follower asked the leader about (by id), and those answered,
  // waiting to be applied through their index.
  struct read_asked {
    std::uint64_t id;
    std::uint32_t age;  // ticks since the request was last sent
  };
  std::vector<read_asked> reads_asked_;
  std::vector<read_state> reads_ready_;
  // A transfer this node started as leader, watched after it stepped down.
  struct transfer_watch {
    node_id target;
    term_t term;  // the term it was leader in
    std::uint32_t elapsed;
  };
  std::optional<transfer_watch> watch_;
  // With lease reads: ticks since start; votes are refused for the first
  // election_ticks (a lease this node acknowledged before a restart may hold).
  std::uint32_t since_start_ = 0;
};

}  // namespace v0
}  // namespace raft

#include "detail/durability.hpp"
#include "detail/election.hpp"
#include "detail/follower_append.hpp"
#include "detail/leadership.hpp"
#include "detail/membership_change.hpp"
#include "detail/reads.hpp"
#include "detail/replication.hpp"
#include "detail/snapshot_transfer.hpp"
#include "detail/term_rules.hpp"
#include "detail/validation.hpp"
