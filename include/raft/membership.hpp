// raft/membership.hpp - cluster membership as data: who votes, who learns,
// who witnesses, and how a change turns one membership into the next.
//
// Membership lives in the log (thesis §4.1): a configuration change is an
// entry of kind entry_kind::config whose `conf` bytes hold the whole new
// membership (encode_config_entry), and a node uses the newest configuration
// in its log, committed or not. A snapshot carries the membership as of its
// index. config::voters only seeds a brand-new cluster.
//
// Three kinds of member:
//   voter    holds the log, votes, counts toward every quorum, may lead;
//   learner  holds the log, never votes, campaigns or counts (thesis §4.2.1);
//   witness  a voter that holds terms and indexes but no command payloads
//            and no state machine: it votes and counts toward quorums, but
//            never campaigns, so it never leads.
//
// A change (conf_change) is a list of additions, removals and role changes.
// apply_change() turns the current membership into the next one following
// etcd's ConfChangeV2 semantics: a change of at most one voter is applied
// directly (single-server change, thesis §4.1); anything larger goes through
// a joint configuration (thesis §4.3) in which every decision needs a
// majority of the old voters and of the new, left automatically or on
// request. Everything here is a pure function of its arguments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "bytes.hpp"
#include "quorum.hpp"
#include "types.hpp"
#include "wire.hpp"

