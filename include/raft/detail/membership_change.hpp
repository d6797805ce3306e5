// raft/detail/membership_change.hpp - membership as log data, changes by
// single server or joint consensus, learners and witnesses (thesis §4). Part
// of raft::node.
//
// Where the configuration comes from (thesis §4.1): a node uses the newest
// configuration entry in its log, whether committed or not; without one, the
// membership its snapshot carries; without that, config::voters (a
// brand-new node). The node keeps the snapshot's membership (base_members_)
// and every configuration entry after it (conf_log_), so that a truncated
// suffix (a follower overwriting a deposed leader's entries) or an installed
// snapshot gives back the right configuration at once, and a compaction
// knows the membership as of its index.
//
// Rules of a change, on the leader:
//  * one change at a time: a new one only once the previous configuration
//    entry is committed, and only once the leader committed an entry of its
//    own term (thesis §4.1, the correction to single-server changes: without
//    it a leader could combine its change with an uncommitted one of a
//    deposed leader and make two disjoint majorities);
//  * a joint configuration (thesis §4.3) is left by appending the new voters
//    alone once the joint entry commits (auto_leave), or on leave_joint();
//  * peers added by a change are tracked at once (new voters count toward
//    the quorum as soon as the entry is in the leader's log); removed ones
//    keep receiving the log and heartbeats until an election timeout after
//    their removal committed, so they learn it and stop campaigning;
//  * until a configuration commits, a full voter of the configuration before
//    it may still campaign even if the new one leaves it out (thesis §4.2.2:
//    it may hold the longest log, and be needed to commit the change); it
//    counts votes by the new configuration, and steps down once it commits;
//  * a leader whose own removal (or demotion) committed steps down (thesis
//    §4.2.2), after telling the most up-to-date remaining voter to campaign.
// Witnesses: the leader strips command payloads from every entry and
// snapshot it sends a witness (take_entries_, send_snapshot_); a witness
// votes and acknowledges like any voter, and never campaigns.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

/// Constructor: the membership from the Log (snapshot, then configuration
/// entries), or the bootstrap one.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::load_membership_() {
  const Lg& lg = *log_;
  const raft::bytes snap = lg.snapshot_membership();
  if (!snap.empty()) {
    auto e = decode_config_entry<Tr>(snap);
    if (!e) detail::invalid_argument("raft::node: the Log's snapshot membership is damaged (it does not decode)");
    base_members_ = std::move(e->members);
  } else {
    base_members_ = bootstrap_members_();
  }
  for (index_t i = lg.first_index(); i <= lg.last_index(); i = i.next()) {
    const entry_type& e = lg.entry_at(i);
    if (e.kind != entry_kind::config) continue;
    auto c = decode_config_entry<Tr>(e.conf);
    if (!c)
      detail::invalid_argument("raft::node: the Log's configuration entry at index " + std::to_string(i.value) +
                               " is damaged (it does not decode)");
    conf_log_.push_back(conf_point{i, std::move(c->members)});
  }
  refresh_conf_();
}

/// The membership config.voters and config.witnesses give (a brand-new
/// node's; empty for one that joins a running cluster).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::bootstrap_members_() const -> membership_type {
  membership_type m;
  m.voters = cfg_.voters;
  m.witnesses = cfg_.witnesses;
  return m;
}

/// Why the leader `l` may not append a configuration entry now, if it may not
/// (thesis §4.1: one change at a time, after an entry of its own term).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
std::optional<change_status> node<Tr, Lg, Ck, Rn, Tc>::change_refused_(const leader_state& l) const {
  if (l.transfer_to) return change_status::transferring;
  if (conf_index_ > commit_) return change_status::change_pending;
  if (!l.committed_in_term) return change_status::not_ready;
  return std::nullopt;
}

/// A configuration entry (already validated) was appended to the Log.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::conf_appended_(const entry_type& e) {
  auto c = decode_config_entry<Tr>(e.conf);
  RAFT_ASSERT(c.has_value(), "a configuration entry that passed validation does not decode");
  conf_log_.push_back(conf_point{e.index, std::move(c->members)});
  refresh_conf_();
}

