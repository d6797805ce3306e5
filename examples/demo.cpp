// examples/demo.cpp - "see it work": five raft::node<> in one process.
//
// The cluster runs on a toy network: a FIFO queue of messages. Each step
// delivers every message queued so far (replies wait for the next step), then
// ticks every live node once. Everything is deterministic: the same seed
// gives the same run. Pass another seed as the first argument.
//
// The timeline shows an election, proposals being replicated and committed,
// the leader crashing (its memory_log survives, as a disk would), a new
// election, more proposals, the old leader restarting from its log and
// catching up, then a membership change done the safe way: a sixth node joins
// as a learner, catches up, is promoted to voter, and one founding node is
// removed. It ends by checking that every node applied the same entries.
//
//   ./raft_demo [seed]     exit code 0 iff all nodes agree

#include <raft/raft.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

using node = raft::node<>;  // default_transport, memory_log, tick_clock, splitmix64
using node_id = node::node_id;
using message = node::message_type;
using entry = node::entry_type;

constexpr node_id cluster_size = 5;

std::string name(node_id id) {
  // Appending (not "n" + ...) keeps g++ 12 -O3 from a false -Wrestrict alarm.
  std::string s = std::to_string(id);
  s.insert(s.begin(), 'n');
  return s;
}

std::string describe(const entry& e) {
  std::string what = e.data.str();
  if (e.kind == raft::entry_kind::noop) what = "noop";
  if (e.kind == raft::entry_kind::config) what = "config";
  return std::to_string(e.term.value) + ":" + what;
}

std::string list(const std::vector<node_id>& ids) {
  std::string s = "{";  // appended piece by piece: g++ 12 -O3 warns falsely on "lit" + string
  for (auto id : ids) {
    if (s.size() > 1) s += ',';
    s += name(id);
  }
  s += '}';
  return s;
}

class cluster {
 public:
  explicit cluster(std::uint64_t seed) : seed_(seed) {
    for (node_id id = 1; id <= cluster_size; ++id) nodes_[id] = std::make_unique<node>(config_for(id));
    last_commits_ = commits();
  }

  [[nodiscard]] raft::config<node_id> config_for(node_id id) const {
    raft::config<node_id> cfg{.id = id, .voters = {}};
    for (node_id v = 1; v <= cluster_size; ++v) cfg.voters.push_back(v);
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    cfg.random_seed = seed_;
    return cfg;
  }

  node* live(node_id id) {
    auto it = nodes_.find(id);
    return it == nodes_.end() || !it->second ? nullptr : it->second.get();
  }
  [[nodiscard]] std::uint64_t now() const { return t_; }
  [[nodiscard]] const std::vector<entry>& applied(node_id id) { return applied_[id]; }

  std::optional<node_id> leader() {
    std::optional<node_id> best;
    for (const auto& [id, p] : nodes_)
      if (node* n = live(id); n != nullptr && n->is_leader() && (!best || n->term() > live(*best)->term())) best = id;
    return best;
  }
  [[nodiscard]] std::vector<node_id> ids() const {
    std::vector<node_id> v;
    for (const auto& [id, p] : nodes_) v.push_back(id);
    return v;
  }

  /// A brand-new node that joins the running cluster: no voter list (it
  /// learns the membership from the leader), an empty log.
  void start_joining(node_id id) {
    raft::config<node_id> cfg = config_for(id);
    cfg.voters.clear();
    nodes_[id] = std::make_unique<node>(cfg);
    say(name(id) + " starts with an empty log and no membership: it waits to be added");
  }

  /// Asks the leader for a membership change and prints the outcome.
  node::change_result_type change(node_id at, const raft::conf_change<node_id>& c, const std::string& what) {
    out_.clear();
    auto r = live(at)->change_membership(c, out_);
    if (r.ok())
      say(name(at) + " appends a configuration entry (" + what + ") at index " + std::to_string(r.index.value) +
          ": voters " + list(live(at)->configuration().voters) + ", learners " +
          list(live(at)->configuration().learners) + ", in force on " + name(at) + " at once");
    else
      say(name(at) + " refuses the change (" + what + "): " + raft::to_string(r.status));
    drain(at);
    return r;
  }

  /// The leader's view of how far `peer` is behind.
  std::uint64_t lag(node_id leader, node_id peer) {
    for (const auto& p : live(leader)->status().peers)
      if (p.id == peer) return p.lag;
    return ~std::uint64_t{0};
  }

  /// One step: deliver what is queued, then tick every live node.
  void step() {
    ++t_;
    std::deque<message> batch;
    batch.swap(net_);
    for (auto& m : batch) {
      node* n = live(m.to);
      if (n == nullptr) {
        ++dropped_;
        continue;
      }
      const node_id to = m.to;
      out_.clear();
      (void)n->step(std::move(m), out_);  // stale or refused messages are part of the show
      ++delivered_;
      drain(to);
    }
    for (const node_id id : ids()) {
      if (node* n = live(id)) {
        out_.clear();
        n->tick(out_);
        drain(id);
      }
    }
    print_changes();
    print_commits();
  }

