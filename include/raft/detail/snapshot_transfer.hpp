// raft/detail/snapshot_transfer.hpp - log compaction and the chunked
// InstallSnapshot transfer (paper §7, Figure 13; thesis §5). Part of
// raft::node.
//
// One transfer belongs to one leader in one term. The follower assembles the
// chunks of that transfer in order into a buffer allocated once; a chunk at
// offset 0 always starts a new transfer (Figure 13: "create new snapshot file
// if first chunk"), and a new term or another sender discards a partial one,
// so chunks of two leaders' snapshots (whose bytes may differ for the same
// index) are never mixed into one image.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

template <class Tr, class Lg, class Ck, class Rn, class Tc>
compact_status node<Tr, Lg, Ck, Rn, Tc>::compact(index_t upto, raft::bytes data, output_type& out) {
  begin_(out);
  if (upto > applied_) return compact_status::beyond_applied;
  if (upto <= log_->snapshot_index()) return compact_status::not_newer;
  // Entries of this output the caller has not read (applied) yet would be
  // dropped under it.
  if (out.committed.holds_unread_upto_(log_.get(), upto)) return compact_status::unapplied;
  log_install_snapshot_(raft::snapshot{upto, log_->term_at(upto), std::move(data), encoded_membership_at_(upto)}, out);
  out.committed.drop_through_(upto);  // read already, and gone from the Log now
  return compact_status::ok;
}