/// The Log was cut back to `keep`: configurations after it are gone.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::conf_truncated_(index_t keep) {
  if (conf_log_.empty() || conf_log_.back().index <= keep) return;
  while (!conf_log_.empty() && conf_log_.back().index > keep) conf_log_.pop_back();
  refresh_conf_();
}

/// A snapshot was stored: its membership is the base; configuration entries
/// it covers are gone (all of them if the Log was discarded).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::conf_snapshot_(const raft::snapshot& snap, bool keeps_suffix) {
  if (!snap.membership.empty()) {
    auto e = decode_config_entry<Tr>(snap.membership);
    RAFT_ASSERT(e.has_value(), "a snapshot membership that passed validation does not decode");
    base_members_ = std::move(e->members);
  } else {
    base_members_ = bootstrap_members_();
  }
  if (!keeps_suffix) conf_log_.clear();
  std::size_t drop = 0;
  while (drop < conf_log_.size() && conf_log_[drop].index <= snap.index) ++drop;
  conf_log_.erase(conf_log_.begin(), conf_log_.begin() + static_cast<std::ptrdiff_t>(drop));
  refresh_conf_();
}

/// Whether `id` is a witness in any configuration this node still knows
/// (its snapshot's, or one in its log).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::was_witness_(const node_id& id) const {
  if (base_members_.is_witness(id)) return true;
  return std::any_of(conf_log_.begin(), conf_log_.end(), [&](const conf_point& p) { return p.members.is_witness(id); });
}

/// The membership in force at index `i` (>= the snapshot index).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::membership_at_(index_t i) const -> const membership_type& {
  for (auto it = conf_log_.rbegin(); it != conf_log_.rend(); ++it)
    if (it->index <= i) return it->members;
  return base_members_;
}

/// What a snapshot at `i` records. Empty when the membership there is a
/// joining node's empty bootstrap one (it compacts entries it received before
/// the configuration entry that added it): "none recorded", which a restart
/// reads as config::voters again, and which no voter-less encoding could say.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
raft::bytes node<Tr, Lg, Ck, Rn, Tc>::encoded_membership_at_(index_t i) const {
  const membership_type& m = membership_at_(i);
  if (m.voters.empty()) return raft::bytes{};
  return encode_config_entry<Tr>(m);
}

/// members_ and conf_ follow the newest configuration; a leader tracks
/// every member.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::refresh_conf_() {
  const membership_type& m = conf_log_.empty() ? base_members_ : conf_log_.back().members;
  const index_t at = conf_log_.empty() ? log_->snapshot_index() : conf_log_.back().index;
  const bool changed = !(m == members_) || at != conf_index_;
  members_ = m;
  conf_index_ = at;
  conf_ = members_.quorum();
  self_voter_ = conf_.contains(cfg_.id);
  self_witness_ = members_.is_witness(cfg_.id);
  // The configuration before the newest one (none when the newest is the
  // snapshot's or the bootstrap one: those are committed).
  const membership_type* prev =
      conf_log_.empty() ? nullptr : conf_log_.size() == 1 ? &base_members_ : &conf_log_[conf_log_.size() - 2].members;
  self_prev_voter_ = prev != nullptr && prev->is_voter(cfg_.id) && !prev->is_witness(cfg_.id);
  // A node whose log shows it was a witness holds entries without payloads:
  // it never leads, whatever its role now (it should have restarted empty).
  self_witness_ = self_witness_ || was_witness_(cfg_.id);
  auto only_me = [&](const majority_config<node_id>& set) {
    return set.empty() || (set.size() == 1 && set.contains(cfg_.id));
  };
  self_quorum_ = self_voter_ && only_me(conf_.incoming) && only_me(conf_.outgoing);
  if (changed) trace_(trace_kind::membership_changed, std::nullopt, conf_index_.value);
  if (auto* l = std::get_if<leader_state>(&role_)) sync_peers_(*l);
}

/// A new peer's progress: probing from our last index, counted as recently
/// heard from (CheckQuorum gives it an election timeout to answer).
template <class Tr, class Lg, class Ck, class Rn, class Tc>
progress node<Tr, Lg, Ck, Rn, Tc>::new_progress_() const {
  progress pr(log_->last_index().next(), cfg_.max_inflight, cfg_.max_inflight_bytes);
  if (const auto* l = std::get_if<leader_state>(&role_)) pr.last_heard = l->ticks;
  return pr;
}

