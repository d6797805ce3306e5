// examples/kv/net.hpp - small POSIX socket helpers shared by kv-server, kv-cli and the tests.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <span>

#include <raft/wire.hpp>

#include "crc32c.hpp"

namespace kv {

/// Milliseconds on CLOCK_MONOTONIC.
inline std::int64_t now_ms() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
inline std::int64_t now_us() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

struct endpoint {
  std::string host;
  std::uint16_t port = 0;
  [[nodiscard]] std::string str() const { return host + ":" + std::to_string(port); }
};

/// Parses "host:port".
inline std::optional<endpoint> parse_endpoint(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return std::nullopt;
  unsigned long port = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return std::nullopt;
  }
  if (port == 0) return std::nullopt;
  return endpoint{std::string(s.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

/// Parses "1=host:port,2=host:port,...".
inline std::optional<std::map<std::uint64_t, endpoint>> parse_id_map(std::string_view s) {
  std::map<std::uint64_t, endpoint> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    std::uint64_t id = 0;
    for (char c : item.substr(0, eq)) {
      if (c < '0' || c > '9') return std::nullopt;
      id = id * 10 + static_cast<std::uint64_t>(c - '0');
    }
    auto ep = parse_endpoint(item.substr(eq + 1));
    if (!ep || id == 0 || out.count(id) != 0) return std::nullopt;
    out[id] = *ep;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

inline std::optional<sockaddr_in> resolve(const endpoint& ep) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(ep.host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return std::nullopt;
  sockaddr_in a{};
  std::memcpy(&a, res->ai_addr, sizeof a);
  ::freeaddrinfo(res);
  a.sin_port = htons(ep.port);
  return a;
}

inline void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }
inline void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A non-blocking listening socket; throws std::runtime_error.
inline int listen_on(const endpoint& ep) {
  auto a = resolve(ep);
  if (!a) throw std::runtime_error("cannot resolve " + ep.str());
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&*a), sizeof *a) != 0 || ::listen(fd, 128) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot listen on " + ep.str() + ": " + std::strerror(e));
  }
  set_nonblocking(fd);
  return fd;
}

inline std::string peer_name(int fd) {
  sockaddr_in a{};
  socklen_t n = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) return "?";
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

/// Blocking connect with a timeout; returns the fd (blocking mode) or -1.
inline int connect_with_timeout(const endpoint& ep, int timeout_ms) {
  auto a = resolve(ep);
  if (!a) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_nonblocking(fd);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&*a), sizeof *a) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, timeout_ms) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ::close(fd);
      return -1;
    }
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  set_nodelay(fd);
  return fd;
}

/// Writes everything or fails (blocking fd, with a deadline on CLOCK_MONOTONIC ms).
inline bool write_all(int fd, const void* data, std::size_t n, std::int64_t deadline_ms) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    pollfd pf{fd, POLLOUT, 0};
    const std::int64_t left = deadline_ms - now_ms();
    if (left <= 0 || ::poll(&pf, 1, static_cast<int>(left)) != 1) return false;
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

/// Frames between peers:
///
///   length:u32 big-endian | crc:u32 big-endian | body (`length` bytes)
///
/// where crc = CRC-32C of the 4 length bytes followed by the body. A frame
/// whose length is 0 or above the limit, or whose checksum does not match,
/// is refused. CRC-32C catches every error burst of up to 32 bits (so every
/// single flipped bit) and all but about one in 2^32 other corruptions; a
/// single flipped bit in an unchecked raft::codec encoding often still
/// decodes, as another valid message.
inline constexpr std::size_t frame_header_bytes = 8;

