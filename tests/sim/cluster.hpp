// tests/sim/cluster.hpp - a deterministic cluster simulator with invariant checks.
//
// Virtual time advances in units; every `units_per_tick` units each live node
// gets one tick(). A message sent at time t is delivered at t + delay (random
// in [min_delay, max_delay] units) unless the network drops it; it may also be
// duplicated. Links can be cut (partitions) and nodes crashed.
//
// Each node has a simulated disk. Every Log write the node makes is recorded
// as operations (save hard state, append, truncate, install snapshot) in a
// queue; the disk applies them to a durable image when the write is flushed,
// and only then does the simulator report it with node::persisted(). In
// synchronous mode a write is flushed as soon as the call that made it
// returns, before its messages are sent; in asynchronous mode each flush takes
// a random delay (in order) while the messages go out at once. A crash throws
// the node and its state machine away and keeps only the durable image - plus,
// with `torn_crashes`, a random prefix of the operations still in flight (a
// disk writes in order but may stop anywhere). A restart builds a new node
// from that image.
//
// After every event the checker verifies the paper's safety properties
// (Figure 3): Election Safety, Leader Append-Only, Log Matching, Leader
// Completeness and State Machine Safety, plus gapless exactly-once application.
// A violation throws sim::violation with a description; every run is a pure
// function of its seed.
//
// Clients. propose_at() records a client write; it completes when the node
// that proposed it applies the entry at the proposal's index with the
// proposal's term (the client learns it committed). read_at() issues a read
// (node::read_index) with a fresh id; it completes when that node's output
// lists it in `reads` - it observes the node's applied index at that moment,
// after the output's snapshot and committed entries were applied - or fails
// with no value (`failed_reads`, or a refusal). Every completed read is
// checked for linearizability against the writes and reads that completed
// before it began (tests/sim/history.hpp explains why that check is exact).
//
// Membership (thesis §4). The cluster starts with voters 1..nodes
// (options::witnesses among them are bootstrap witnesses). add_node(id)
// starts a brand-new node with empty storage and config.voters empty: it
// joins once a change adds it and learns the membership from the leader.
// change_at() / leave_joint_at() ask a node to change the membership. A
// removed node stays simulated (it keeps ticking, and may campaign) unless
// the scenario stop()s it. Nodes added as witnesses (by a change, or at
// bootstrap: any configuration entry that any log ever held names them) hold
// no command payloads; the checks take that into account:
//  * Election Safety per term across every node ever started; no witness
//    leads; no learner, witness or non-member campaigns (thesis §4.2.1);
//  * Log Matching compares (index, term, kind, conf) between every pair of
//    nodes and the payloads only between non-witnesses; a witness never
//    holds a command payload and a non-witness never lacks one; two logs
//    holding the config entry at the same (index, term) decode it to the
//    same membership;
//  * every node uses the newest configuration in its log, committed or not
//    (thesis §4.1): configuration() is the newest config entry's, else its
//    snapshot's, else its bootstrap one;
//  * Leader Completeness and State Machine Safety over the non-witnesses
//    (witnesses are checked on (index, term, kind, conf) of what they apply);
//  * the witness invariant: every index ever committed (the largest commit
//    index any node reported) is held in full, in the durable image (log,
//    or a snapshot that covers it), of at least one non-witness node:
//    nothing committed lives on witnesses alone.
#pragma once

#include <raft/raft.hpp>

#include "history.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace sim {

using raft::index_t;
using raft::term_t;
using node_id = std::uint64_t;

/// One Log write operation, as the simulated disk sees it.
struct disk_op {
  enum kind_t { hard_state, append, truncate, snapshot } kind;
  raft::hard_state<std::uint64_t> hs;
  raft::entry<raft::bytes> e;
  index_t at;
  raft::snapshot snap;
};

/// memory_log that is NOT durable on write (it models a disk): every write is
/// journaled for the simulated disk. Plus bookkeeping the checker needs: how
/// far back the log was truncated since the checker last looked.
class sim_log : public raft::memory_log<> {
  using base = raft::memory_log<>;

 public:
  static constexpr bool durable_on_write = false;

  sim_log() = default;
  explicit sim_log(base b) : base(std::move(b)) {}

  void save_hard_state(const raft::hard_state<std::uint64_t>& hs) {
    base::save_hard_state(hs);
    journal.push_back(disk_op{disk_op::hard_state, hs, {}, {}, {}});
  }
  void append(raft::entry<raft::bytes>&& e) {
    journal.push_back(disk_op{disk_op::append, {}, e, {}, {}});
    base::append(std::move(e));
  }
  void truncate_after(index_t i) {
    if (i < last_index()) {
      ++truncations;
      if (!lowest_truncation || i < *lowest_truncation) lowest_truncation = i;
    }
    base::truncate_after(i);
    journal.push_back(disk_op{disk_op::truncate, {}, {}, i, {}});
  }
  void install_snapshot(const raft::snapshot& snap) {
    base::install_snapshot(snap);
    journal.push_back(disk_op{disk_op::snapshot, {}, {}, {}, snap});
  }
  std::uint64_t truncations = 0;
  std::optional<index_t> lowest_truncation;  // reset by the checker
  std::vector<disk_op> journal;              // written since the simulator last looked
};

/// Applies one operation to a durable image.
inline void apply_op(raft::memory_log<>& img, const disk_op& op) {
  switch (op.kind) {
    case disk_op::hard_state: img.save_hard_state(op.hs); break;
    case disk_op::append: img.append(op.e); break;
    case disk_op::truncate: img.truncate_after(op.at); break;
    case disk_op::snapshot: img.install_snapshot(op.snap); break;
  }
}

enum class durability { sync, async };

using node_type = raft::node<raft::default_transport, sim_log>;
using message_type = node_type::message_type;
using output_type = node_type::output_type;
using entry_type = node_type::entry_type;

struct options {
  std::size_t nodes = 3;
  std::uint64_t seed = 1;
  std::uint32_t units_per_tick = 10;
  std::uint32_t min_delay = 1;  ///< in units
  std::uint32_t max_delay = 3;
  double drop = 0.0;       ///< probability a message is lost
  double duplicate = 0.0;  ///< probability a message is delivered twice
  std::uint32_t election_ticks = 10;
  std::uint32_t heartbeat_ticks = 1;
  std::uint32_t max_inflight = 64;
  std::size_t max_append_bytes = 64 * 1024;
  std::uint32_t max_append_entries = 64;
  /// Each node compacts its log once it applied this many entries past its
  /// last snapshot (0: never).
  std::uint64_t snapshot_every = 0;
  /// Padding added to every snapshot so that it spans several chunks.
  std::size_t snapshot_padding = 0;
  std::size_t snapshot_chunk_bytes = 64;
  std::uint32_t max_snapshot_inflight = 4;
  /// sync: each write is durable (and reported) before its output's messages
  /// are sent. async: writes take [1, max_disk_delay] units to become durable,
  /// in order, while messages go out at once.
  durability disk = durability::sync;
  std::uint32_t max_disk_delay = 20;
  /// A crash also keeps a random prefix of the operations still in flight.
  bool torn_crashes = false;
  /// async: this node's flushes take slow_disk_delay units instead (0: none).
  std::uint64_t slow_disk_node = 0;
  std::uint32_t slow_disk_delay = 200;
  // The liveness and read features (raft::config fields of the same names).
  bool pre_vote = true;
  bool check_quorum = true;
  bool lease_reads = false;
  std::uint32_t max_clock_drift_ticks = 2;
  std::uint64_t max_uncommitted_bytes = 0;
  std::uint64_t max_inflight_bytes = 0;
  bool forward_proposals = false;
  /// Bootstrap witnesses among the voters 1..nodes (config.witnesses).
  std::vector<std::uint64_t> witnesses{};
};