  /// Steps until `done()` holds; gives up (and fails the demo) after `limit` steps.
  bool run_until(const std::function<bool()>& done, int limit = 200) {
    for (int i = 0; i < limit; ++i) {
      if (done()) return true;
      step();
    }
    if (done()) return true;
    std::printf("t=%-4llu  gave up waiting after %d steps\n", static_cast<unsigned long long>(t_), limit);
    return false;
  }

  /// A client sends one command to node `to`.
  node::propose_result_type propose(node_id to, const std::string& cmd) {
    out_.clear();
    auto r = live(to)->propose(raft::bytes(cmd), out_);
    if (r.ok())
      say("client -> " + name(to) + "  propose \"" + cmd + "\"  => index " + std::to_string(r.index.value) + ", term " +
          std::to_string(r.term.value));
    else
      say("client -> " + name(to) + "  propose \"" + cmd + "\"  => not leader, try " +
          (r.leader ? name(*r.leader) : std::string("later")));
    drain(to);
    return r;
  }

  /// A client sends several commands at once: one append for the batch.
  node::propose_result_type propose_batch(node_id to, const std::vector<std::string>& cmds) {
    std::vector<raft::bytes> payloads;
    std::string list;
    for (const auto& c : cmds) {
      payloads.emplace_back(c);
      list += (list.empty() ? "\"" : " \"") + c + "\"";
    }
    out_.clear();
    auto r = live(to)->propose_batch(std::move(payloads), out_);
    const auto first = r.index.value + 1 - cmds.size();
    say("client -> " + name(to) + "  propose_batch [" + list + "]  => indexes " + std::to_string(first) + ".." +
        std::to_string(r.index.value) + ", term " + std::to_string(r.term.value));
    drain(to);
    return r;
  }

  /// Crash: the process dies. Its Log survives (memory_log plays the disk);
  /// everything else - the node object, its state machine, the messages it
  /// had not delivered yet - is lost.
  void crash(node_id id) {
    node* n = live(id);
    disks_[id] = std::move(n->log());
    nodes_[id].reset();
    applied_[id].clear();
    const auto before = net_.size();
    std::erase_if(net_, [&](const message& m) { return m.from == id || m.to == id; });
    say(name(id) + " crashes; " + std::to_string(before - net_.size()) + " in-flight messages lost, its log kept:");
    say("      " + log_line(disks_[id]));
  }

  /// Restart from the Log alone: term, vote and entries come back, the
  /// commit index and the state machine are rebuilt from the cluster.
  void restart(node_id id) {
    nodes_[id] = std::make_unique<node>(config_for(id), std::move(disks_[id]));
    disks_.erase(id);
    node* n = live(id);
    say(name(id) + " restarts from its log: term " + std::to_string(n->term().value) + ", commit " +
        std::to_string(n->commit_index().value) + ", applied " + std::to_string(n->applied_index().value));
  }

  [[nodiscard]] std::string log_line(const raft::memory_log<>& log) const {
    std::string s = "log [";
    for (auto i = log.first_index(); i <= log.last_index(); i = i.next()) {
      if (i != log.first_index()) s += ' ';
      s += describe(log.entry_at(i));
    }
    return s + "]";
  }

  /// "n1=4 n2=4 n3=down ..."
  std::string commits() {
    std::string s;
    for (const node_id id : ids()) {
      node* n = live(id);
      if (!s.empty()) s += ' ';
      s += name(id);
      s += '=';
      s += n ? std::to_string(n->commit_index().value) : std::string("down");
    }
    return s;
  }

  void say(const std::string& what) const {
    std::printf("t=%-4llu  %s\n", static_cast<unsigned long long>(t_), what.c_str());
  }

  [[nodiscard]] std::uint64_t delivered() const { return delivered_; }
  [[nodiscard]] std::uint64_t dropped() const { return dropped_; }
  void watch_commits(bool on) { watch_commits_ = on; }

 private:
  /// Carries out one output, in the documented order.
  void drain(node_id id) {
    // 1. persist: memory_log needs no flush (a disk log would fsync here,
    //    before any of the messages below leaves).
    // 2. send
    for (auto& m : out_.messages) net_.push_back(std::move(m));
    // 3. apply, in order
    for (auto& e : out_.committed) applied_[id].push_back(std::move(e));
    // 4. note role and leader changes (printed once per step, grouped)
    for (const auto& c : out_.changes) changes_.push_back({id, c});
  }