namespace raft {
inline namespace v0 {

/// A cluster's membership at one point of the log.
template <class NodeId>
struct membership {
  /// The voters; while joint, the new (incoming) voters. Witnesses included.
  std::vector<NodeId> voters;
  /// While joint (thesis §4.3): the old voters. Empty otherwise.
  std::vector<NodeId> voters_outgoing;
  /// Non-voting members: they receive the log, never vote or count.
  std::vector<NodeId> learners;
  /// While joint: old voters that become learners when the joint
  /// configuration is left (they still vote in the old set until then).
  std::vector<NodeId> learners_next;
  /// Voters (of either set) that store no command payloads and never lead.
  std::vector<NodeId> witnesses;
  /// While joint: the leader leaves the joint configuration by itself once
  /// it is committed. Without it, node::leave_joint() does.
  bool auto_leave = false;

  [[nodiscard]] bool joint() const noexcept { return !voters_outgoing.empty(); }
  [[nodiscard]] bool is_voter(const NodeId& id) const noexcept { return has(voters, id) || has(voters_outgoing, id); }
  [[nodiscard]] bool is_learner(const NodeId& id) const noexcept {
    return has(learners, id) || has(learners_next, id);
  }
  [[nodiscard]] bool is_witness(const NodeId& id) const noexcept { return has(witnesses, id); }
  [[nodiscard]] bool contains(const NodeId& id) const noexcept { return is_voter(id) || has(learners, id); }
  /// Every member, each once: voters, outgoing-only voters, learners.
  [[nodiscard]] std::vector<NodeId> members() const {
    std::vector<NodeId> all = voters;
    for (const auto& id : voters_outgoing)
      if (!has(all, id)) all.push_back(id);
    for (const auto& id : learners)
      if (!has(all, id)) all.push_back(id);
    return all;
  }
  /// The quorum rules of this membership (raft/quorum.hpp).
  [[nodiscard]] quorum_config<NodeId> quorum() const {
    return quorum_config<NodeId>{majority_config<NodeId>(voters), majority_config<NodeId>(voters_outgoing)};
  }

  /// Order-insensitive equality (each list compared as a set).
  friend bool operator==(const membership& a, const membership& b) {
    return same(a.voters, b.voters) && same(a.voters_outgoing, b.voters_outgoing) && same(a.learners, b.learners) &&
           same(a.learners_next, b.learners_next) && same(a.witnesses, b.witnesses) && a.auto_leave == b.auto_leave;
  }

  static bool has(const std::vector<NodeId>& v, const NodeId& id) noexcept {
    return std::find(v.begin(), v.end(), id) != v.end();
  }

 private:
  static bool same(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
    return a.size() == b.size() && std::all_of(a.begin(), a.end(), [&](const NodeId& id) { return has(b, id); });
  }
};

/// One item of a change.
enum class change_type : std::uint8_t {
  add_voter = 0,    ///< Add a voter, or promote a learner to voter.
  add_learner = 1,  ///< Add a learner, or demote a voter to learner.
  add_witness = 2,  ///< Add a witness (a node that is not a member yet).
  remove = 3,       ///< Remove a member, whatever its role.
};
inline constexpr std::uint8_t change_type_count = 4;

template <class NodeId>
struct member_change {
  change_type type = change_type::add_voter;
  NodeId id{};
  friend bool operator==(const member_change&, const member_change&) = default;
};

/// How a change is carried out (etcd's ConfChangeTransition).
enum class transition : std::uint8_t {
  /// A change of at most one voter is applied directly (thesis §4.1); a
  /// larger one goes through a joint configuration left automatically.
  automatic = 0,
  /// Always through a joint configuration, left automatically once committed.
  joint = 1,
  /// Always through a joint configuration, left when node::leave_joint() is
  /// called (e.g. after the application moved data around).
  joint_explicit = 2,
};

/// A membership change request (node::change_membership).
template <class NodeId>
struct conf_change {
  std::vector<member_change<NodeId>> changes{};
  transition how = transition::automatic;
  /// Opaque to the library; travels in the log entry with the change (e.g.
  /// the network addresses of added nodes) and comes back to every node's
  /// application in decode_config_entry().context.
  raft::bytes context{};
};

/// Why a change was refused (or ok). Nothing is appended unless ok.
enum class change_status : std::uint8_t {
  ok = 0,
  not_leader,          ///< Only the leader changes membership (the result names the leader if known).
  change_pending,      ///< The previous configuration change is not committed yet.
  not_ready,           ///< The leader has not committed an entry of its term yet (thesis §4.1); retry shortly.
  transferring,        ///< A leadership transfer is under way.
  in_joint,            ///< The configuration is joint: leave it first (leave_joint, or wait for auto-leave).
  not_joint,           ///< leave_joint() while the configuration is not joint.
  empty_change,        ///< The change lists nothing.
  duplicate_id,        ///< The change lists the same node twice.
  unknown_node,        ///< remove of a node that is not a member.
  already_member,      ///< The node already has that role.
  witness_conversion,  ///< A witness cannot become a voter or learner, nor the reverse: remove it, then add it anew.
  no_voters,           ///< The result would have no voter able to lead (every voter removed, or only witnesses).
  too_large,           ///< More members than max_members.
};

[[nodiscard]] constexpr const char* to_string(change_status s) noexcept {
  switch (s) {
    case change_status::ok: return "ok";
    case change_status::not_leader: return "not the leader";
    case change_status::change_pending: return "the previous configuration change is not committed yet";
    case change_status::not_ready: return "the leader has not committed an entry of its term yet";
    case change_status::transferring: return "a leadership transfer is under way";
    case change_status::in_joint: return "the configuration is joint: leave it first";
    case change_status::not_joint: return "the configuration is not joint";
    case change_status::empty_change: return "the change is empty";
    case change_status::duplicate_id: return "the change lists the same node twice";
    case change_status::unknown_node: return "no such member";
    case change_status::already_member: return "the node already has that role";
    case change_status::witness_conversion: return "a witness cannot change role: remove it, then add it anew";
    case change_status::no_voters: return "the configuration would have no voter able to lead";
    case change_status::too_large: return "too many members";
  }
  return "?";
}

/// What change_membership() / leave_joint() returned: on ok, the index and
/// term of the configuration entry (committed once the application sees it in
/// out.committed); otherwise why not, and the leader if this node knows it.
template <class NodeId>
struct change_result {
  change_status status = change_status::ok;
  index_t index;
  term_t term;
  std::optional<NodeId> leader;
  [[nodiscard]] bool ok() const noexcept { return status == change_status::ok; }
};

/// Most members a membership may list (in any role). Bounds what a decoded
/// (possibly hostile) configuration can make a node allocate.
inline constexpr std::size_t max_members = 1024;

/// The membership after `change`, or why it is refused. `current` must not
/// be joint (in_joint otherwise). Pure: the same inputs give the same answer.
template <class NodeId>
[[nodiscard]] std::variant<membership<NodeId>, change_status> apply_change(const membership<NodeId>& current,
                                                                           const conf_change<NodeId>& change) {
  using M = membership<NodeId>;
  if (current.joint()) return change_status::in_joint;
  if (change.changes.empty()) return change_status::empty_change;
  for (std::size_t i = 0; i < change.changes.size(); ++i)
    for (std::size_t j = i + 1; j < change.changes.size(); ++j)
      if (change.changes[i].id == change.changes[j].id) return change_status::duplicate_id;
  std::vector<NodeId> voters = current.voters;
  std::vector<NodeId> learners = current.learners;
  std::vector<NodeId> witnesses = current.witnesses;
  auto erase = [](std::vector<NodeId>& v, const NodeId& id) {
    v.erase(std::remove(v.begin(), v.end(), id), v.end());
  };
  for (const auto& c : change.changes) {
    const bool voter = M::has(voters, c.id), learner = M::has(learners, c.id), witness = M::has(witnesses, c.id);
    switch (c.type) {
      case change_type::add_voter:
        if (witness) return change_status::witness_conversion;
        if (voter) return change_status::already_member;
        erase(learners, c.id);
        voters.push_back(c.id);
        break;
      case change_type::add_learner:
        if (witness) return change_status::witness_conversion;
        if (learner) return change_status::already_member;
        erase(voters, c.id);
        learners.push_back(c.id);
        break;
      case change_type::add_witness:
        if (witness) return change_status::already_member;
        if (voter || learner) return change_status::witness_conversion;
        voters.push_back(c.id);
        witnesses.push_back(c.id);
        break;
      case change_type::remove:
        if (!voter && !learner) return change_status::unknown_node;
        erase(voters, c.id);
        erase(learners, c.id);
        erase(witnesses, c.id);
        break;
      default: return change_status::empty_change;  // not a change_type (decoded garbage)
    }
  }
  if (std::none_of(voters.begin(), voters.end(), [&](const NodeId& id) { return !M::has(witnesses, id); }))
    return change_status::no_voters;

  // How many voters differ between the old set and the new one.
  std::size_t changed = 0;
  for (const auto& id : voters)
    if (!M::has(current.voters, id)) ++changed;
  for (const auto& id : current.voters)
    if (!M::has(voters, id)) ++changed;
  M next;
  if (change.how == transition::automatic && changed <= 1) {
    next.voters = std::move(voters);  // single-server change (thesis §4.1)
    next.learners = std::move(learners);
    next.witnesses = std::move(witnesses);
    if (next.members().size() > max_members) return change_status::too_large;
    return next;
  }
  // Joint (thesis §4.3): the old voters keep voting as the outgoing set. A
  // voter demoted to learner stays a voter there until the joint
  // configuration is left, so it waits in learners_next; a removed witness
  // stays a witness while it still votes in the old set.
  next.voters = std::move(voters);
  next.voters_outgoing = current.voters;
  for (const auto& id : learners) {
    if (M::has(next.voters_outgoing, id)) next.learners_next.push_back(id);
    else next.learners.push_back(id);
  }
  next.witnesses = std::move(witnesses);
  for (const auto& id : current.witnesses)
    if (M::has(next.voters_outgoing, id) && !M::has(next.witnesses, id)) next.witnesses.push_back(id);
  next.auto_leave = change.how != transition::joint_explicit;
  if (next.members().size() > max_members) return change_status::too_large;  // the outgoing voters count too
  return next;
}

/// The membership once the joint configuration `current` is left: the new
/// voters alone, learners_next become learners.
template <class NodeId>
[[nodiscard]] membership<NodeId> leave_joint(const membership<NodeId>& current) {
  membership<NodeId> next;
  next.voters = current.voters;
  next.learners = current.learners;
  for (const auto& id : current.learners_next)
    if (!membership<NodeId>::has(next.learners, id)) next.learners.push_back(id);
  for (const auto& id : current.witnesses)
    if (membership<NodeId>::has(next.voters, id)) next.witnesses.push_back(id);
  return next;
}

/// Whether `m` keeps the invariants every membership the library builds
/// keeps: no duplicates, learners never voters, learners_next and
/// auto_leave only while joint, witnesses among the voters, a voter able to
/// lead in each set, at most max_members members. A decoded configuration
/// that fails it is refused.
template <class NodeId>
[[nodiscard]] bool valid(const membership<NodeId>& m) {
  using M = membership<NodeId>;
  auto unique = [](const std::vector<NodeId>& v) {
    for (std::size_t i = 0; i < v.size(); ++i)
      for (std::size_t j = i + 1; j < v.size(); ++j)
        if (v[i] == v[j]) return false;
    return true;
  };
  if (m.voters.size() + m.voters_outgoing.size() + m.learners.size() + m.learners_next.size() + m.witnesses.size() >
      4 * max_members)
    return false;
  if (!unique(m.voters) || !unique(m.voters_outgoing) || !unique(m.learners) || !unique(m.learners_next) ||
      !unique(m.witnesses))
    return false;
  for (const auto& id : m.learners)
    if (m.is_voter(id) || M::has(m.learners_next, id)) return false;
  for (const auto& id : m.learners_next)  // (a witness never becomes a learner)
    if (!M::has(m.voters_outgoing, id) || M::has(m.voters, id) || M::has(m.witnesses, id)) return false;
  for (const auto& id : m.witnesses)
    if (!m.is_voter(id)) return false;
  if (!m.joint() && (m.auto_leave || !m.learners_next.empty())) return false;
  auto can_lead = [&](const std::vector<NodeId>& set) {
    return std::any_of(set.begin(), set.end(), [&](const NodeId& id) { return !M::has(m.witnesses, id); });
  };
  if (!can_lead(m.voters) || (m.joint() && !can_lead(m.voters_outgoing))) return false;
  return m.members().size() <= max_members;
}

/// What a configuration entry holds: the membership from its index on, and
/// the change's context (opaque to the library).
template <class NodeId>
struct config_entry {
  membership<NodeId> members;
  raft::bytes context{};
  friend bool operator==(const config_entry&, const config_entry&) = default;
};

/// Version of the encoding below (its first byte). Stored in logs and
/// snapshots: a decoder refuses versions it does not know.
inline constexpr std::uint8_t config_entry_format = 1;

/// Encodes a configuration entry (also the membership a snapshot carries,
/// with an empty context): [format u8][flags u8][five id lists, each a
/// varint count then the ids][context blob]. Ids through Transport::encode_id.
template <class Transport>
[[nodiscard]] raft::bytes encode_config_entry(const membership<typename Transport::node_id>& m,
                                              const raft::bytes& context = {}) {
  std::vector<std::byte> buf;
  byte_writer w(buf);
  w.u8(config_entry_format);
  w.u8(m.auto_leave ? 1 : 0);
  for (const auto* list : {&m.voters, &m.voters_outgoing, &m.learners, &m.learners_next, &m.witnesses}) {
    w.varint(list->size());
    for (const auto& id : *list) Transport::encode_id(w, id);
  }
  w.blob(context.span());
  return raft::bytes(buf.data(), buf.size());
}

/// Decodes what encode_config_entry wrote; nothing if the bytes are damaged,
/// of an unknown format, have trailing bytes, or describe an invalid
/// membership (valid()).
template <class Transport>
[[nodiscard]] std::optional<config_entry<typename Transport::node_id>> decode_config_entry(const raft::bytes& b) {
  using Id = typename Transport::node_id;
  byte_reader r(b.span());
  std::uint8_t format = 0, flags = 0;
  if (!r.u8(format) || format != config_entry_format || !r.u8(flags) || flags > 1) return std::nullopt;
  config_entry<Id> e;
  e.members.auto_leave = flags == 1;
  for (auto* list : {&e.members.voters, &e.members.voters_outgoing, &e.members.learners, &e.members.learners_next,
                     &e.members.witnesses}) {
    std::uint64_t n = 0;
    if (!r.varint(n) || n > max_members) return std::nullopt;
    list->reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n; ++i) {
      std::optional<Id> id = Transport::decode_id(r);
      if (!id) return std::nullopt;
      list->push_back(std::move(*id));
    }
  }
  std::span<const std::byte> ctx;
  if (!r.blob(ctx) || !r.ok() || r.remaining() != 0) return std::nullopt;
  e.context = raft::bytes(ctx);
  if (!valid(e.members)) return std::nullopt;
  return e;
}

}  // namespace v0
}  // namespace raft