class cluster {
 public:
  explicit cluster(options o) : opt_(o), rng_state_(o.seed * 0x9e3779b97f4a7c15ull + 1), hist_(o.seed) {
    for (std::size_t i = 1; i <= opt_.nodes; ++i) voters_.push_back(i);
    const std::size_t n = opt_.nodes;
    opt_.nodes = 0;
    grow_(n);
    for (auto w : opt_.witnesses) mark_witness_(w);
    for (node_id i = 1; i <= n; ++i) {
      boot_voters_[i] = voters_;
      start_(i, raft::memory_log<>{});
    }
  }

  // ------------------------------------------------------------ topology

  /// Highest node id (ids run 1..size(); add_node() raises it).
  [[nodiscard]] std::size_t size() const { return opt_.nodes; }
  [[nodiscard]] bool up(node_id i) const { return i >= 1 && i <= opt_.nodes && nodes_[i].has_value(); }
  [[nodiscard]] node_type& node(node_id i) { return *nodes_[i]; }
  [[nodiscard]] const node_type& node(node_id i) const { return *nodes_[i]; }
  [[nodiscard]] std::uint64_t now() const { return now_; }
  [[nodiscard]] std::uint64_t ticks() const { return now_ / opt_.units_per_tick; }
  options& opts() { return opt_; }

  void set_link(node_id a, node_id b, bool on) {
    links_[link_(a, b)] = on;
    links_[link_(b, a)] = on;
  }
  [[nodiscard]] bool linked(node_id a, node_id b) const {
    return a >= 1 && b >= 1 && a <= opt_.nodes && b <= opt_.nodes && links_[link_(a, b)];
  }
  /// Cuts or restores one direction only: messages from `from` to `to`.
  void set_link_one_way(node_id from, node_id to, bool on) { links_[link_(from, to)] = on; }
  /// Messages from `from` to `to` sent from now on take `extra` more units
  /// (0: back to normal). heal() does not reset it.
  void set_delay(node_id from, node_id to, std::uint32_t extra) { link_delay_[link_(from, to)] = extra; }
  /// Cuts every link of `i`.
  void isolate(node_id i) {
    for (node_id j = 1; j <= opt_.nodes; ++j)
      if (j != i) set_link(i, j, false);
  }
  /// Restores every link of `i` (to nodes that are not isolated themselves is
  /// the caller's business: this reconnects i to everyone).
  void connect(node_id i) {
    for (node_id j = 1; j <= opt_.nodes; ++j)
      if (j != i) set_link(i, j, true);
  }
  /// Splits the cluster: nodes within one group talk, across groups not.
  void partition(const std::vector<std::vector<node_id>>& groups) {
    links_.assign(links_.size(), false);
    for (const auto& g : groups)
      for (auto a : g)
        for (auto b : g) set_link(a, b, true);
  }
  void heal() { links_.assign(links_.size(), true); }

  /// The node loses everything but what its disk made durable (and, with
  /// torn_crashes, a random prefix of the writes in flight).
  void crash(node_id i) {
    if (!up(i)) return;
    auto& d = disks_[i];
    if (opt_.torn_crashes && !d.queue.empty()) {
      const std::uint64_t keep = rand(d.queue.size() + 1);
      for (std::uint64_t k = 0; k < keep; ++k) apply_op(d.image, d.queue[k].op);
      torn_ops_ += keep;
    }
    lost_ops_ += d.queue.size();
    d.queue.clear();
    d.flushes.clear();
    nodes_[i].reset();
    applied_[i].clear();
    // Its clients never hear back.
    for (auto id : pending_reads_[i]) hist_.abandon_read(id);
    pending_reads_[i].clear();
    for (const auto& [idx, w] : pending_writes_[i]) hist_.abandon_write(w.second);
    pending_writes_[i].clear();
    ++crashes_;
  }
  void restart(node_id i) {
    if (up(i) || !started_[i] || stopped_[i]) return;
    start_(i, disks_[i].image);
    check_(i);
  }
  /// Operations lost in crashes (written, never durable), and kept by torn crashes.
  [[nodiscard]] std::uint64_t lost_ops() const { return lost_ops_; }
  [[nodiscard]] std::uint64_t torn_ops() const { return torn_ops_; }

  // -------------------------------------------------------------- driving

  /// Advances virtual time by one unit: delivers the messages due, then ticks
  /// every live node if a tick boundary was reached.
  void step_unit() {
    ++now_;
    flush_disks_();
    while (!net_.empty() && net_.top().at <= now_) {
      in_flight f = net_.top();
      net_.pop();
      deliver_(std::move(f.msg));
    }
    if (now_ % opt_.units_per_tick == 0) {
      for (node_id i = 1; i <= opt_.nodes; ++i) {
        if (!up(i)) continue;
        nodes_[i]->tick(out_);
        process_(i);
      }
    }
  }
  void run_ticks(std::uint64_t n) {
    for (std::uint64_t k = 0; k < n * opt_.units_per_tick; ++k) step_unit();
  }
  /// Runs until `pred` holds (checked every unit) or `max_ticks` pass.
  bool run_until(const std::function<bool()>& pred, std::uint64_t max_ticks) {
    for (std::uint64_t k = 0; k < max_ticks * opt_.units_per_tick; ++k) {
      if (pred()) return true;
      step_unit();
    }
    return pred();
  }

  // -------------------------------------------------------------- queries

  /// The live leader with the highest term, if any.
  [[nodiscard]] std::optional<node_id> leader() const {
    std::optional<node_id> best;
    for (node_id i = 1; i <= opt_.nodes; ++i)
      if (up(i) && nodes_[i]->is_leader() && (!best || nodes_[i]->term() > nodes_[*best]->term())) best = i;
    return best;
  }
  /// Runs until some live node is leader; returns the one of highest term.
  std::optional<node_id> wait_leader(std::uint64_t max_ticks = 200) {
    std::optional<node_id> l;
    run_until(
        [&] {
          l = leader();
          return l.has_value();
        },
        max_ticks);
    return l;
  }
  /// The leader of the highest term among the live nodes of `group`, once
  /// there is one and no other node of the group leads in that term.
  std::optional<node_id> wait_leader_among(const std::vector<node_id>& group, std::uint64_t max_ticks = 200) {
    std::optional<node_id> l;
    run_until(
        [&] {
          l.reset();
          for (auto i : group)
            if (up(i) && nodes_[i]->is_leader() && (!l || nodes_[i]->term() > nodes_[*l]->term())) l = i;
          return l.has_value();
        },
        max_ticks);
    return l;
  }
  /// Live nodes of `group` that are leader.
  [[nodiscard]] std::vector<node_id> leaders_among(const std::vector<node_id>& group) const {
    std::vector<node_id> r;
    for (auto i : group)
      if (up(i) && nodes_[i]->is_leader()) r.push_back(i);
    return r;
  }
  /// Number of live nodes that consider themselves leader, per term.
  [[nodiscard]] std::map<term_t, int> leaders_by_term() const {
    std::map<term_t, int> m;
    for (node_id i = 1; i <= opt_.nodes; ++i)
      if (up(i) && nodes_[i]->is_leader()) ++m[nodes_[i]->term()];
    return m;
  }

