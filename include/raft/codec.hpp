// raft/codec.hpp - the compact binary encoding of every message.
//
// Layout (all integers LEB128 varints unless noted; flags are one byte, 0 or 1):
//
//   message   := version:u8 type:u8 from:id to:id term body
//   vote_request    := last_index last_term transfer:u8
//   vote_response   := granted:u8
//   append_request  := prev_index prev_term commit round count entry*count
//     entry         := term kind:u8 payload [conf:blob if kind is config]
//                      (index is implicit: prev_index + 1 + k)
//   append_response := success:u8 index conflict_index conflict_term round
//   install_snapshot  := last_index last_term total_size offset done:u8 chunk:blob membership:blob
//   snapshot_response := last_index offset installed:u8 refusal:u8
//   pre_vote_request    := last_index last_term
//   pre_vote_response   := granted:u8
//   timeout_now         :=                        (empty: the envelope says it all)
//   read_index_request  := context
//   read_index_response := context index ok:u8
//   forward_proposal    := count payload*count   (count 0 decodes; the node refuses it)
//
// `type` is the index of the body in message::body_type, in the order above
// (vote_request 0 ... forward_proposal 11).
//
// `version` is raft::wire_format_version (3). It exists for rolling
// upgrades: a node that meets a format newer than its own (or a corrupt first
// byte) says so - decode_error::unknown_version, with the version it met in
// decode_result::version - instead of misparsing the rest as its own format.
// The version is bumped whenever the encoding of any existing message
// changes. New message kinds within the same version get new type tags; an
// older decoder answers those with decode_error::unknown_type. A decoder
// accepts exactly its own version, and checks it before it decodes anything
// else (only the input's size is compared with codec_limits first).
//
// History. Format 1: types 0-5, without vote_request.transfer and the two
// `round` fields. Format 2 added those fields (changing the encodings of
// vote_request, append_request and append_response) and types 6-11.
// Format 3 added configuration entries (entry kind 2 with its `conf` blob,
// raft/membership.hpp) and the snapshot's membership to install_snapshot.
// The blobs are opaque here; the node decodes and checks them.
//
// `id` and `payload` are written by the Transport policy. Decoding trusts
// nothing: every length is checked against the bytes that remain and against
// codec_limits before anything is allocated, every enum and flag is range
// checked, trailing bytes are an error. An entry takes at least two bytes
// and a forwarded command at least one (so a Transport must not encode a
// payload in zero bytes): a count larger than the bytes left could hold is
// too_many_entries, found before anything is reserved. A decoded message is
// well-formed as bytes; the node still checks that it makes sense
// (raft::node::step).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "concepts.hpp"
#include "message.hpp"
#include "wire.hpp"

