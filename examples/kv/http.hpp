// examples/kv/http.hpp - the small subset of HTTP/1.1 kv-server speaks, both
// sides: an incremental request parser for the server and a blocking
// keep-alive client for kv-cli and the tests.
//
// Supported: request line, headers, Content-Length bodies, keep-alive,
// "Expect: 100-continue" (curl sends it for larger bodies). Not supported:
// chunked request bodies (411 Length Required).
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "net.hpp"

namespace kv {

struct http_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool http10 = false;     // "HTTP/1.0" request line
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

struct http_limits {
  std::size_t max_head = 8192;              // request line + headers
  std::size_t max_body = std::size_t{1} << 20;
};

struct http_parse {
  enum class state { incomplete, complete, error } st = state::incomplete;
  int status = 0;          // error: the status to answer with
  std::string reason;      // error: why
  std::size_t consumed = 0;
  bool expect_continue = false;  // incomplete: the client waits for "100 Continue"
  http_request req;
};

inline std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// Parses one request from the front of `in`.
inline http_parse parse_http_request(std::string_view in, const http_limits& lim) {
  http_parse p;
  auto fail = [&](int status, std::string why) {
    p.st = http_parse::state::error;
    p.status = status;
    p.reason = std::move(why);
    return p;
  };
  const auto end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in.size() > lim.max_head) return fail(431, "request head larger than " + std::to_string(lim.max_head) + " bytes");
    // Reject obvious garbage early instead of waiting for a blank line that never comes.
    for (char c : in.substr(0, std::min<std::size_t>(in.size(), 16)))
      if (static_cast<unsigned char>(c) < 0x20 && c != '\r' && c != '\n' && c != '\t')
        return fail(400, "binary data where an HTTP request line was expected");
    return p;
  }
  if (end + 4 > lim.max_head) return fail(431, "request head larger than " + std::to_string(lim.max_head) + " bytes");
  std::string_view head = in.substr(0, end);
  const auto eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
  const auto s1 = line.find(' ');
  const auto s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
  if (s1 == std::string_view::npos || s2 == std::string_view::npos) return fail(400, "malformed request line");
  p.req.method = std::string(line.substr(0, s1));
  p.req.target = std::string(line.substr(s1 + 1, s2 - s1 - 1));
  const std::string_view version = line.substr(s2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return fail(400, "unsupported protocol version");
  if (p.req.method.empty() || p.req.target.empty() || p.req.target[0] != '/') return fail(400, "malformed request line");
  for (char c : p.req.method)
    if (c < 'A' || c > 'Z') return fail(400, "malformed method");
  p.req.http10 = version == "HTTP/1.0";
  p.req.keep_alive = !p.req.http10;
  while (!head.empty()) {
    const auto e = head.find("\r\n");
    const std::string_view h = head.substr(0, e);
    head = e == std::string_view::npos ? std::string_view{} : head.substr(e + 2);
    const auto colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(400, "malformed header line");
    p.req.headers[to_lower(std::string(h.substr(0, colon)))] = std::string(trim(h.substr(colon + 1)));
  }
  const std::string conn = to_lower(p.req.header("connection"));
  if (conn == "close") p.req.keep_alive = false;
  if (conn == "keep-alive") p.req.keep_alive = true;
  if (!p.req.header("transfer-encoding").empty()) return fail(411, "chunked bodies are not supported; send Content-Length");
  std::size_t len = 0;
  if (const std::string cl = p.req.header("content-length"); !cl.empty()) {
    if (cl.size() > 18 || !std::all_of(cl.begin(), cl.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail(400, "malformed Content-Length");
    len = std::stoull(cl);
  }
  if (len > lim.max_body)
    return fail(413, "value of " + std::to_string(len) + " bytes exceeds the limit of " + std::to_string(lim.max_body) + " bytes");
  const std::size_t total = end + 4 + len;
  if (in.size() < total) {
    p.expect_continue = to_lower(p.req.header("expect")) == "100-continue";
    return p;
  }
  p.req.body = std::string(in.substr(end + 4, len));
  p.consumed = total;
  p.st = http_parse::state::complete;
  return p;
}

inline const char* status_text(int s) {
  switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "Unknown";
}

inline std::string http_response(int status, std::string_view body, std::string_view extra_headers = {},
                                 bool close = false) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Content-Type: text/plain; charset=utf-8\r\n";
  r += extra_headers;
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  r += body;
  return r;
}

/// Decodes %XX escapes; nothing if an escape is malformed.
inline std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
    out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}
inline std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// ------------------------------------------------------------------ client

struct http_response_msg {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

/// A blocking HTTP/1.1 client holding one keep-alive connection to one server.
class http_client {
 public:
  enum class outcome {
    ok,            ///< A response arrived.
    not_sent,      ///< Could not connect or send: the server never saw the request.
    no_response,   ///< Sent, but no complete response (timeout, reset): outcome unknown.
  };
  struct result {
    outcome what = outcome::not_sent;
    http_response_msg resp;
    std::string error;
  };