  /// Entries applied by node i since its last (re)start, in order.
  [[nodiscard]] const std::vector<entry_type>& applied(node_id i) const { return applied_[i]; }
  /// Globally committed entries (index k at [k-1]) as first seen applied.
  [[nodiscard]] const std::vector<entry_type>& committed() const { return committed_; }
  /// Every node is up and applied every globally committed entry.
  [[nodiscard]] bool all_applied_everything() const {
    for (node_id i = 1; i <= opt_.nodes; ++i)
      if (!up(i) || applied_[i].size() != committed_.size()) return false;
    return true;
  }
  /// Number of live nodes that applied `cmd`, and the index it was applied at.
  [[nodiscard]] std::pair<int, index_t> n_committed(const std::string& cmd) const {
    auto it = cmd_index_.find(cmd);
    if (it == cmd_index_.end()) return {0, index_t{}};
    int n = 0;
    for (node_id i = 1; i <= opt_.nodes; ++i)
      if (up(i) && applied_[i].size() >= it->second.value) ++n;
    return {n, it->second};
  }

  /// Makes node i start an election now.
  void campaign(node_id i) {
    nodes_[i]->campaign(out_);
    process_(i);
  }
  /// Runs one unit at a time until `pred` holds; returns false after `max_units`.
  bool run_units_until(const std::function<bool()>& pred, std::uint64_t max_units) {
    for (std::uint64_t k = 0; k < max_units; ++k) {
      if (pred()) return true;
      step_unit();
    }
    return pred();
  }

  /// Proposes `cmd` at node i; returns the result.
  raft::propose_result<node_id> propose_at(node_id i, const std::string& cmd) {
    auto r = propose_(i, cmd);
    process_(i);
    return r;
  }

  /// A client read at node i (node::read_index with a fresh id), in `mode`.
  /// Returns the read's id; read(id) says how it went. A refused read
  /// (read_status other than ok) fails at once; last_read_status() says why.
  std::uint64_t read_at(node_id i, raft::read_mode mode = raft::read_mode::read_index) {
    const std::uint64_t id = hist_.invoke_read(i, now_);
    last_read_status_ = nodes_[i]->read_index(id, out_, mode);
    if (last_read_status_ == raft::read_status::ok) pending_reads_[i].insert(id);
    else hist_.fail_read(id, i, now_);
    ++read_status_[raft::to_string(last_read_status_)];
    process_(i);
    return id;
  }
  [[nodiscard]] raft::read_status last_read_status() const { return last_read_status_; }
  /// The record of read `id`: done, failed, observed index, times.
  [[nodiscard]] const history::read_rec& read(std::uint64_t id) const { return *hist_.read(id); }
  [[nodiscard]] const history& hist() const { return hist_; }
  /// How many read_at() calls read_index() answered with each read_status.
  [[nodiscard]] const std::map<std::string, std::uint64_t>& read_statuses() const { return read_status_; }

  /// Asks leader `from` to hand leadership to `to`; out.transfers of every
  /// node are logged in transfers().
  raft::transfer_status transfer_at(node_id from, node_id to) {
    const auto st = nodes_[from]->transfer_leadership(to, out_);
    process_(from);
    return st;
  }
  struct transfer_rec {
    node_id at;  // the node that reported it
    node_id target;
    raft::transfer_outcome outcome;
    std::uint64_t time;
  };
  [[nodiscard]] const std::vector<transfer_rec>& transfers() const { return transfers_; }

  // ----------------------------------------------------------- membership

  using membership_type = raft::membership<node_id>;
  using conf_change_type = raft::conf_change<node_id>;
  using change_result_type = raft::change_result<node_id>;

  /// Starts a brand-new node `id` (above size(); ids skipped stay empty
  /// slots): empty storage and config.voters empty, so it joins the cluster
  /// once a change adds it, learning the membership from the leader.
  void add_node(node_id id) {
    if (id <= opt_.nodes) fail_("add_node(" + std::to_string(id) + "): that id is taken");
    grow_(id);
    boot_voters_[id].clear();
    start_(id, raft::memory_log<>{});
    check_(id);
  }
  /// Asks node i to change the membership (node::change_membership).
  change_result_type change_at(node_id i, const conf_change_type& cc) {
    const auto r = nodes_[i]->change_membership(cc, out_);
    process_(i);
    if (r.ok()) ++changes_accepted_;
    return r;
  }
  /// Asks node i to leave the joint configuration (node::leave_joint).
  change_result_type leave_joint_at(node_id i) {
    const auto r = nodes_[i]->leave_joint(out_);
    process_(i);
    if (r.ok()) ++changes_accepted_;
    return r;
  }
  /// Node i is gone for good: crashed, and never restarted (restart() and
  /// the converge helpers leave it alone).
  void stop(node_id i) {
    crash(i);
    stopped_[i] = true;
  }
  [[nodiscard]] bool stopped(node_id i) const { return stopped_[i]; }
  [[nodiscard]] bool started(node_id i) const { return i >= 1 && i <= opt_.nodes && started_[i]; }
  /// Whether node i's storage is a witness's (bootstrap witness, or named a
  /// witness by a configuration entry some log held).
  [[nodiscard]] bool witness(node_id i) const { return i < witness_ids_.size() && witness_ids_[i]; }
  /// Configuration entries committed (applied by some node) so far, and
  /// changes the leaders accepted (change_at / leave_joint_at returned ok).
  [[nodiscard]] std::uint64_t configs_committed() const { return configs_committed_; }
  [[nodiscard]] std::uint64_t changes_accepted() const { return changes_accepted_; }