namespace raft {
inline namespace v0 {

/// The wire format this codec writes, and the only one it reads: the first
/// byte of every encoded message. Bumped whenever the encoding of an
/// existing message changes (see the comment at the top of this file).
inline constexpr std::uint8_t wire_format_version = 3;

enum class decode_error : std::uint8_t {
  none = 0,
  truncated,         ///< The input ended in the middle of a value.
  unknown_type,      ///< The message type tag is not one this codec knows.
  bad_value,         ///< A flag, enum or id/payload failed to decode or is out of range.
  too_many_entries,  ///< More entries (or forwarded commands) than codec_limits::max_entries, or than
                     ///< the bytes could hold.
  too_large,         ///< The input is longer than codec_limits::max_message_bytes.
  trailing_bytes,    ///< Bytes left over after a complete message.
  unknown_version,   ///< The first byte is not wire_format_version (see decode_result::version).
                     ///< Last, so that the earlier values keep their numbers.
};

[[nodiscard]] constexpr const char* to_string(decode_error e) noexcept {
  switch (e) {
    case decode_error::none: return "no error";
    case decode_error::truncated: return "input truncated";
    case decode_error::unknown_type: return "unknown message type";
    case decode_error::bad_value: return "invalid field value";
    case decode_error::too_many_entries: return "too many entries";
    case decode_error::too_large: return "message too large";
    case decode_error::trailing_bytes: return "trailing bytes after message";
    case decode_error::unknown_version:
      return "unknown wire format version: this peer speaks a newer (or corrupt) format";
  }
  return "?";
}

struct codec_limits {
  std::size_t max_message_bytes = std::size_t{64} << 20;
  std::size_t max_entries = std::size_t{1} << 20;
};

template <class T>
struct decode_result {
  std::optional<T> value;
  decode_error error = decode_error::none;
  std::size_t offset = 0;  ///< Where decoding stopped (the error's position).
  /// The wire format version the input announced (its first byte), set
  /// whenever at least one byte was read - also when it is not ours
  /// (decode_error::unknown_version), so that a caller can log "peer speaks
  /// format 7, we speak 2". 0 if nothing was read (empty or too large input);
  /// 0 is never a valid version.
  std::uint8_t version = 0;

  [[nodiscard]] explicit operator bool() const noexcept { return value.has_value(); }
};

template <class Transport>
class codec {
  static_assert(check_transport<Transport>());

 public:
  using node_id = typename Transport::node_id;
  using payload = typename Transport::payload;
  using message_type = message<node_id, payload>;
  using entry_type = entry<payload>;

  /// Appends the encoding of `m` to `out`.
  static void encode(const message_type& m, std::vector<std::byte>& out) {
    byte_writer w(out);
    w.u8(wire_format_version);
    w.u8(static_cast<std::uint8_t>(m.body.index()));
    Transport::encode_id(w, m.from);
    Transport::encode_id(w, m.to);
    w.varint(m.term.value);
    std::visit([&](const auto& b) { encode_body(w, b); }, m.body);
  }

  [[nodiscard]] static std::vector<std::byte> encode(const message_type& m) {
    std::vector<std::byte> out;
    encode(m, out);
    return out;
  }

  [[nodiscard]] static decode_result<message_type> decode(std::span<const std::byte> in, const codec_limits& lim = {}) {
    // One case in the switch below per body type: a new type must add one
    // (and its encode_body overload, which std::visit demands) and bump this.
    static_assert(std::variant_size_v<typename message_type::body_type> == 12,
                  "raft::codec: a message body type was added or removed; update decode()");
    decode_result<message_type> res;
    if (in.size() > lim.max_message_bytes) {
      res.error = decode_error::too_large;
      return res;
    }
    byte_reader r(in);
    decode_error err = decode_error::none;
    message_type m;
    std::uint8_t version = 0;
    std::uint8_t type = 0;
    std::uint64_t term = 0;
    if (!r.u8(version)) return fail(res, r, why(r));
    res.version = version;
    if (version != wire_format_version) return fail(res, r, decode_error::unknown_version);
    if (!r.u8(type)) return fail(res, r, why(r));
    if (type >= std::variant_size_v<typename message_type::body_type>) return fail(res, r, decode_error::unknown_type);
    auto from = Transport::decode_id(r);
    auto to = from ? Transport::decode_id(r) : std::nullopt;
    if (!from || !to || !r.varint(term)) return fail(res, r, why(r));
    m.from = std::move(*from);
    m.to = std::move(*to);
    m.term = term_t{term};
    switch (type) {
      case 0: err = decode_vote_request(r, m); break;
      case 1: err = decode_vote_response(r, m); break;
      case 2: err = decode_append_request(r, m, lim); break;
      case 3: err = decode_append_response(r, m); break;
      case 4: err = decode_install_snapshot(r, m); break;
      case 5: err = decode_snapshot_response(r, m); break;
      case 6: err = decode_pre_vote_request(r, m); break;
      case 7: err = decode_pre_vote_response(r, m); break;
      case 8: m.body = timeout_now{}; break;
      case 9: err = decode_read_index_request(r, m); break;
      case 10: err = decode_read_index_response(r, m); break;
      case 11: err = decode_forward_proposal(r, m, lim); break;
      default: err = decode_error::unknown_type; break;
    }
    if (err != decode_error::none) return fail(res, r, err);
    if (r.remaining() != 0) return fail(res, r, decode_error::trailing_bytes);
    res.value = std::move(m);
    res.offset = r.offset();
    return res;
  }

 private:
  static decode_result<message_type>& fail(decode_result<message_type>& res, const byte_reader& r, decode_error e) {
    res.error = e;
    res.offset = r.offset();
    return res;
  }

  static void encode_body(byte_writer& w, const vote_request& b) {
    w.varint(b.last_index.value);
    w.varint(b.last_term.value);
    w.u8(b.transfer ? 1 : 0);
  }
  static void encode_body(byte_writer& w, const vote_response& b) { w.u8(b.granted ? 1 : 0); }
  static void encode_body(byte_writer& w, const append_request<payload>& b) {
    w.varint(b.prev_index.value);
    w.varint(b.prev_term.value);
    w.varint(b.commit.value);
    w.varint(b.round);
    w.varint(b.entries.size());
    for (const auto& e : b.entries) {
      w.varint(e.term.value);
      w.u8(static_cast<std::uint8_t>(e.kind));
      Transport::encode_payload(w, e.data);
      if (e.kind == entry_kind::config) w.blob(e.conf.span());
    }
  }
  static void encode_body(byte_writer& w, const append_response& b) {
    w.u8(b.success ? 1 : 0);
    w.varint(b.index.value);
    w.varint(b.conflict_index.value);
    w.varint(b.conflict_term.value);
    w.varint(b.round);
  }

  static void encode_body(byte_writer& w, const install_snapshot& b) {
    w.varint(b.last_index.value);
    w.varint(b.last_term.value);
    w.varint(b.total_size);
    w.varint(b.offset);
    w.u8(b.done ? 1 : 0);
    w.blob(b.data.span());
    w.blob(b.membership.span());
  }
  static void encode_body(byte_writer& w, const snapshot_response& b) {
    w.varint(b.last_index.value);
    w.varint(b.offset);
    w.u8(b.installed ? 1 : 0);
    w.u8(static_cast<std::uint8_t>(b.refusal));
  }
  static void encode_body(byte_writer& w, const pre_vote_request& b) {
    w.varint(b.last_index.value);
    w.varint(b.last_term.value);
  }
  static void encode_body(byte_writer& w, const pre_vote_response& b) { w.u8(b.granted ? 1 : 0); }
  static void encode_body(byte_writer&, const timeout_now&) {}
  static void encode_body(byte_writer& w, const read_index_request& b) { w.varint(b.context); }
  static void encode_body(byte_writer& w, const read_index_response& b) {
    w.varint(b.context);
    w.varint(b.index.value);
    w.u8(b.ok ? 1 : 0);
  }
  static void encode_body(byte_writer& w, const forward_proposal<payload>& b) {
    w.varint(b.commands.size());
    for (const auto& c : b.commands) Transport::encode_payload(w, c);
  }

  static decode_error read_bool(byte_reader& r, bool& out) {
    std::uint8_t v = 0;
    if (!r.u8(v)) return why(r);
    if (v > 1) return decode_error::bad_value;
    out = v == 1;
    return decode_error::none;
  }
  template <class Tag>
  static bool read_counter(byte_reader& r, Tag& out) {
    std::uint64_t v = 0;
    if (!r.varint(v)) return false;
    out = Tag{v};
    return true;
  }
  /// Why a read failed: the input ended, or a value was invalid.
  static decode_error why(const byte_reader& r) { return r.hit_end() ? decode_error::truncated : decode_error::bad_value; }

  static decode_error decode_vote_request(byte_reader& r, message_type& m) {
    vote_request b;
    if (!read_counter(r, b.last_index) || !read_counter(r, b.last_term)) return why(r);
    if (auto e = read_bool(r, b.transfer); e != decode_error::none) return e;
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_vote_response(byte_reader& r, message_type& m) {
    vote_response b;
    if (auto e = read_bool(r, b.granted); e != decode_error::none) return e;
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_append_request(byte_reader& r, message_type& m, const codec_limits& lim) {
    append_request<payload> b;
    std::uint64_t count = 0;
    if (!read_counter(r, b.prev_index) || !read_counter(r, b.prev_term) || !read_counter(r, b.commit) ||
        !r.varint(b.round) || !r.varint(count))
      return why(r);
    // Each entry takes at least two bytes (term, kind): a count the remaining
    // input cannot hold is rejected before anything is allocated.
    if (count > lim.max_entries || count > r.remaining() / 2) return decode_error::too_many_entries;
    if (b.prev_index.value > UINT64_MAX - count) return decode_error::bad_value;
    // Reserve no more than the input could describe at a realistic entry
    // size, so a small hostile message cannot make us reserve much more
    // memory than it occupies.
    b.entries.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, r.remaining() / 16 + 1)));
    for (std::uint64_t k = 0; k < count; ++k) {
      entry_type e;
      std::uint8_t kind = 0;
      if (!read_counter(r, e.term) || !r.u8(kind)) return why(r);
      if (kind >= entry_kind_count) return decode_error::bad_value;
      e.kind = static_cast<entry_kind>(kind);
      e.index = b.prev_index + (k + 1);
      auto p = Transport::decode_payload(r);
      if (!p) return why(r);
      e.data = std::move(*p);
      if (e.kind == entry_kind::config) {
        std::span<const std::byte> conf;
        if (!r.blob(conf)) return why(r);
        e.conf = raft::bytes(conf);
      }
      b.entries.push_back(std::move(e));
    }
    m.body = std::move(b);
    return decode_error::none;
  }
  static decode_error decode_install_snapshot(byte_reader& r, message_type& m) {
    install_snapshot b;
    if (!read_counter(r, b.last_index) || !read_counter(r, b.last_term) || !r.varint(b.total_size) ||
        !r.varint(b.offset))
      return why(r);
    if (auto e = read_bool(r, b.done); e != decode_error::none) return e;
    std::span<const std::byte> chunk;
    std::span<const std::byte> members;
    if (!r.blob(chunk) || !r.blob(members)) return why(r);
    b.data = raft::bytes(chunk);
    b.membership = raft::bytes(members);
    m.body = std::move(b);
    return decode_error::none;
  }
  static decode_error decode_snapshot_response(byte_reader& r, message_type& m) {
    snapshot_response b;
    std::uint8_t refusal = 0;
    if (!read_counter(r, b.last_index) || !r.varint(b.offset)) return why(r);
    if (auto e = read_bool(r, b.installed); e != decode_error::none) return e;
    if (!r.u8(refusal)) return why(r);
    if (refusal >= snapshot_refusal_count) return decode_error::bad_value;
    b.refusal = static_cast<snapshot_refusal>(refusal);
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_append_response(byte_reader& r, message_type& m) {
    append_response b;
    if (auto e = read_bool(r, b.success); e != decode_error::none) return e;
    if (!read_counter(r, b.index) || !read_counter(r, b.conflict_index) || !read_counter(r, b.conflict_term) ||
        !r.varint(b.round))
      return why(r);
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_pre_vote_request(byte_reader& r, message_type& m) {
    pre_vote_request b;
    if (!read_counter(r, b.last_index) || !read_counter(r, b.last_term)) return why(r);
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_pre_vote_response(byte_reader& r, message_type& m) {
    pre_vote_response b;
    if (auto e = read_bool(r, b.granted); e != decode_error::none) return e;
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_read_index_request(byte_reader& r, message_type& m) {
    read_index_request b;
    if (!r.varint(b.context)) return why(r);
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_read_index_response(byte_reader& r, message_type& m) {
    read_index_response b;
    if (!r.varint(b.context) || !read_counter(r, b.index)) return why(r);
    if (auto e = read_bool(r, b.ok); e != decode_error::none) return e;
    m.body = b;
    return decode_error::none;
  }
  static decode_error decode_forward_proposal(byte_reader& r, message_type& m, const codec_limits& lim) {
    forward_proposal<payload> b;
    std::uint64_t count = 0;
    if (!r.varint(count)) return why(r);
    // Each command takes at least one byte: a count the remaining input
    // cannot hold is rejected before anything is allocated. (An empty
    // proposal is well-formed bytes; the node refuses it.)
    if (count > lim.max_entries || count > r.remaining()) return decode_error::too_many_entries;
    // As for entries: reserve no more than the input could describe at a
    // realistic command size.
    b.commands.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, r.remaining() / 16 + 1)));
    for (std::uint64_t k = 0; k < count; ++k) {
      auto p = Transport::decode_payload(r);
      if (!p) return why(r);
      b.commands.push_back(std::move(*p));
    }
    m.body = std::move(b);
    return decode_error::none;
  }
};

}  // namespace v0
}  // namespace raft