inline void put_u32_be(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (24 - 8 * i)) & 0xffu);
}
inline std::uint32_t get_u32_be(const std::byte* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

/// Starts a frame at the end of `out`: reserves its header and returns where
/// the frame starts. Append the body, then call finish_frame().
inline std::size_t begin_frame(std::vector<std::byte>& out) {
  const std::size_t at = out.size();
  out.resize(at + frame_header_bytes);
  return at;
}
/// Fills in the header of the frame begun at `at` (its body is everything
/// after the header). Returns the body length.
inline std::size_t finish_frame(std::vector<std::byte>& out, std::size_t at) {
  const std::size_t len = out.size() - at - frame_header_bytes;
  std::byte* h = out.data() + at;
  put_u32_be(h, static_cast<std::uint32_t>(len));
  std::uint32_t crc = crc32c(h, 4);
  crc = crc32c_extend(crc, h + frame_header_bytes, len);
  put_u32_be(h + 4, crc);
  return len;
}
/// Appends one whole frame carrying `body`.
inline void append_frame(std::vector<std::byte>& out, std::span<const std::byte> body) {
  // resize + memcpy rather than insert(): GCC 12 at -O3 warns falsely
  // (-Wstringop-overflow) about inserting into a freshly grown small vector.
  const std::size_t at = out.size();
  out.resize(at + frame_header_bytes + body.size());
  if (!body.empty()) std::memcpy(out.data() + at + frame_header_bytes, body.data(), body.size());
  finish_frame(out, at);
}
inline std::vector<std::byte> make_frame(std::span<const std::byte> body) {
  std::vector<std::byte> out;
  out.reserve(frame_header_bytes + body.size());
  append_frame(out, body);
  return out;
}

/// The frame at the front of a receive buffer.
struct frame_parse {
  enum class state {
    incomplete,    ///< more bytes needed
    ok,            ///< `body` is a checked frame body; the frame takes `size` bytes
    bad_length,    ///< `length` is 0 or above the limit (known from the first 4 bytes)
    bad_checksum,  ///< the frame is complete but its CRC does not match: damaged
  } st = state::incomplete;
  std::uint32_t length = 0;
  std::size_t size = 0;
  std::span<const std::byte> body;
};

inline frame_parse parse_frame(std::span<const std::byte> in, std::uint32_t max_frame) {
  frame_parse f;
  if (in.size() < 4) return f;
  f.length = get_u32_be(in.data());
  if (f.length == 0 || f.length > max_frame) {
    f.st = frame_parse::state::bad_length;
    return f;
  }
  if (in.size() < frame_header_bytes || in.size() - frame_header_bytes < f.length) return f;
  f.size = frame_header_bytes + f.length;
  std::uint32_t crc = crc32c(in.data(), 4);
  crc = crc32c_extend(crc, in.data() + frame_header_bytes, f.length);
  if (crc != get_u32_be(in.data() + 4)) {
    f.st = frame_parse::state::bad_checksum;
    return f;
  }
  f.body = in.subspan(frame_header_bytes, f.length);
  f.st = frame_parse::state::ok;
  return f;
}

/// The first frame on a peer connection:
///   "KVRAFT03" cluster:blob from:varint to:varint raft_addr:blob client_addr:blob
/// raft_addr and client_addr ("host:port", either may be empty) say where the
/// dialling node listens: a node that does not know the dialler yet (it joined,
/// or was added, while this node was away) learns from it where to answer.
/// "KVRAFT02" is the same without the two addresses and is still accepted.
/// (KVRAFT01 was the KVRAFT02 handshake in frames without a checksum.)
/// The receiver refuses (and closes) a connection from another cluster, from
/// a node id it does not know that gives no address, or meant for another node.
inline std::vector<std::byte> encode_handshake(std::string_view cluster, std::uint64_t from, std::uint64_t to,
                                               std::string_view raft_addr = {}, std::string_view client_addr = {}) {
  // Sized up front and filled in place (same bytes as raft::byte_writer's
  // raw/blob/varint): growing a small vector here trips a false
  // -Wstringop-overflow in GCC 12 at -O3.
  std::vector<std::byte> out(8 + 10 + cluster.size() + 20 + 20 + raft_addr.size() + client_addr.size());
  std::size_t n = 0;
  auto varint = [&](std::uint64_t v) {
    while (v >= 0x80) {
      out[n++] = static_cast<std::byte>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out[n++] = static_cast<std::byte>(v);
  };
  auto blob = [&](std::string_view b) {
    varint(b.size());
    if (!b.empty()) std::memcpy(out.data() + n, b.data(), b.size());
    n += b.size();
  };
  std::memcpy(out.data(), "KVRAFT03", 8);
  n = 8;
  blob(cluster);
  varint(from);
  varint(to);
  blob(raft_addr);
  blob(client_addr);
  out.resize(n);
  return out;
}

/// True if `in` (the start of a connection) is a handshake of the previous
/// protocol version, whose frames carried no checksum: length, "KVRAFT01".
inline bool is_v1_handshake(std::span<const std::byte> in) {
  return in.size() >= 12 && std::memcmp(in.data() + 4, "KVRAFT01", 8) == 0;
}

struct handshake {
  std::string cluster;
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::string raft_addr;    // KVRAFT03: where the dialler listens for peers ("" if not said)
  std::string client_addr;  // KVRAFT03: where it listens for clients ("" if not said)
};

inline std::optional<handshake> decode_handshake(std::span<const std::byte> in) {
  if (in.size() < 8) return std::nullopt;
  const bool v3 = std::memcmp(in.data(), "KVRAFT03", 8) == 0;
  if (!v3 && std::memcmp(in.data(), "KVRAFT02", 8) != 0) return std::nullopt;
  raft::byte_reader r(in.subspan(8));
  std::span<const std::byte> c, ra, ca;
  handshake h;
  if (!r.blob(c, 256) || !r.varint(h.from) || !r.varint(h.to)) return std::nullopt;
  if (v3 && (!r.blob(ra, 255) || !r.blob(ca, 255))) return std::nullopt;
  if (r.remaining() != 0) return std::nullopt;
  h.cluster.assign(reinterpret_cast<const char*>(c.data()), c.size());
  h.raft_addr.assign(reinterpret_cast<const char*>(ra.data()), ra.size());
  h.client_addr.assign(reinterpret_cast<const char*>(ca.data()), ca.size());
  return h;
}

}  // namespace kv