  /// The leader's configuration if it is committed on the leader.
  [[nodiscard]] std::optional<membership_type> committed_configuration() const {
    const auto l = leader();
    if (!l) return std::nullopt;
    const auto& n = *nodes_[*l];
    if (n.configuration_index() > n.commit_index()) return std::nullopt;
    return n.configuration();
  }
  /// Runs until the leader uses `target` and has committed it.
  bool wait_committed(const membership_type& target, std::uint64_t max_ticks = 400) {
    return run_until(
        [&] {
          const auto m = committed_configuration();
          return m && *m == target;
        },
        max_ticks);
  }
  /// Runs until the leader committed `target` and every member of it is up,
  /// uses it, and applied its configuration entry.
  bool wait_applied_everywhere(const membership_type& target, std::uint64_t max_ticks = 400) {
    return run_until(
        [&] {
          const auto m = committed_configuration();
          if (!m || !(*m == target)) return false;
          for (auto id : target.members())
            if (!up(id) || !(nodes_[id]->configuration() == target) ||
                nodes_[id]->applied_index() < nodes_[id]->configuration_index())
              return false;
          return true;
        },
        max_ticks);
  }
  /// The leader's view of `peer` (status().peers), if there is a leader
  /// that tracks it.
  [[nodiscard]] std::optional<raft::peer_status<node_id>> peer_status(node_id peer) const {
    const auto l = leader();
    if (!l) return std::nullopt;
    for (const auto& p : nodes_[*l]->status().peers)
      if (p.id == peer) return p;
    return std::nullopt;
  }
  /// Entries `peer` lacks according to the leader (status().peers[].lag).
  [[nodiscard]] std::optional<std::uint64_t> lag(node_id peer) const {
    const auto p = peer_status(peer);
    if (!p) return std::nullopt;
    return p->lag;
  }
  /// Runs until the leader reports `peer` at most `max_lag` entries behind.
  bool wait_caught_up(node_id peer, std::uint64_t max_lag = 0, std::uint64_t max_ticks = 400) {
    return run_until(
        [&] {
          const auto g = lag(peer);
          return g && *g <= max_lag;
        },
        max_ticks);
  }
  /// One line per node: up/down/stopped, role, term, log, commit, configuration.
  [[nodiscard]] std::string describe() const {
    auto ids = [](const std::vector<node_id>& v) {
      std::string s;
      for (auto id : v) s += (s.empty() ? "" : ",") + std::to_string(id);
      return "{" + s + "}";
    };
    std::ostringstream os;
    os << "t=" << now_ << " committed=" << meta_.size() << "\n";
    for (node_id i = 1; i <= opt_.nodes; ++i) {
      os << "  node " << i << (witness(i) ? " (witness storage)" : "") << ": ";
      if (!started_[i]) {
        os << "never started\n";
        continue;
      }
      if (!up(i)) {
        os << (stopped_[i] ? "stopped" : "down") << ", durable last " << disks_[i].image.last_index().value << "\n";
        continue;
      }
      const auto& n = *nodes_[i];
      const auto& m = n.configuration();
      os << raft::to_string(n.role()) << " term " << n.term().value << " leader "
         << (n.leader() ? std::to_string(*n.leader()) : "-") << " last " << n.last_index().value << " commit "
         << n.commit_index().value << " applied " << n.applied_index().value << " conf@"
         << n.configuration_index().value << " voters " << ids(m.voters);
      if (m.joint()) os << " outgoing " << ids(m.voters_outgoing) << (m.auto_leave ? " auto" : " explicit");
      os << " learners " << ids(m.learners) << " witnesses " << ids(m.witnesses) << "\n";
    }
    return os.str();
  }
  /// Members (voters of both sets, learners) of the leader's configuration.
  [[nodiscard]] std::vector<node_id> members() const {
    const auto l = leader();
    return l ? nodes_[*l]->configuration().members() : std::vector<node_id>{};
  }
  /// Like one(), but done once every member of the leader's configuration
  /// (not the removed nodes) applied `cmd`.
  std::optional<index_t> one_members(const std::string& cmd, std::uint64_t max_ticks = 400) {
    auto done = [&] {
      auto it = cmd_index_.find(cmd);
      if (it == cmd_index_.end()) return false;
      const auto ms = members();
      if (ms.empty()) return false;
      for (auto id : ms)
        if (!up(id) || applied_[id].size() < it->second.value) return false;
      return true;
    };
    const std::uint64_t deadline = ticks() + max_ticks;
    while (ticks() < deadline) {
      if (done()) return cmd_index_.at(cmd);
      if (auto l = leader(); l && cmd_index_.count(cmd) == 0) propose_at(*l, cmd);
      const std::uint64_t until = std::min<std::uint64_t>(deadline, ticks() + 2ull * opt_.election_ticks + 4);
      run_until(done, until - std::min(until, ticks()));
    }
    if (done()) return cmd_index_.at(cmd);
    return std::nullopt;
  }
  /// Heals the network, restarts every node not stop()ped, and waits until
  /// every member of the leader's (committed, non-joint) configuration
  /// applied every committed entry.
  bool converge_members(std::uint64_t max_ticks = 2000) {
    heal();
    for (node_id i = 1; i <= opt_.nodes; ++i) restart(i);
    if (!one_members("converge-" + std::to_string(now_), max_ticks)) return false;
    return run_until(
        [&] {
          const auto m = committed_configuration();
          if (!m || m->joint()) return false;
          for (auto id : m->members())
            if (!up(id) || applied_[id].size() < meta_.size()) return false;
          return true;
        },
        max_ticks);
  }

  /// The 6.824 `one()`: submits `cmd` to whichever node is leader, retrying on
  /// leader changes, until at least `expected` live nodes have applied it.
  /// Returns its index, or nothing if that did not happen within `max_ticks`.
  std::optional<index_t> one(const std::string& cmd, int expected, std::uint64_t max_ticks = 400) {
    const std::uint64_t deadline = ticks() + max_ticks;
    while (ticks() < deadline) {
      if (auto [n, idx] = n_committed(cmd); n >= expected) return idx;
      // Submit to the leader of the highest term (a cut-off old leader still
      // believes it leads, but its term is behind), unless already committed.
      if (auto l = leader(); l && cmd_index_.count(cmd) == 0) propose_at(*l, cmd);
      // Give it a couple of election timeouts to commit.
      const std::uint64_t until = std::min<std::uint64_t>(deadline, ticks() + 2ull * opt_.election_ticks + 4);
      run_until([&] { return n_committed(cmd).first >= expected; }, until - std::min(until, ticks()));
    }
    if (auto [n, idx] = n_committed(cmd); n >= expected) return idx;
    return std::nullopt;
  }

  /// Heals everything, restarts every node, and waits until all nodes applied
  /// the same, complete committed sequence.
  bool converge(std::uint64_t max_ticks = 2000) {
    heal();
    for (node_id i = 1; i <= opt_.nodes; ++i) restart(i);
    // A fresh command forces the current leader to commit in its term.
    auto idx = one("converge-" + std::to_string(now_), static_cast<int>(opt_.nodes), max_ticks);
    if (!idx) return false;
    return run_until(
        [&] {
          for (node_id i = 1; i <= opt_.nodes; ++i)
            if (applied_[i].size() < committed_.size()) return false;
          return true;
        },
        max_ticks);
  }

  /// One round of churn: clients propose `proposals` commands ("churn-N") at
  /// whoever leads, then one random fault (crash, restart, cut off or
  /// reconnect a random node, or nothing), then 1-8 ticks pass.
  void churn_round(int proposals = 3) {
    // The proposals share one output, so the leader batches them into one
    // AppendEntries per follower.
    if (auto l = leader()) {
      for (int p = 0; p < proposals; ++p)
        if (const auto r = propose_(*l, "churn-" + std::to_string(churn_cmds_++));
            !r.ok() && r.status != raft::propose_status::transferring)
          fail_(std::string("a leader refused a proposal: ") + raft::to_string(r.status));
      process_(*l);
    }
    const auto what = rand(100);
    const node_id n = 1 + rand(opt_.nodes);
    if (what < 15) crash(n);
    else if (what < 35) restart(n);
    else if (what < 45) isolate(n);
    else if (what < 60) connect(n);
    run_ticks(1 + rand(8));
  }
  /// Makes the network reliable again (faults stop; partitions stay until heal()).
  void calm_network() {
    opt_.drop = 0;
    opt_.duplicate = 0;
    opt_.max_delay = std::min<std::uint32_t>(opt_.max_delay, 3);
    opt_.min_delay = std::min(opt_.min_delay, opt_.max_delay);
  }

  // ----------------------------------------------------------- statistics

  struct counters {
    std::uint64_t sent = 0, delivered = 0, dropped = 0;
    std::map<std::string, std::uint64_t> by_type;
    std::uint64_t append_rejections = 0;
    std::map<std::string, std::uint64_t> by_status;  // what step() returned
  };
  [[nodiscard]] const counters& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

  /// Called for every message at the moment it is delivered (for tests that
  /// watch the traffic).
  std::function<void(const message_type&)> on_deliver;
  /// Called for every message a node sends (before the network sees it).
  std::function<void(const message_type&)> on_send;

  /// Seeded uniform value in [0, n).
  std::uint64_t rand(std::uint64_t n) { return n == 0 ? 0 : next_() % n; }
  bool chance(double p) { return static_cast<double>(next_() >> 11) * (1.0 / 9007199254740992.0) < p; }

