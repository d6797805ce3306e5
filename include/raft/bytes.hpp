// raft/bytes.hpp - the default command payload: an immutable, shared buffer.
//
// A payload is written once (by the client that proposes it, or by the codec
// that decodes it) and then read by the leader's log, by every AppendEntries
// that carries it and by every follower's log. Sharing one immutable buffer
// makes all of those copies a reference-count increment instead of a heap
// allocation, which is what keeps the replication hot path allocation-free.
#pragma once

#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace raft {
inline namespace v0 {

/// Immutable byte string with shared ownership. Copying is O(1) and never
/// allocates; the reference count is atomic, so copies may be handed to other
/// threads. An empty `bytes` owns nothing.
class bytes {
 public:
  bytes() noexcept = default;
  bytes(const void* data, std::size_t n) : rep_(make(n)) {
    if (n != 0) std::memcpy(rep_->data(), data, n);
  }
  explicit bytes(std::string_view s) : bytes(s.data(), s.size()) {}
  explicit bytes(std::span<const std::byte> s) : bytes(s.data(), s.size()) {}
  explicit bytes(const char* s) : bytes(std::string_view(s)) {}

  bytes(const bytes& o) noexcept : rep_(o.rep_) {
    if (rep_ != nullptr) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  bytes(bytes&& o) noexcept : rep_(std::exchange(o.rep_, nullptr)) {}
  bytes& operator=(const bytes& o) noexcept {
    bytes(o).swap(*this);
    return *this;
  }
  bytes& operator=(bytes&& o) noexcept {
    bytes(std::move(o)).swap(*this);
    return *this;
  }
  ~bytes() {
    if (rep_ != nullptr) release();  // the empty case (e.g. entry::conf of most entries) stays inline
  }

  void swap(bytes& o) noexcept { std::swap(rep_, o.rep_); }

  /// A buffer of `n` bytes with unspecified contents, to be filled through
  /// fill_data() before it is copied or shared (e.g. a snapshot assembled
  /// from chunks without a second copy).
  [[nodiscard]] static bytes for_overwrite(std::size_t n) {
    bytes b;
    b.rep_ = make(n);
    return b;
  }
  /// Writable access for a buffer made by for_overwrite() that has not been
  /// shared yet (nullptr otherwise: shared bytes are immutable).
  [[nodiscard]] std::byte* fill_data() noexcept {
    if (rep_ == nullptr || rep_->refs.load(std::memory_order_acquire) != 1) return nullptr;
    return rep_->data();
  }

  [[nodiscard]] std::size_t size() const noexcept { return rep_ == nullptr ? 0 : rep_->size; }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] const std::byte* data() const noexcept { return rep_ == nullptr ? nullptr : rep_->data(); }
  [[nodiscard]] std::string_view view() const noexcept {
    return rep_ == nullptr ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(rep_->data()), rep_->size);
  }
  [[nodiscard]] std::span<const std::byte> span() const noexcept { return {data(), size()}; }
  [[nodiscard]] std::string str() const { return std::string(view()); }

  friend bool operator==(const bytes& a, const bytes& b) noexcept { return a.view() == b.view(); }
  friend auto operator<=>(const bytes& a, const bytes& b) noexcept { return a.view() <=> b.view(); }

 private:
  struct rep {
    std::atomic<std::uint32_t> refs{1};
    std::size_t size = 0;
    std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  };
  static rep* make(std::size_t n) {
    if (n == 0) return nullptr;
    void* mem = ::operator new(sizeof(rep) + n);
    rep* r = new (mem) rep;
    r->size = n;
    return r;
  }
  void release() noexcept {
    if (rep_ != nullptr && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      rep_->~rep();
      ::operator delete(static_cast<void*>(rep_));
    }
    rep_ = nullptr;
  }
  rep* rep_ = nullptr;
};

}  // namespace v0
}  // namespace raft
