// raft/transport.hpp - the default Transport policy.
//
// A Transport names the vocabulary of the wire: the type that identifies a
// node, the type of a command payload, and how each of them is written to and
// read from bytes. raft::codec<Transport> builds the encoding of every message
// from these pieces. The node itself never sends anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "bytes.hpp"
#include "wire.hpp"

namespace raft {
inline namespace v0 {

/// Node ids are 64-bit integers, payloads are raft::bytes (immutable, shared).
struct default_transport {
  using node_id = std::uint64_t;
  using payload = raft::bytes;

  static void encode_id(byte_writer& w, node_id id) { w.varint(id); }
  static std::optional<node_id> decode_id(byte_reader& r) {
    std::uint64_t v = 0;
    if (!r.varint(v)) return std::nullopt;
    return v;
  }
  static void encode_payload(byte_writer& w, const payload& p) { w.blob(p.span()); }
  static std::optional<payload> decode_payload(byte_reader& r) {
    std::span<const std::byte> s;
    if (!r.blob(s)) return std::nullopt;
    return payload(s);
  }
  /// Bytes a payload accounts for in flow control (max_append_bytes).
  static std::size_t payload_size(const payload& p) noexcept { return p.size(); }
};

}  // namespace v0
}  // namespace raft