  explicit http_client(endpoint ep = {}) : ep_(std::move(ep)) {}
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;
  http_client(http_client&& o) noexcept : ep_(std::move(o.ep_)), fd_(std::exchange(o.fd_, -1)) {}
  ~http_client() { close(); }

  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] const endpoint& target() const noexcept { return ep_; }

  result request(std::string_view method, std::string_view path, std::string_view body = {},
                 std::string_view extra_headers = {}, int timeout_ms = 2000) {
    const std::int64_t deadline = now_ms() + timeout_ms;
    result r;
    std::string req = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: " + ep_.str() +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra_headers) + "\r\n";
    req += body;
    // A kept-alive connection may have been closed by the server meanwhile:
    // a failure to write on a reused connection is retried once on a new one
    // (the server cannot have read a request it never received in full).
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ >= 0 && !idle_connection_alive_()) close();  // the server closed it (restart, error)
      const bool reused = fd_ >= 0;
      if (fd_ < 0) {
        fd_ = connect_with_timeout(ep_, static_cast<int>(std::max<std::int64_t>(1, deadline - now_ms())));
        if (fd_ < 0) {
          r.error = "cannot connect to " + ep_.str();
          return r;
        }
      }
      if (!write_all(fd_, req.data(), req.size(), deadline)) {
        close();
        if (reused) continue;
        r.error = "cannot send to " + ep_.str();
        return r;  // not_sent: a partially sent request without its body is never executed
      }
      if (read_response_(r.resp, deadline, r.error)) {
        r.what = outcome::ok;
        if (to_lower(r.resp.header("connection")) == "close") close();
        return r;
      }
      close();
      // Sent: whatever happened next (EOF, reset, timeout), the server may
      // have executed the request. Never retried here.
      r.what = outcome::no_response;
      return r;
    }
    r.what = outcome::not_sent;
    return r;
  }

 private:
  /// An idle kept-alive connection: alive unless the server closed it.
  bool idle_connection_alive_() {
    pollfd pf{fd_, POLLIN, 0};
    if (::poll(&pf, 1, 0) == 0) return true;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;  // stray bytes: keep, the read will fail loudly
  }

  bool read_response_(http_response_msg& resp, std::int64_t deadline, std::string& error) {
    std::string buf;
    std::size_t head_end = std::string::npos;
    std::size_t need = 0;
    char tmp[65536];
    for (;;) {
      if (head_end == std::string::npos) {
        head_end = buf.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          if (!parse_head_(buf.substr(0, head_end), resp)) {
            error = "malformed response";
            return false;
          }
          const std::string cl = resp.header("content-length");
          need = head_end + 4 + (cl.empty() ? 0 : std::stoull(cl));
          if (resp.status == 100) {  // interim response: skip it
            buf.erase(0, head_end + 4);
            head_end = std::string::npos;
            resp = {};
            continue;
          }
        }
      }
      if (head_end != std::string::npos && buf.size() >= need) {
        resp.body = buf.substr(head_end + 4, need - head_end - 4);
        return true;
      }
      pollfd pf{fd_, POLLIN, 0};
      const std::int64_t left = deadline - now_ms();
      if (left <= 0) {
        error = "timed out waiting for " + ep_.str();
        return false;
      }
      const int pr = ::poll(&pf, 1, static_cast<int>(left));
      if (pr < 0 && errno == EINTR) continue;
      if (pr != 1) {
        error = "timed out waiting for " + ep_.str();
        return false;
      }
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error = n == 0 ? "connection closed by " + ep_.str() : "connection error with " + ep_.str();
        return false;
      }
      buf.append(tmp, static_cast<std::size_t>(n));
    }
  }

  static bool parse_head_(std::string_view head, http_response_msg& resp) {
    const auto eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    if (line.size() < 12 || line.substr(0, 5) != "HTTP/") return false;
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos) return false;
    resp.status = std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
    head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
    while (!head.empty()) {
      const auto e = head.find("\r\n");
      const std::string_view h = head.substr(0, e);
      head = e == std::string_view::npos ? std::string_view{} : head.substr(e + 2);
      const auto colon = h.find(':');
      if (colon == std::string_view::npos) return false;
      resp.headers[to_lower(std::string(h.substr(0, colon)))] = std::string(trim(h.substr(colon + 1)));
    }
    return true;
  }

  endpoint ep_;
  int fd_ = -1;
};

/// Splits "http://host:port/path" into endpoint and path.
inline std::optional<std::pair<endpoint, std::string>> parse_url(std::string_view url) {
  if (url.substr(0, 7) != "http://") return std::nullopt;
  url.remove_prefix(7);
  const auto slash = url.find('/');
  auto ep = parse_endpoint(url.substr(0, slash));
  if (!ep) return std::nullopt;
  return std::pair{*ep, slash == std::string_view::npos ? std::string("/") : std::string(url.substr(slash))};
}

}  // namespace kv
