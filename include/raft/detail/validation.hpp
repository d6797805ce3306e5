// raft/detail/validation.hpp - shape checks that need no state: a message
// that fails them is hostile or corrupt and is dropped before it can touch
// anything. Validate where data enters, then trust it. Part of raft::node.
#pragma once

#include "../node.hpp"

namespace raft {
inline namespace v0 {

template <class Tr, class Lg, class Ck, class Rn, class Tc>
bool node<Tr, Lg, Ck, Rn, Tc>::well_formed_(const message_type& m) const {
  if (m.term == term_t{}) return false;  // every real message carries a term >= 1
  // Terms and indexes beyond 2^62 would let one message make counters
  // overflow; a term more than 2^32 above ours would let one message use up
  // the terms left (then nobody could ever campaign again).
  constexpr std::uint64_t limit = detail::counter_limit;
  if (m.term.value >= limit) return false;
  if (m.term > term_ && m.term.value - term_.value > detail::max_term_jump) return false;
  if (const auto* a = std::get_if<append_request<payload>>(&m.body)) {
    if (a->prev_index.value >= limit || a->commit.value >= limit || a->entries.size() >= limit - a->prev_index.value)
      return false;
    if (a->prev_term > m.term) return false;
    if (a->prev_index == index_t{} && a->prev_term != term_t{}) return false;
    term_t prev_term = a->prev_term;
    index_t expect = a->prev_index.next();
    if (a->entries.size() > cfg_.max_append_entries * std::size_t{4} + 65536) return false;
    for (const auto& e : a->entries) {
      if (e.index != expect || e.term < prev_term || e.term > m.term || e.term == term_t{}) return false;
      if (static_cast<std::uint8_t>(e.kind) >= entry_kind_count) return false;
      if (e.kind == entry_kind::config ? !decode_config_entry<Tr>(e.conf).has_value() : !e.conf.empty()) return false;
      prev_term = e.term;
      expect = expect.next();
    }
  }
  if (const auto* r = std::get_if<append_response>(&m.body)) {
    if (r->index.value >= limit || r->conflict_index.value >= limit || r->conflict_term > m.term) return false;
  }
  if (const auto* is = std::get_if<install_snapshot>(&m.body)) {
    if (is->last_index.value >= limit) return false;
    if (is->last_index == index_t{} || is->last_term == term_t{} || is->last_term > m.term) return false;
    if (!is->membership.empty() && !decode_config_entry<Tr>(is->membership)) return false;
  }
  if (const auto* sr = std::get_if<snapshot_response>(&m.body)) {
    if (sr->last_index.value >= limit) return false;
  }
  if (const auto* v = std::get_if<vote_request>(&m.body)) {
    if (v->last_term > m.term || v->last_index.value >= limit) return false;
    if (v->last_index == index_t{} && v->last_term != term_t{}) return false;
  }
  if (const auto* v = std::get_if<pre_vote_request>(&m.body)) {
    if (v->last_term > m.term || v->last_index.value >= limit) return false;
    if (v->last_index == index_t{} && v->last_term != term_t{}) return false;
  }
  if (const auto* r = std::get_if<read_index_response>(&m.body)) {
    if (r->index.value >= limit || (!r->ok && r->index != index_t{})) return false;
  }
  if (const auto* f = std::get_if<forward_proposal<payload>>(&m.body)) {
    if (f->commands.empty() || f->commands.size() > cfg_.max_append_entries) return false;
  }
  return true;
}

}  // namespace v0
}  // namespace raft