/// Sends snapshot chunks while the in-flight byte budget allows. Returns
/// whether anything was sent.
template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::send_snapshot_(const node_id& to, progress& pr, output_type& out) {
  if (pr.snap_index != log_->snapshot_index()) {
    // The leader compacted again since the transfer started: send the new one.
    pr.become_snapshot(log_->snapshot_index(), pr.witness ? 0 : log_->snapshot_data().size());
  }
  // A witness gets the snapshot's index, term and membership, no data.
  const raft::bytes data = pr.witness ? raft::bytes{} : log_->snapshot_data();
  raft::bytes members = log_->snapshot_membership();
  if (members.empty()) members = encode_config_entry<Tr>(base_members_);
  const std::uint64_t budget = std::uint64_t{cfg_.max_snapshot_inflight} * cfg_.snapshot_chunk_bytes;
  bool sent = false;
  while (!pr.snap_all_sent && pr.snap_sent - pr.snap_acked < budget) {
    const std::uint64_t n = std::min<std::uint64_t>(cfg_.snapshot_chunk_bytes, pr.snap_total - pr.snap_sent);
    install_snapshot chunk{pr.snap_index, log_->snapshot_term(), pr.snap_total, pr.snap_sent, false,
                           raft::bytes(data.data() + pr.snap_sent, static_cast<std::size_t>(n)), members};
    pr.snap_sent += n;
    chunk.done = pr.snap_sent == pr.snap_total;
    pr.snap_all_sent = chunk.done;
    send_(to, std::move(chunk), out);
    sent = true;
  }
  return sent;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_install_snapshot_(const node_id& from, term_t msg_term, install_snapshot& req,
                                                       output_type& out) {
  if (!heard_from_leader_(from, out)) return step_status::malformed;
  auto refuse = [&](snapshot_refusal why, std::uint64_t offset) {
    send_(from, snapshot_response{req.last_index, offset, false, why}, out);
  };
  if (req.last_index <= commit_) {
    // We already hold everything it covers. It must agree with what we
    // committed; then acknowledge and ignore it.
    if (req.last_index >= log_->snapshot_index() && log_->term_at(req.last_index) != req.last_term) {
      refuse(snapshot_refusal::inconsistent, 0);
      return step_status::malformed;
    }
    rx_.reset();
    send_durable_(from, snapshot_response{req.last_index, req.total_size, true, snapshot_refusal::none}, out);
    return step_status::ok;
  }
  if (req.total_size > cfg_.max_snapshot_bytes || req.data.size() > cfg_.max_snapshot_chunk_bytes) {
    refuse(snapshot_refusal::too_large, 0);
    return step_status::ok;
  }
  if (req.offset > req.total_size || req.data.size() > req.total_size - req.offset ||
      (req.done && req.offset + req.data.size() != req.total_size)) {
    refuse(snapshot_refusal::inconsistent, rx_ ? rx_->received : 0);
    return step_status::malformed;
  }
  const bool same_transfer = rx_ && rx_->from == from && rx_->msg_term == msg_term && rx_->index == req.last_index &&
                             rx_->term == req.last_term && rx_->total == req.total_size;
  if (req.offset == 0 || !same_transfer) {
    // A new transfer; it must start at offset 0 (Figure 13).
    rx_.reset();
    if (req.offset != 0) {
      refuse(snapshot_refusal::bad_offset, 0);
      return step_status::ok;
    }
    // The whole image is allocated once (its size is bounded by
    // config.max_snapshot_bytes) and filled in place, chunk by chunk.
    rx_.emplace(snapshot_rx{from, msg_term, req.last_index, req.last_term, req.total_size,
                            raft::bytes::for_overwrite(static_cast<std::size_t>(req.total_size)), 0});
  }
  if (req.offset != rx_->received) {
    // Lost or reordered chunk: say where we are; the leader resends from there.
    refuse(snapshot_refusal::bad_offset, rx_->received);
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
  raft::snapshot snap{rx_->index, rx_->term, std::move(rx_->data), req.membership};
  rx_.reset();
  log_install_snapshot_(snap, out);
  commit_ = snap.index;
  applied_ = snap.index;
  out.committed.drop_through_(snap.index);
  // "Installed" promises the snapshot is durable: it waits for the write.
  send_durable_(from, snapshot_response{snap.index, snap.data.size(), true, snapshot_refusal::none}, out);
  out.snapshot = std::move(snap);
  release_follower_reads_(out);
  return step_status::ok;
}

template <class Tr, class Lg, class Ck, class Rn, class Tc>
step_status node<Tr, Lg, Ck, Rn, Tc>::on_snapshot_response_(const node_id& from, const snapshot_response& resp,
                                                        output_type& out) {
  auto* l = std::get_if<leader_state>(&role_);
  if (l == nullptr) return step_status::unexpected;
  progress* tracked = l->peers.find(from);
  if (tracked == nullptr) return step_status::unknown_sender;  // not a member (any more)
  progress& pr = *tracked;
  if (resp.installed) {
    if (resp.last_index > log_->last_index()) return step_status::malformed;  // beyond anything we hold
    heard_from_(pr);
    pr.acknowledge(resp.last_index);
    if (pr.state == replication_state::snapshot) trace_(trace_kind::snapshot_sent, from, pr.snap_index.value);
    pr.snapshot_backoff = pr.snapshot_backoff_next = 0;
    if (pr.state == replication_state::snapshot && pr.match >= pr.snap_index) pr.become_probe();
    if (pr.state != replication_state::snapshot) send_entries_or_commit_(from, pr, out);
    return step_status::ok;
  }
  if (pr.state != replication_state::snapshot || resp.last_index != pr.snap_index) return step_status::unexpected;
  // An offset beyond the snapshot comes from no correct follower. One beyond
  // what we sent is valid but late: it answers chunks sent before we went
  // back (go-back-N), and says the follower holds more than we thought.
  if (resp.offset > pr.snap_total) return step_status::malformed;
  heard_from_(pr);
  switch (resp.refusal) {
    case snapshot_refusal::none:
      if (resp.offset > pr.snap_acked) {
        pr.snap_acked = resp.offset;
        pr.stalled_heartbeats = 0;
      }
      if (resp.offset > pr.snap_sent) {
        pr.snap_sent = resp.offset;
        pr.snap_all_sent = pr.snap_sent == pr.snap_total;
      }
      break;
    case snapshot_refusal::bad_offset:
      pr.rewind_snapshot(resp.offset);
      break;
    case snapshot_refusal::too_large:
    case snapshot_refusal::inconsistent: {
      // The follower cannot take this snapshot. Offer it again later (its
      // limits may be raised meanwhile), after one election timeout's worth
      // of heartbeats, doubling on each refusal up to 64 of them - not a
      // whole chunk at every heartbeat.
      trace_(trace_kind::snapshot_refused, from, pr.snap_index.value);
      const std::uint32_t base = std::max<std::uint32_t>(1, cfg_.election_ticks / cfg_.heartbeat_ticks);
      pr.snapshot_backoff_next =
          pr.snapshot_backoff_next == 0 ? base : std::min<std::uint32_t>(pr.snapshot_backoff_next * 2, base * 64);
      pr.snapshot_backoff = pr.snapshot_backoff_next;
      pr.become_probe();
      pr.probe_sent = true;
      return step_status::ok;
    }
  }
  send_snapshot_(from, pr, out);
  return step_status::ok;
}

}  // namespace v0
}  // namespace raft