/// Leader: a progress record for every member, with its role. May add
/// records (invalidating references to them): called only where none is held.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::sync_peers_(leader_state& l) {
  for (const auto& id : members_.members()) {
    if (id == cfg_.id) continue;
    progress* pr = l.peers.find(id);
    if (pr == nullptr) pr = &l.peers.add(id, new_progress_());
    pr->learner = !conf_.contains(id);
    pr->witness = members_.is_witness(id);
  }
}

/// Leader, at each tick, once the newest configuration is committed: drop
/// the peers it removed, step down if it removed us (thesis §4.2.2), leave a
/// joint configuration marked auto_leave if that was not done yet.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::tidy_membership_(leader_state& l, output_type& out) {
  if (conf_index_ > commit_) return;
  if (l.conf_seen_committed != conf_index_) {
    l.conf_seen_committed = conf_index_;
    l.conf_committed_at = l.ticks;
  }
  // Removed peers hear our heartbeats (and the commit index) for one more
  // election timeout: a removed voter that learns its removal committed
  // stops campaigning (promotable_), one that does not would try, refused.
  if (l.ticks - l.conf_committed_at >= cfg_.election_ticks) {
    std::vector<node_id> gone;
    for (const auto& [id, pr] : l.peers)
      if (!members_.contains(id)) gone.push_back(id);
    for (const auto& id : gone) {
      if (l.transfer_to && *l.transfer_to == id) abort_transfer_(l, out);
      l.peers.remove(id);
    }
  }
  if (!self_voter_) {
    // Hand over to a voter that holds our whole log, so the cluster need not
    // wait for an election timeout.
    std::optional<node_id> heir;
    for (const auto& id : conf_.incoming) {
      const progress* pr = l.peers.find(id);
      if (pr != nullptr && !pr->witness && pr->match == log_->last_index()) {
        heir = id;
        break;
      }
    }
    if (heir) send_(*heir, timeout_now{}, out);
    trace_(trace_kind::removed_step_down, heir);
    become_follower_(term_, std::nullopt, &out);
    return;
  }
  if (members_.joint() && members_.auto_leave && !l.transfer_to) {
    append_config_(raft::leave_joint(members_), raft::bytes{}, out);
    replicate_(l, out);
  }
}

/// Leader: appends a configuration entry holding `next` and uses it at once.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::append_config_(membership_type next, const raft::bytes& context, output_type& out)
    -> change_result_type {
  const index_t at = log_->last_index().next();
  log_->append(entry_type{term_, at, entry_kind::config, payload{}, encode_config_entry<Tr>(next, context)});
  wrote_(out);
  conf_log_.push_back(conf_point{at, std::move(next)});
  refresh_conf_();
  return {change_status::ok, at, term_, leader_};
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::change_membership(const conf_change_type& change, output_type& out)
    -> change_result_type {
  begin_(out);
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) return {change_status::not_leader, {}, {}, leader_};
  if (const auto why = change_refused_(*l)) return {*why, {}, {}, leader_};
  auto next = apply_change(members_, change);
  if (const auto* why = std::get_if<change_status>(&next)) return {*why, {}, {}, leader_};
  // A former witness holds entries without payloads: it may come back only
  // as a new node with empty storage. Refused where the log still shows it.
  for (const auto& c : change.changes)
    if (c.type != change_type::add_witness && c.type != change_type::remove && was_witness_(c.id))
      return {change_status::witness_conversion, {}, {}, leader_};
  const change_result_type r = append_config_(std::move(std::get<membership_type>(next)), change.context, out);
  replicate_(*l, out);
  return r;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::leave_joint(output_type& out) -> change_result_type {
  begin_(out);
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) return {change_status::not_leader, {}, {}, leader_};
  if (!members_.joint()) return {change_status::not_joint, {}, {}, leader_};
  if (const auto why = change_refused_(*l)) return {*why, {}, {}, leader_};
  const change_result_type r = append_config_(raft::leave_joint(members_), raft::bytes{}, out);
  replicate_(*l, out);
  return r;
}

}  // namespace v0
}  // namespace raft