  void print_changes() {
    // Group identical changes ("n1 n2 n3 follow n4") to keep the timeline short.
    std::vector<std::tuple<raft::role, std::uint64_t, std::optional<node_id>, std::string>> groups;
    for (const auto& change : changes_) {
      const node_id id = change.first;
      const raft::state_change<node_id>& c = change.second;
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
        return std::get<0>(g) == c.role && std::get<1>(g) == c.term.value && std::get<2>(g) == c.leader;
      });
      if (it == groups.end()) groups.emplace_back(c.role, c.term.value, c.leader, name(id));
      else (std::get<3>(*it) += ' ') += name(id);
    }
    changes_.clear();
    for (const auto& [role, term, leader, who] : groups) {
      const std::string t = std::to_string(term);
      const bool one = who.find(' ') == std::string::npos;
      switch (role) {
        case raft::role::pre_candidate:
          say(who + (one ? " times" : " time") + " out and ask" + (one ? "s" : "") +
              " whether it could win (pre-vote for term " + std::to_string(term + 1) + ")");
          break;
        case raft::role::candidate:
          say(who + (one ? " times" : " time") + " out and stand" + (one ? "s" : "") + " for election: term " + t);
          break;
        case raft::role::leader: say(who + " wins the election: leader of term " + t); break;
        case raft::role::follower:
          say(leader ? who + (one ? " follows " : " follow ") + name(*leader) + " (term " + t + ")"
                     : who + (one ? " is a follower" : " are followers") + " in term " + t + ", no leader known yet");
          break;
      }
    }
  }

  void print_commits() {
    if (!watch_commits_) return;
    std::string now = commits();
    if (now != last_commits_) say("commit index  " + now);
    last_commits_ = std::move(now);
  }

  std::uint64_t seed_;
  std::uint64_t t_ = 0;
  std::map<node_id, std::unique_ptr<node>> nodes_;
  std::map<node_id, raft::memory_log<>> disks_;  // logs of crashed nodes
  std::map<node_id, std::vector<entry>> applied_;  // each node's state machine: what it applied
  std::deque<message> net_;
  node::output_type out_;
  std::vector<std::pair<node_id, raft::state_change<node_id>>> changes_;
  std::uint64_t delivered_ = 0, dropped_ = 0;
  bool watch_commits_ = true;
  std::string last_commits_;
};