 private:
  struct in_flight {
    std::uint64_t at;
    std::uint64_t seq;
    message_type msg;
    bool operator>(const in_flight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  std::uint64_t next_() {
    std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  struct queued_op {
    std::uint64_t write;  // the node's write it belongs to
    disk_op op;
  };
  struct disk {
    raft::memory_log<> image;           // what survives a crash
    std::deque<queued_op> queue;        // written, not yet durable
    std::deque<std::pair<std::uint64_t, raft::log_write>> flushes;  // (due time, write) in order
  };

  /// Asynchronous mode: completes the flushes that are due, in order.
  void flush_disks_() {
    if (opt_.disk != durability::async) return;
    for (node_id i = 1; i <= opt_.nodes; ++i) {
      auto& d = disks_[i];
      while (up(i) && !d.flushes.empty() && d.flushes.front().first <= now_) {
        const raft::log_write w = d.flushes.front().second;
        d.flushes.pop_front();
        make_durable_(i, w);
      }
    }
  }

  /// The disk made write `w` (and every earlier one) durable: apply its
  /// operations to the image and report it to the node.
  void make_durable_(node_id i, const raft::log_write& w) {
    auto& d = disks_[i];
    while (!d.queue.empty() && d.queue.front().write <= w.seq) {
      apply_op(d.image, d.queue.front().op);
      d.queue.pop_front();
    }
    const auto st = nodes_[i]->persisted(w, out_);
    if (st == raft::persist_status::unknown) fail_("node " + std::to_string(i) + " refused a durability report");
    process_(i);
  }

  /// Takes the node's new Log writes onto its disk queue; schedules or
  /// performs the flush.
  void journal_(node_id i) {
    auto& n = *nodes_[i];
    auto& j = n.log().journal;
    if (j.empty()) {
      if (out_.persist) fail_("output names a write but the Log saw none");
      return;
    }
    if (!out_.persist) fail_("the Log was written but the output names no write");
    auto& d = disks_[i];
    for (auto& op : j) d.queue.push_back(queued_op{out_.persist->seq, std::move(op)});
    j.clear();
  }

  void start_(node_id i, raft::memory_log<> image) {
    const bool founder = !boot_voters_[i].empty();
    raft::config<node_id> cfg{.id = i,
                              .voters = boot_voters_[i],
                              .witnesses = founder ? opt_.witnesses : std::vector<node_id>{},
                              .election_ticks = opt_.election_ticks,
                              .heartbeat_ticks = opt_.heartbeat_ticks,
                              .max_inflight = opt_.max_inflight,
                              .max_append_bytes = opt_.max_append_bytes,
                              .max_append_entries = opt_.max_append_entries,
                              .snapshot_chunk_bytes = opt_.snapshot_chunk_bytes,
                              .max_snapshot_inflight = opt_.max_snapshot_inflight,
                              .pre_vote = opt_.pre_vote,
                              .check_quorum = opt_.check_quorum,
                              .lease_reads = opt_.lease_reads,
                              .max_clock_drift_ticks = opt_.max_clock_drift_ticks,
                              .max_uncommitted_bytes = opt_.max_uncommitted_bytes,
                              .max_inflight_bytes = opt_.max_inflight_bytes,
                              .forward_proposals = opt_.forward_proposals,
                              .random_seed = opt_.seed + restarts_ * 1000003ull};
    ++restarts_;
    disks_[i].image = image;
    disks_[i].queue.clear();
    disks_[i].flushes.clear();
    nodes_[i].emplace(cfg, sim_log(std::move(image)));
    started_[i] = true;
    applied_[i].clear();
    checked_upto_[i] = index_t{};
    conf_seen_[i] = index_t{};
    conf_expect_[i].reset();
    nodes_[i]->log().lowest_truncation.reset();
  }

  /// Makes room for ids up to `n`: new slots hold no node yet, and are
  /// linked to everyone (partitions made before do not cover them).
  void grow_(std::size_t n) {
    if (n <= opt_.nodes) return;
    const std::size_t old = opt_.nodes;
    std::vector<bool> links((n + 1) * (n + 1), true);
    std::vector<std::uint32_t> delay((n + 1) * (n + 1), 0);
    for (std::size_t a = 1; a <= old; ++a)
      for (std::size_t b = 1; b <= old; ++b) {
        links[a * (n + 1) + b] = links_[a * (old + 1) + b];
        delay[a * (n + 1) + b] = link_delay_[a * (old + 1) + b];
      }
    links_ = std::move(links);
    link_delay_ = std::move(delay);
    opt_.nodes = n;
    disks_.resize(n + 1);
    nodes_.resize(n + 1);
    applied_.resize(n + 1);
    pending_reads_.resize(n + 1);
    pending_writes_.resize(n + 1);
    checked_upto_.resize(n + 1);
    boot_voters_.resize(n + 1);
    started_.resize(n + 1, false);
    stopped_.resize(n + 1, false);
    conf_seen_.resize(n + 1);
    conf_expect_.resize(n + 1);
  }
  [[nodiscard]] std::size_t link_(node_id from, node_id to) const { return from * (opt_.nodes + 1) + to; }

  void deliver_(message_type m) {
    const node_id to = m.to;
    if (!up(to) || !linked(m.from, to)) {
      ++stats_.dropped;
      return;
    }
    ++stats_.delivered;
    if (on_deliver) on_deliver(m);
    if (const auto* r = std::get_if<raft::append_response>(&m.body); r && !r->success) ++stats_.append_rejections;
    const auto st = nodes_[to]->step(std::move(m), out_);
    ++stats_.by_status[raft::to_string(st)];
    process_(to);
  }

  void send_(message_type m) {
    if (on_send) on_send(m);
    ++stats_.sent;
    ++stats_.by_type[raft::type_name(m)];
    if (!linked(m.from, m.to) || chance(opt_.drop)) {
      ++stats_.dropped;
      return;
    }
    const std::uint32_t span = opt_.max_delay - opt_.min_delay + 1;
    const std::uint64_t extra = link_delay_[link_(m.from, m.to)];
    if (chance(opt_.duplicate)) net_.push({now_ + extra + opt_.min_delay + rand(span), seq_++, m});
    net_.push({now_ + extra + opt_.min_delay + rand(span), seq_++, std::move(m)});
  }

  /// Carries out node i's output: persist (now, or in the background), send,
  /// restore a snapshot, apply; then maybe compact.
  void process_(node_id i) {
    journal_(i);
    const std::optional<raft::log_write> w = out_.persist;
    if (out_.snapshot) restore_(i, *out_.snapshot);
    for (auto& e : out_.committed) apply_(i, e);
    check_(i);
    // Reads: served from the state machine as it is now, after the output's
    // snapshot and committed entries.
    for (const auto& r : out_.reads) {
      if (pending_reads_[i].erase(r.id) == 0)
        fail_("node " + std::to_string(i) + " answered read " + std::to_string(r.id) + ", which it does not hold");
      const std::uint64_t observed = applied_[i].size();
      if (observed < r.index.value)
        fail_("node " + std::to_string(i) + " answered read " + std::to_string(r.id) + " at read index " +
              std::to_string(r.index.value) + " but has applied only " + std::to_string(observed));
      hist_.complete_read(r.id, i, observed, now_);
    }
    for (auto id : out_.failed_reads) {
      if (pending_reads_[i].erase(id) == 0)
        fail_("node " + std::to_string(i) + " failed read " + std::to_string(id) + ", which it does not hold");
      hist_.fail_read(id, i, now_);
    }
    for (const auto& t : out_.transfers) transfers_.push_back({i, t.target, t.outcome, now_});
    for (auto& m : out_.messages) send_(std::move(m));
    out_.clear();
    if (w) {
      if (opt_.disk == durability::sync) {
        make_durable_(i, *w);
      } else {
        // Flushes complete in order: never before the previous one.
        auto& d = disks_[i];
        std::uint64_t at = now_ + 1 + rand(opt_.max_disk_delay);
        if (i == opt_.slow_disk_node) at = now_ + opt_.slow_disk_delay;
        if (!d.flushes.empty()) at = std::max(at, d.flushes.back().first);
        d.flushes.emplace_back(at, *w);
      }
      if (!up(i)) return;
    }
    auto& n = *nodes_[i];
    if (opt_.snapshot_every != 0 && distance(n.log().snapshot_index(), n.applied_index()) >= opt_.snapshot_every) {
      // A witness has no state machine: its snapshot holds no data.
      const auto st = n.compact(n.applied_index(),
                                witness(i) ? raft::bytes{} : snapshot_data_(n.applied_index()), out_);
      if (st != raft::compact_status::ok) fail_(std::string("compact refused: ") + raft::to_string(st));
      ++snapshots_taken_;
      process_(i);
    }
  }

 public:
  /// Node i compacts its log up to `upto` (node::compact) with the
  /// simulated state machine's snapshot (none for a witness).
  raft::compact_status compact_at(node_id i, index_t upto) {
    const auto st = nodes_[i]->compact(upto, witness(i) ? raft::bytes{} : snapshot_data_(upto), out_);
    if (st == raft::compact_status::ok) ++snapshots_taken_;
    process_(i);
    return st;
  }

 private:
  /// A snapshot of the simulated state machine: the number of entries it
  /// covers and a digest of them, plus padding.
  raft::bytes snapshot_data_(index_t upto) const {
    std::string s = "snap:" + std::to_string(upto.value) + ":" + std::to_string(prefix_hash_[upto.value]) + ":";
    s.append(opt_.snapshot_padding, static_cast<char>('a' + upto.value % 26));
    return raft::bytes(s);
  }

  void restore_(node_id i, const raft::snapshot& snap) {
    auto& sm = applied_[i];
    const std::uint64_t k = snap.index.value;
    if (k < sm.size())
      fail_("node " + std::to_string(i) + " was told to restore a snapshot at " + std::to_string(k) +
            " after applying " + std::to_string(sm.size()) + " entries");
    if (k > meta_.size())
      fail_("node " + std::to_string(i) + " restored a snapshot beyond every committed entry");
    if (snap.term != meta_[k - 1].term) fail_("snapshot term differs from the committed entry's term");
    if (snap.data.empty()) {
      // Only a witness holds snapshots without data (its leader strips them).
      if (!witness(i))
        fail_("node " + std::to_string(i) + ", not a witness, was handed a snapshot without data at " +
              std::to_string(k));
      sm.assign(meta_.begin(), meta_.begin() + static_cast<std::ptrdiff_t>(k));
      ++restores_;
      return;
    }
    if (nodes_[i]->configuration().is_witness(i))
      fail_("witness " + std::to_string(i) + " was handed a snapshot with the state machine's data at " +
            std::to_string(k));
    if (k > committed_.size())
      fail_("node " + std::to_string(i) + " restored a snapshot beyond every committed entry a full node applied");
    const std::string expect = "snap:" + std::to_string(k) + ":" + std::to_string(prefix_hash_[k]) + ":";
    if (snap.data.view().substr(0, expect.size()) != expect || snap.data.size() != expect.size() + opt_.snapshot_padding)
      fail_("node " + std::to_string(i) + " restored a snapshot whose contents do not match the committed entries");
    sm.assign(committed_.begin(), committed_.begin() + static_cast<std::ptrdiff_t>(k));
    ++restores_;
    // The client of a write the snapshot covers learns its fate from the
    // term at its index.
    auto& pw = pending_writes_[i];
    for (auto it = pw.begin(); it != pw.end() && it->first <= k;) {
      if (committed_[it->first - 1].term == it->second.first) hist_.complete_write(it->second.second, it->first, now_);
      else hist_.abandon_write(it->second.second);
      it = pw.erase(it);
    }
  }

 public:
  [[nodiscard]] std::uint64_t snapshots_taken() const { return snapshots_taken_; }
  [[nodiscard]] std::uint64_t restores() const { return restores_; }

 private:
  void apply_(node_id i, const entry_type& e) {
    auto& sm = applied_[i];
    if (e.index.value != sm.size() + 1) fail_("node " + std::to_string(i) + " applied index " +
                                              std::to_string(e.index.value) + " after " + std::to_string(sm.size()) +
                                              " (applied sequence must be gapless, exactly once)");
    // What every node must agree on, witnesses included: index, term, kind, conf.
    if (e.index.value <= meta_.size()) {
      const auto& m = meta_[e.index.value - 1];
      if (m.term != e.term || m.kind != e.kind || !(m.conf == e.conf))
        fail_("State Machine Safety: node " + std::to_string(i) + " applied a different entry (term, kind or "
              "configuration) at index " + std::to_string(e.index.value));
    } else {
      meta_.push_back(entry_type{e.term, e.index, e.kind, raft::bytes{}, e.conf});
      commit_term_.push_back(nodes_[i]->term());
      if (e.kind == raft::entry_kind::config) ++configs_committed_;
    }
    const bool stripped = witness(i) && e.kind == raft::entry_kind::command && e.data.empty();
    if (witness(i) && nodes_[i]->configuration().is_witness(i) && e.kind == raft::entry_kind::command &&
        !e.data.empty())
      fail_("witness " + std::to_string(i) + " applied a command with its payload at index " +
            std::to_string(e.index.value));
    if (stripped) {
      // A witness applies (index, term, kind) only: checked above.
    } else if (e.index.value <= committed_.size()) {
      const auto& c = committed_[e.index.value - 1];
      if (!(c == e))
        fail_("State Machine Safety: node " + std::to_string(i) + " applied a different entry at index " +
              std::to_string(e.index.value));
    } else if (e.index.value == committed_.size() + 1) {
      if (e.kind == raft::entry_kind::command && e.data.empty())
        fail_("node " + std::to_string(i) + ", not a witness, applied a command without its payload at index " +
              std::to_string(e.index.value));
      committed_.push_back(e);
      std::uint64_t h = prefix_hash_.back() ^ (e.term.value * 0x9e3779b97f4a7c15ull);
      for (char ch : e.data.view()) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
      prefix_hash_.push_back(h * 31 + static_cast<std::uint64_t>(e.kind));
      if (e.kind == raft::entry_kind::command) cmd_index_.emplace(e.data.str(), e.index);
    } else if (!witness(i)) {
      fail_("node " + std::to_string(i) + " applied index " + std::to_string(e.index.value) +
            " in full while no full node applied the entries before it");
    }
    sm.push_back(e);
    // A client write proposed here at this index: done if it is this entry.
    auto& pw = pending_writes_[i];
    if (auto it = pw.find(e.index.value); it != pw.end()) {
      if (it->second.first == e.term) hist_.complete_write(it->second.second, e.index.value, now_);
      else hist_.abandon_write(it->second.second);
      pw.erase(it);
    }
  }

  /// node i's propose(), with the write recorded for the history.
  raft::propose_result<node_id> propose_(node_id i, const std::string& cmd) {
    const std::uint64_t id = hist_.invoke_write(i, now_);
    auto r = nodes_[i]->propose(raft::bytes(cmd), out_);
    if (r.ok()) {
      auto [it, fresh] = pending_writes_[i].try_emplace(r.index.value, r.term, id);
      if (!fresh) {  // an older proposal of ours lost this index (truncated): it never completes
        hist_.abandon_write(it->second.second);
        it->second = {r.term, id};
      }
    } else {
      hist_.abandon_write(id);
    }
    return r;
  }

  /// The checks, after an event of node `touched` (only its log and its
  /// configuration can have changed; committed entries and leaders are
  /// checked for every node).
  void check_(node_id touched) {
    for (node_id i = 1; i <= opt_.nodes; ++i) {
      if (!up(i)) continue;
      auto& n = *nodes_[i];
      auto& log = n.log();
      const bool wit = witness(i);
      // Log Matching: every (index, term) names one entry, preceded by one
      // term. Witnesses hold no command payloads, so (index, term, kind,
      // conf) is compared between every pair of nodes, payloads only between
      // non-witnesses.
      if (log.lowest_truncation) {
        checked_upto_[i] = raft::min(checked_upto_[i], *log.lowest_truncation);
        // A configuration entry at or after the cut may be replaced by another.
        if (conf_expect_[i] && conf_expect_[i]->index > *log.lowest_truncation) conf_expect_[i].reset();
        log.lowest_truncation.reset();
      }
      if (checked_upto_[i] > log.last_index()) checked_upto_[i] = log.last_index();
      rescan_config_(i);
      for (index_t k = raft::max(checked_upto_[i].next(), log.first_index()); k <= log.last_index(); k = k.next()) {
        const auto& e = log.entry_at(k);
        const term_t prev = log.term_at(k.prev());
        if (e.kind == raft::entry_kind::config) {
          note_config_(i, e);
          conf_seen_[i] = k;
        }
        if (e.kind == raft::entry_kind::command) {
          if (wit && !e.data.empty() && n.configuration().is_witness(i))
            fail_("witness " + std::to_string(i) + " holds a command payload at index " + std::to_string(k.value));
          if (!wit && e.data.empty())
            fail_("node " + std::to_string(i) + ", not a witness, holds a command without its payload at index " +
                  std::to_string(k.value));
        }
        const bool full = !wit || e.kind != raft::entry_kind::command;
        auto [it, fresh] = matching_.try_emplace(key_{k.value, e.term.value}, match_rec{prev, e, full});
        if (fresh) continue;
        auto& r = it->second;
        if (r.prev_term != prev || r.e.kind != e.kind || !(r.e.conf == e.conf))
          fail_("Log Matching: node " + std::to_string(i) + " holds a different entry or prefix at index " +
                std::to_string(k.value) + " term " + std::to_string(e.term.value));
        if (full && r.full && !(r.e.data == e.data))
          fail_("Log Matching: node " + std::to_string(i) + " holds a different payload at index " +
                std::to_string(k.value) + " term " + std::to_string(e.term.value));
        if (full && !r.full) r = match_rec{prev, e, true};
      }
      checked_upto_[i] = log.last_index();
      if (i == touched) check_configuration_(i);

      // Learners, witnesses and nodes outside their configuration never
      // campaign (thesis §4.2.1; a witness never leads) - except a full voter
      // of the configuration before the newest one, while the newest is not
      // committed (thesis §4.2.2: it may be needed to commit it).
      const auto role = n.role();
      if ((role == raft::role::candidate || role == raft::role::pre_candidate) &&
          (!n.configuration().is_voter(i) || n.configuration().is_witness(i)) && !may_campaign_outside_(i))
        fail_("node " + std::to_string(i) + " campaigns although its configuration makes it a " +
              (n.configuration().is_witness(i) ? "witness" : n.configuration().is_learner(i) ? "learner" : "non-member"));

      if (!n.is_leader()) continue;
      if (n.configuration().is_witness(i)) fail_("witness " + std::to_string(i) + " became leader");
      // Election Safety: at most one leader per term, across every node ever
      // started (removed ones included).
      auto [lit, fresh] = leaders_.try_emplace(n.term(), leader_rec{i, log.truncations, 0});
      if (lit->second.id != i)
        fail_("Election Safety: nodes " + std::to_string(lit->second.id) + " and " + std::to_string(i) +
              " both leader in term " + std::to_string(n.term().value));
      // Leader Append-Only: a leader never truncates its log.
      if (log.truncations != lit->second.truncations)
        fail_("Leader Append-Only: leader " + std::to_string(i) + " truncated its log in term " +
              std::to_string(n.term().value));
      // Leader Completeness: a leader holds every entry committed in an
      // earlier term (checked for the entries not yet verified for it), in
      // full when a full node applied it.
      for (std::size_t k = lit->second.verified; k < meta_.size(); ++k) {
        if (commit_term_[k] >= n.term()) continue;
        const index_t idx{k + 1};
        bool holds = idx <= log.last_index();
        if (holds && idx >= log.first_index()) {
          const auto& e = log.entry_at(idx);
          holds = k < committed_.size() ? e == committed_[k]
                                        : e.term == meta_[k].term && e.kind == meta_[k].kind && e.conf == meta_[k].conf;
        }
        if (!holds)
          fail_("Leader Completeness: leader " + std::to_string(i) + " of term " + std::to_string(n.term().value) +
                " lacks committed index " + std::to_string(idx.value));
      }
      lit->second.verified = meta_.size();
    }
    check_witness_invariant_();
  }

  /// A configuration entry seen in node i's log: it must decode, agree with
  /// every other copy of the entry at the same (index, term), and the
  /// witnesses it names are witnesses for good (their storage holds no
  /// payloads).
  void note_config_(node_id i, const entry_type& e) {
    auto c = raft::decode_config_entry<raft::default_transport>(e.conf);
    if (!c)
      fail_("node " + std::to_string(i) + " holds a configuration entry that does not decode at index " +
            std::to_string(e.index.value));
    for (auto w : c->members.witnesses) mark_witness_(w);
    auto [it, fresh] = configs_.try_emplace(key_{e.index.value, e.term.value}, c->members);
    if (!fresh && !(it->second == c->members))
      fail_("node " + std::to_string(i) + " decodes the configuration entry at index " +
            std::to_string(e.index.value) + " term " + std::to_string(e.term.value) +
            " to another membership than another node does");
  }

  /// The newest configuration entry of node i's log up to checked_upto_
  /// (conf_seen_, kept up by the Log Matching scan) after a truncation or a
  /// snapshot took it away: look back for the one before.
  void rescan_config_(node_id i) {
    const auto& log = nodes_[i]->log();
    index_t& seen = conf_seen_[i];
    if (seen == index_t{} || (seen <= checked_upto_[i] && seen > log.snapshot_index())) return;
    seen = index_t{};
    for (index_t k = checked_upto_[i]; k > log.snapshot_index(); k = k.prev())
      if (log.entry_at(k).kind == raft::entry_kind::config) {
        seen = k;
        break;
      }
  }

  /// Thesis §4.1: a node uses the newest configuration in its log, committed
  /// or not; without one, its snapshot's; without that, the bootstrap one.
  /// Node i is outside its newest configuration (or a witness in it): may
  /// it campaign anyway? Only if that configuration is not committed on it
  /// and the one before it (read from its log) makes it a full voter.
  [[nodiscard]] bool may_campaign_outside_(node_id i) {
    const auto& n = *nodes_[i];
    const auto& log = n.log();
    if (n.configuration().is_witness(i) || n.commit_index() >= n.configuration_index() ||
        n.configuration_index() <= log.snapshot_index())
      return false;
    raft::membership<node_id> prev;
    bool found = false;
    for (index_t k = n.configuration_index().prev(); k > log.snapshot_index() && !found; k = k.prev())
      if (log.entry_at(k).kind == raft::entry_kind::config) {
        prev = raft::decode_config_entry<raft::default_transport>(log.entry_at(k).conf)->members;
        found = true;
      }
    if (!found) prev = base_membership_(i);
    return prev.is_voter(i) && !prev.is_witness(i);
  }

  /// Node i's membership without any configuration entry: its snapshot's,
  /// else its bootstrap one.
  [[nodiscard]] raft::membership<node_id> base_membership_(node_id i) {
    const auto& log = nodes_[i]->log();
    if (!log.snapshot_membership().empty()) {
      auto c = raft::decode_config_entry<raft::default_transport>(log.snapshot_membership());
      if (!c) fail_("node " + std::to_string(i) + " holds a snapshot whose membership does not decode");
      return c->members;
    }
    raft::membership<node_id> m;
    m.voters = boot_voters_[i];
    if (!m.voters.empty()) m.witnesses = opt_.witnesses;
    return m;
  }

  void check_configuration_(node_id i) {
    auto& n = *nodes_[i];
    const auto& log = n.log();
    const index_t seen = conf_seen_[i];
    const index_t at = seen > log.snapshot_index() ? seen : log.snapshot_index();
    auto& ex = conf_expect_[i];
    // Fast path: the same configuration as last time, verified.
    if (ex && ex->verified && ex->index == at && ex->snap_index == log.snapshot_index() &&
        n.configuration_index() == at)
      return;
    const term_t at_term = seen > log.snapshot_index() ? log.entry_at(seen).term : log.snapshot_term();
    if (!ex || ex->index != at || ex->term != at_term || ex->snap_index != log.snapshot_index()) {
      raft::membership<node_id> m;
      if (seen > log.snapshot_index()) {
        m = raft::decode_config_entry<raft::default_transport>(log.entry_at(seen).conf)->members;
      } else {
        m = base_membership_(i);
      }
      ex = conf_expect{at, at_term, log.snapshot_index(), std::move(m), false};
    }
    if (n.configuration_index() != at)
      fail_("node " + std::to_string(i) + " uses the configuration of index " +
            std::to_string(n.configuration_index().value) + " but the newest one in its log is at index " +
            std::to_string(at.value) + " (thesis §4.1: the newest configuration in the log, committed or not)");
    // The full comparison once per configuration (the index says which).
    if (!(n.configuration() == ex->members))
      fail_("node " + std::to_string(i) + " uses another membership than the configuration at index " +
            std::to_string(at.value) + " of its log says (thesis §4.1)");
    ex->verified = true;
  }

  /// Nothing committed lives on witnesses alone: every index up to the
  /// largest commit index any node reported is in the durable image (log
  /// entry with its payload, or a snapshot covering it) of a non-witness.
  void check_witness_invariant_() {
    if (!any_witness_) return;  // (commit_terms_ catches up from meta_ and the logs when one appears)
    // Extend the committed terms up to every live node's commit index.
    for (node_id i = 1; i <= opt_.nodes; ++i) {
      if (!up(i)) continue;
      const auto& n = *nodes_[i];
      const auto& log = n.log();
      for (std::uint64_t k = commit_terms_.size() + 1; k <= n.commit_index().value; ++k) {
        const index_t idx{k};
        term_t t;
        if (idx > log.snapshot_index() && idx <= log.last_index()) t = log.term_at(idx);
        else if (idx == log.snapshot_index()) t = log.snapshot_term();
        else if (k <= meta_.size()) t = meta_[k - 1].term;
        else fail_("node " + std::to_string(i) + " reports commit index " + std::to_string(n.commit_index().value) +
                   " but nobody knows the term of index " + std::to_string(k));
        commit_terms_.push_back(t);
      }
    }
    const std::uint64_t h = commit_terms_.size();
    if (h == 0) return;
    const index_t top{h};
    for (node_id j = 1; j <= opt_.nodes; ++j) {
      if (!started_[j] || witness(j)) continue;
      const auto& img = disks_[j].image;
      if (img.snapshot_index() >= top) return;
      if (img.last_index() >= top && img.term_at(top) == commit_terms_[h - 1]) return;
    }
    fail_("witness invariant: committed index " + std::to_string(h) +
          " is held in full by no non-witness node's durable state (only witnesses have it)");
  }

  [[noreturn]] void fail_(const std::string& what) const {
    throw violation("seed " + std::to_string(opt_.seed) + " at t=" + std::to_string(now_) + ": " + what);
  }

  struct key_ {
    std::uint64_t index, term;
    bool operator==(const key_&) const = default;
  };
  struct key_hash {
    std::size_t operator()(const key_& k) const noexcept { return std::hash<std::uint64_t>{}(k.index * 1000003u ^ k.term); }
  };
  struct match_rec {
    term_t prev_term;
    entry_type e;
    bool full;  // e.data is the payload (not a witness's stripped copy)
  };
  struct conf_expect {
    index_t index;
    term_t term;
    index_t snap_index;
    raft::membership<node_id> members;
    bool verified;  // the node's configuration() was compared with `members`
  };
  struct leader_rec {
    node_id id;
    std::uint64_t truncations;
    std::size_t verified;
  };

  options opt_;
  std::uint64_t rng_state_;
  std::vector<node_id> voters_;
  std::vector<std::optional<node_type>> nodes_;
  std::vector<disk> disks_;
  std::uint64_t lost_ops_ = 0, torn_ops_ = 0;
  std::vector<std::vector<entry_type>> applied_;
  std::vector<index_t> checked_upto_;
  std::vector<bool> links_;
  std::vector<std::uint32_t> link_delay_;  // extra units per directed link
  std::priority_queue<in_flight, std::vector<in_flight>, std::greater<>> net_;
  std::uint64_t now_ = 0, seq_ = 0, restarts_ = 0, crashes_ = 0, churn_cmds_ = 0;
  output_type out_;
  counters stats_;

  // Clients (see the top of this file).
  history hist_;
  std::vector<std::set<std::uint64_t>> pending_reads_;  // per node: read ids it holds
  // per node: index -> (term, write id) of its proposals not yet applied
  std::vector<std::map<std::uint64_t, std::pair<term_t, std::uint64_t>>> pending_writes_;
  raft::read_status last_read_status_ = raft::read_status::ok;
  std::map<std::string, std::uint64_t> read_status_;
  std::vector<transfer_rec> transfers_;

  std::vector<entry_type> committed_;
  std::vector<term_t> commit_term_;
  std::vector<std::uint64_t> prefix_hash_{0};
  std::uint64_t snapshots_taken_ = 0, restores_ = 0;
  std::unordered_map<std::string, index_t> cmd_index_;
  std::unordered_map<key_, match_rec, key_hash> matching_;
  std::unordered_map<key_, raft::membership<node_id>, key_hash> configs_;  // config entries by (index, term)
  // Membership.
  std::vector<std::vector<node_id>> boot_voters_;  // per node: config.voters (empty: joined at run time)
  std::vector<bool> started_, stopped_;
  std::vector<index_t> conf_seen_;                  // per node: newest config entry in its log (cache)
  std::vector<std::optional<conf_expect>> conf_expect_;
  std::vector<bool> witness_ids_;  // by id: the node's storage is a witness's
  bool any_witness_ = false;
  void mark_witness_(node_id id) {
    if (id >= witness_ids_.size()) witness_ids_.resize(id + 1, false);
    witness_ids_[id] = true;
    any_witness_ = true;
  }
  std::vector<entry_type> meta_;        // committed entries without payloads, as first applied by anyone
  std::vector<term_t> commit_terms_;    // term of every index up to the largest commit index seen
  std::uint64_t configs_committed_ = 0, changes_accepted_ = 0;
  std::map<term_t, leader_rec> leaders_;
};

}  // namespace sim
