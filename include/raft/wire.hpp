// raft/wire.hpp - bounds-checked primitives for the binary codec.
//
// Integers are LEB128 varints (small values, the common case, take one byte).
// Every read checks the remaining length first and reports failure instead of
// reading past the end; a reader that failed stays failed, so a decoder can
// run a sequence of reads and check once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace raft {
inline namespace v0 {

/// Appends encoded values to a byte vector.
class byte_writer {
 public:
  explicit byte_writer(std::vector<std::byte>& out) noexcept : out_(&out) {}

  void u8(std::uint8_t v) { out_->push_back(static_cast<std::byte>(v)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<std::byte>(v));
  }
  void raw(const void* p, std::size_t n) {
    if (n == 0) return;
    const auto* b = static_cast<const std::byte*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  /// A length-prefixed byte string.
  void blob(std::span<const std::byte> s) {
    varint(s.size());
    raw(s.data(), s.size());
  }
  void blob(std::string_view s) {
    varint(s.size());
    raw(s.data(), s.size());
  }
  [[nodiscard]] std::size_t size() const noexcept { return out_->size(); }

 private:
  std::vector<std::byte>* out_;
};

/// Reads encoded values from a byte span, never past its end.
class byte_reader {
 public:
  explicit byte_reader(std::span<const std::byte> in) noexcept : in_(in) {}

  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return ok_ ? in_.size() - pos_ : 0; }
  [[nodiscard]] std::size_t offset() const noexcept { return pos_; }
  /// True if a read failed because the input ended (as opposed to a value
  /// being invalid).
  [[nodiscard]] bool hit_end() const noexcept { return eof_; }
  /// Marks the reader failed (used by decoders for semantic errors).
  void fail() noexcept { ok_ = false; }

  bool u8(std::uint8_t& v) noexcept {
    if (!ok_) return false;
    if (pos_ >= in_.size()) {
      eof_ = true;
      return fail_false();
    }
    v = static_cast<std::uint8_t>(in_[pos_++]);
    return true;
  }
  /// At most 10 bytes; rejects encodings that overflow 64 bits and overlong
  /// (non-minimal) encodings, so that every value has exactly one encoding.
  bool varint(std::uint64_t& v) noexcept {
    std::uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = 0;
      if (!u8(b)) return false;
      if (shift == 63 && (b & 0x7e) != 0) return fail_false();  // bits beyond 64
      r |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) {
        if (b == 0 && shift != 0) return fail_false();  // overlong: one value, one encoding
        v = r;
        return true;
      }
    }
    return fail_false();
  }
  /// Reads a length-prefixed byte string of at most `max` bytes, as a view
  /// into the input (valid as long as the input is).
  bool blob(std::span<const std::byte>& out, std::size_t max = SIZE_MAX) noexcept {
    std::uint64_t n = 0;
    if (!varint(n)) return false;
    if (n > max) return fail_false();
    if (n > remaining()) {
      eof_ = true;
      return fail_false();
    }
    out = in_.subspan(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }

 private:
  bool fail_false() noexcept {
    ok_ = false;
    return false;
  }
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  bool eof_ = false;
};

}  // namespace v0
}  // namespace raft
