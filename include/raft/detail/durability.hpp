// raft/detail/durability.hpp - Log writes, durability reports and the
// promises that wait for them (thesis §10.2.1). Part of raft::node.
//
// Every call into the node that changes the Log is one write, numbered
// 1, 2, ... (log_write::seq); the output names the newest (out.persist). The
// node keeps one small record per write not yet reported durable, holding
// what a report of it will prove: the log up to `durable_upto`. A later
// truncation (a follower replacing a conflicting suffix, or discarding its
// log for a snapshot) lowers `durable_upto` of every earlier write to the
// truncation point, because a report for them says nothing about the entries
// that replaced the truncated ones. The leader counts itself toward commit
// only up to durable_index_; acknowledgements and vote grants are held until
// every write issued before them is durable.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

template <class Tr, class Lg, class Ck, class Rn, class Tc>
node<Tr, Lg, Ck, Rn, Tc>::node(config_type cfg, Lg log, Ck clock, Rn rng, Tc trace)
    : cfg_(std::move(cfg)),
      log_(std::make_unique<Lg>(std::move(log))),
      clock_(std::move(clock)),
      rng_(std::move(rng)),
      tracer_(std::move(trace)) {
  if (auto problem = cfg_.validate()) detail::invalid_argument(*problem);
  const Lg& lg = *log_;
  if (lg.last_index() < lg.snapshot_index() || lg.first_index() != lg.snapshot_index().next())
    detail::invalid_argument("raft::node: the Log's snapshot_index, first_index and last_index disagree");
  const hard_state_type hs = lg.hard_state();
  if (lg.last_index() > lg.snapshot_index() && lg.term_at(lg.last_index()) > hs.term)
    detail::invalid_argument(
        "raft::node: the Log holds an entry of term " + std::to_string(lg.term_at(lg.last_index()).value) +
        " but its hard state says term " + std::to_string(hs.term.value) +
        ". The hard state (term, vote) must be durable before or together with any entry of a newer term: make "
        "save_hard_state() durable no later than the append() that follows it (flush them in the order the node "
        "made them). The vote of that term may have been lost, so this Log cannot be trusted as it is");
  // A vote for a node since removed is fine: votes are not checked against
  // the membership (thesis §4.1: servers answer requests from anyone).
  term_ = hs.term;
  vote_ = hs.vote;
  commit_ = lg.snapshot_index();
  applied_ = commit_;
  durable_index_ = lg.last_index();  // what the node is built from is durable by definition
  // Restarting from a snapshot: the application must restore it before
  // any later entry is applied; the first output carries it.
  pending_restore_ = lg.snapshot_index() > index_t{};
  load_membership_();
  std::uint64_t id_hash = 0;
  {
    std::vector<std::byte> buf;
    byte_writer w(buf);
    Tr::encode_id(w, cfg_.id);
    for (auto b : buf) id_hash = id_hash * 131 + static_cast<std::uint64_t>(b);
  }
  rng_.seed(detail::mix64(cfg_.random_seed ^ detail::mix64(id_hash + 0x9e3779b97f4a7c15ull)));
  become_follower_(term_, std::nullopt, nullptr);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
auto node<Tr, Lg, Ck, Rn, Tc>::persisted(const log_write& w, output_type& out) -> persist_status {
  begin_(out);
  if (w.seq == 0 || w.seq > write_seq_) return persist_status::unknown;
  if (w.seq <= durable_seq_) return persist_status::stale;
  // Every write after durable_seq_ has a record, oldest first.
  const auto it = std::find_if(pending_.begin(), pending_.end(), [&](const pending_write& p) { return p.seq == w.seq; });
  RAFT_ASSERT(it != pending_.end(), "a write newer than the durable one has no record");
  if (it->last_index != w.last_index || it->last_term != w.last_term) return persist_status::unknown;
  mark_durable_(w.seq);
  // Release the promises that waited for it, in the order they were made.
  std::size_t keep = 0;
  for (auto& h : held_) {
    if (h.needs <= durable_seq_) out.messages.push_back(std::move(h.msg));
    else held_[keep++] = std::move(h);
  }
  held_.resize(keep);
  if (std::holds_alternative<candidate_state>(role_)) {
    maybe_win_(out);  // our own vote may count now
  } else if (auto* l = std::get_if<leader_state>(&role_)) {
    if (maybe_commit_(*l, out)) after_commit_(*l, out);  // our own copy may count now
  }
  return persist_status::ok;
}

/// Start of every input: a new write begins; a restored node hands its
/// snapshot to the application first.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::begin_(output_type& out) {
  write_open_ = false;
  if (!pending_restore_) return;
  pending_restore_ = false;
  out.snapshot = raft::snapshot{log_->snapshot_index(), log_->snapshot_term(), log_->snapshot_data()};
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::set_hard_state_(term_t t, std::optional<node_id> vote, output_type& out) {
  if (t != term_) {
    held_.clear();  // promises made in an older term mean nothing now (and could mislead)
    rx_.reset();    // a snapshot transfer belongs to one leader's term
  }
  term_ = t;
  vote_ = std::move(vote);
  log_->save_hard_state(hard_state_type{term_, vote_});
  wrote_(out);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::log_truncate_after_(index_t i, output_type& out) {
  RAFT_ASSERT(i >= commit_, "about to truncate a committed entry");
  log_->truncate_after(i);
  wrote_(out);  // opens this write before the older ones are capped
  truncated_(i);
  conf_truncated_(i);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::log_install_snapshot_(const raft::snapshot& snap, output_type& out) {
  // The Log keeps the suffix after snap.index if it agrees with the snapshot
  // (thesis §5.1); then nothing durable is contradicted: until the snapshot
  // is durable, the entries it covers still are. Otherwise the whole log is
  // replaced, and earlier writes prove durable only the committed prefix,
  // which the snapshot cannot contradict.
  const bool keeps_suffix = snap.index <= log_->last_index() && snap.index >= log_->snapshot_index() &&
                            log_->term_at(snap.index) == snap.term;
  const index_t agreed = commit_;
  log_->install_snapshot(snap);
  wrote_(out);
  if (!keeps_suffix) truncated_(agreed);
  conf_snapshot_(snap, keeps_suffix);
}

/// Records that the current call wrote to the Log.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::wrote_(output_type& out) {
  if (!write_open_) {
    write_open_ = true;
    ++write_seq_;
  }
  if constexpr (log_durable_on_write) {
    // Durable already: no record to keep, nothing will ever wait.
    durable_seq_ = write_seq_;
    durable_index_ = log_->last_index();
    out.persist = log_write{write_seq_, durable_index_, log_->term_at(durable_index_)};
    return;
  }
  if (pending_.empty() || pending_.back().seq != write_seq_) pending_.push_back(pending_write{write_seq_, {}, {}, {}});
  auto& w = pending_.back();
  w.last_index = log_->last_index();
  w.last_term = log_->term_at(w.last_index);
  w.durable_upto = w.last_index;
  out.persist = log_write{w.seq, w.last_index, w.last_term};
}

/// The log was cut back to `keep`: older writes no longer prove anything
/// beyond it.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::truncated_(index_t keep) {
  durable_index_ = min(durable_index_, keep);
  for (auto& p : pending_)
    if (p.seq != write_seq_) p.durable_upto = min(p.durable_upto, keep);
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::mark_durable_(std::uint64_t seq) {
  std::size_t k = 0;
  while (k < pending_.size() && pending_[k].seq <= seq) ++k;
  RAFT_ASSERT(k > 0 && pending_[k - 1].seq == seq, "marking a write durable that has no record");
  durable_index_ = pending_[k - 1].durable_upto;
  durable_seq_ = seq;
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(k));
}

/// Sends a message that promises durable state (an append acknowledgement, a
/// vote grant, an installed snapshot): at once if every write so far is
/// durable, otherwise once it is. Acknowledgements to one leader are
/// cumulative, so a newer one replaces a held one instead of queueing.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
template <class Body>
void node<Tr, Lg, Ck, Rn, Tc>::send_durable_(const node_id& to, Body&& body, output_type& out) {
#ifndef RAFT_TEST_MUTATION_EARLY_ACK
  if (durable_seq_ < write_seq_) {
    if constexpr (std::is_same_v<std::decay_t<Body>, append_response>) {
      for (auto& h : held_) {
        auto* r = std::get_if<append_response>(&h.msg.body);
        if (r != nullptr && r->success && h.msg.to == to && h.msg.term == term_) {
          r->index = max(r->index, body.index);
          r->round = std::max(r->round, body.round);
          h.needs = write_seq_;
          return;
        }
      }
    }
    held_.push_back(held_message{write_seq_, message_type{cfg_.id, to, term_, std::forward<Body>(body)}});
    return;
  }
#endif
  send_(to, std::forward<Body>(body), out);
}

/// Emits every committed, not yet emitted entry, in order.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
void node<Tr, Lg, Ck, Rn, Tc>::emit_committed_(output_type& out) {
  if (applied_ >= commit_) return;
  out.committed.extend_(log_.get(), &entry_at_thunk_, &first_index_thunk_, applied_.next(), commit_);
  applied_ = commit_;
  release_follower_reads_(out);
}

}  // namespace v0
}  // namespace raft