std::uint64_t digest(const std::vector<entry>& es) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  auto mix = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i, v >>= 8) h = (h ^ (v & 0xff)) * 0x100000001b3ull;
  };
  for (const auto& e : es) {
    mix(e.index.value);
    mix(e.term.value);
    mix(static_cast<std::uint64_t>(e.kind));
    for (char c : e.data.view()) mix(static_cast<unsigned char>(c));
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 1;
  std::printf("raft demo: %llu nodes, seed %llu (pass another seed as the first argument)\n",
              static_cast<unsigned long long>(cluster_size), static_cast<unsigned long long>(seed));
  std::printf("one step = deliver queued messages, then one tick on every node; election timeout\n"
              "10-19 ticks, heartbeat every 2 ticks. Log entries are shown as term:command.\n");
  cluster c(seed);
  auto all_live_commit = [&](std::uint64_t idx) {
    return [&c, idx] {
      for (const node_id id : c.ids())
        if (node* n = c.live(id); n != nullptr && n->applied_index().value < idx) return false;
      return true;
    };
  };

  std::printf("\n== 1. Election: nobody leads; the first election timeout to expire wins\n");
  if (!c.run_until([&] { return c.leader().has_value(); })) return 1;
  const node_id first = *c.leader();
  // The new leader's no-op entry commits: that is what lets it commit at all.
  if (!c.run_until(all_live_commit(1))) return 1;

  std::printf("\n== 2. Replication: the leader appends, followers acknowledge, a majority commits\n");
  c.propose(first, "x=1");
  c.propose(first, "y=2");
  c.step();
  c.propose(first, "z=3");
  if (!c.run_until(all_live_commit(c.live(first)->last_index().value))) return 1;

  std::printf("\n== 3. The leader accepts one more command, then crashes before sending it\n");
  const auto lost = c.propose(first, "w=lost");
  c.crash(first);
  c.watch_commits(false);

  std::printf("\n== 4. The four survivors still form a majority: they elect a new leader\n");
  if (!c.run_until([&] { return c.leader().has_value(); })) return 1;
  const node_id second = *c.leader();
  c.watch_commits(true);
  if (!c.run_until(all_live_commit(c.live(second)->last_index().value))) return 1;

  std::printf("\n== 5. More commands; a follower redirects the client to the leader\n");
  node_id follower = 1;
  while (follower == second || c.live(follower) == nullptr) ++follower;
  const auto redirect = c.propose(follower, "a=4");
  c.propose_batch(redirect.leader.value_or(second), {"a=4", "b=5", "c=6"});
  if (!c.run_until(all_live_commit(c.live(second)->last_index().value))) return 1;

  std::printf("\n== 6. %s restarts from its log and catches up\n", name(first).c_str());
  c.restart(first);
  std::string last_state;
  auto show_restarted = [&] {
    node* n = c.live(first);
    std::string s = c.log_line(n->log()) + " commit " + std::to_string(n->commit_index().value) + " applied " +
                    std::to_string(n->applied_index().value);
    if (s != last_state) c.say(name(first) + " " + s);
    last_state = s;
  };
  show_restarted();
  c.watch_commits(false);
  for (int i = 0; i < 100 && c.live(first)->applied_index() < c.live(second)->commit_index(); ++i) {
    c.step();
    show_restarted();
  }
  c.watch_commits(true);
  c.propose(second, "d=7");
  if (!c.run_until(all_live_commit(c.live(second)->last_index().value))) return 1;
  for (int i = 0; i < 4; ++i) c.step();  // let the last heartbeats settle

  std::printf("\n== 7. Membership: n6 joins as a learner, catches up, is promoted; %s is removed\n",
              name(first).c_str());
  constexpr node_id newcomer = cluster_size + 1;
  c.start_joining(newcomer);
  if (!c.change(second, {.changes = {{raft::change_type::add_learner, newcomer}}}, "add " + name(newcomer) +
                                                                                       " as a learner")
           .ok())
    return 1;
  c.say("a learner receives the log but does not vote or count: the quorum is still 3 of 5");
  if (!c.run_until([&] { return c.lag(second, newcomer) == 0; })) return 1;
  c.say(name(second) + " reports " + name(newcomer) + " caught up (lag 0): promote it");
  const auto promoted =
      c.change(second, {.changes = {{raft::change_type::add_voter, newcomer}}}, "promote " + name(newcomer));
  if (!promoted.ok()) return 1;
  if (!c.run_until([&] { return c.live(second)->commit_index() >= promoted.index; })) return 1;
  const auto removed =
      c.change(second, {.changes = {{raft::change_type::remove, first}}}, "remove " + name(first));
  if (!removed.ok()) return 1;
  if (!c.run_until([&] { return c.live(second)->commit_index() >= removed.index; })) return 1;
  c.propose(second, "e=8");
  std::vector<node_id> members;
  for (const node_id id : c.ids())
    if (c.live(second)->configuration().contains(id)) members.push_back(id);
  c.say("members now: " + list(members) + "; " + name(first) + " gets nothing more and never campaigns");
  if (!c.run_until([&] {
        for (const node_id id : members)
          if (c.live(id)->applied_index() < c.live(second)->last_index()) return false;
        return true;
      }))
    return 1;
  for (int i = 0; i < 4; ++i) c.step();

  std::printf("\n== 8. Check: every member applied the same entries, in the same order (%s, removed, a prefix)\n",
              name(first).c_str());
  const auto& reference = c.applied(second);
  bool agree = true;
  for (const node_id id : c.ids()) {
    const auto& seq = c.applied(id);
    bool gapless = true;
    for (std::size_t k = 0; k < seq.size(); ++k) gapless = gapless && seq[k].index.value == k + 1;
    const bool member = c.live(second)->configuration().contains(id);
    const bool prefix = seq.size() <= reference.size() && std::equal(seq.begin(), seq.end(), reference.begin());
    const bool same = gapless && (member ? seq == reference : prefix);
    agree = agree && same;
    std::printf("  %s applied %zu entries, digest %016llx%s\n", name(id).c_str(), seq.size(),
                static_cast<unsigned long long>(digest(seq)), same ? "" : "  <-- DIFFERS");
  }
  std::string seq;
  for (const auto& e : reference) seq += (seq.empty() ? "" : " ") + describe(e);
  std::printf("  committed: %s\n", seq.c_str());
  const bool lost_committed = std::any_of(reference.begin(), reference.end(), [&](const entry& e) {
    return e.index == lost.index && e.term == lost.term;
  });
  std::printf("  \"w=lost\" (index %llu, term %llu) %s\n", static_cast<unsigned long long>(lost.index.value),
              static_cast<unsigned long long>(lost.term.value),
              lost_committed ? "was committed" : "was never committed: the client saw no commit and must retry");
  std::printf("  %llu messages delivered, %llu dropped (sent to a crashed node)\n",
              static_cast<unsigned long long>(c.delivered()), static_cast<unsigned long long>(c.dropped()));
  if (!agree || reference.empty()) {
    std::printf("FAILED: the nodes disagree\n");
    return 1;
  }
  std::printf("all %zu members agree on %zu committed entries\n", members.size(), reference.size());
  return 0;
}
