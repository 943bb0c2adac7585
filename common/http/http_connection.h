// One HTTP connection's byte stream: a plain TCP socket, or TLS over it
// (Asio's ssl::stream on OpenSSL). HttpServer's sessions read and write
// through this and never ask which; it satisfies Asio's AsyncReadStream and
// AsyncWriteStream, so Beast's parser reads from it directly.
//
// Closing (shutdown of the sending side, close) acts on the TCP socket: an
// error reply under TLS ends without a close_notify, which HTTP/1.1's
// framing (Content-Length) makes harmless.
//
// Thread-safety: the io thread only, as the session that owns it. At most
// one read and one write in flight at a time (ssl::stream allows exactly
// that).
#ifndef TESSERA_COMMON_HTTP_HTTP_CONNECTION_H_
#define TESSERA_COMMON_HTTP_HTTP_CONNECTION_H_

#include <optional>
#include <utility>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/stream.hpp"

namespace tessera::http_internal {

class Connection {
 public:
  using tcp = boost::asio::ip::tcp;
  using executor_type = tcp::socket::executor_type;

  // `tls` (null: plaintext) must outlive the connection.
  Connection(tcp::socket socket, boost::asio::ssl::context* tls) {
    if (tls != nullptr) {
      tls_.emplace(std::move(socket), *tls);
    } else {
      plain_.emplace(std::move(socket));
    }
  }

  executor_type get_executor() { return socket().get_executor(); }
  tcp::socket& socket() { return tls_.has_value() ? tls_->next_layer() : *plain_; }
  bool tls() const { return tls_.has_value(); }

  // TLS: the server side of the handshake. Only when tls().
  template <class Handler>
  void async_handshake(Handler&& handler) {
    tls_->async_handshake(boost::asio::ssl::stream_base::server, std::forward<Handler>(handler));
  }

  template <class Buffers, class Handler>
  auto async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_.has_value()) return tls_->async_read_some(buffers, std::forward<Handler>(handler));
    return plain_->async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class Buffers, class Handler>
  auto async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls_.has_value()) return tls_->async_write_some(buffers, std::forward<Handler>(handler));
    return plain_->async_write_some(buffers, std::forward<Handler>(handler));
  }

  void ShutdownSend() {
    boost::system::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
  void Close() {
    boost::system::error_code ignored;
    socket().close(ignored);
  }

 private:
  std::optional<tcp::socket> plain_;
  std::optional<boost::asio::ssl::stream<tcp::socket>> tls_;
};

}  // namespace tessera::http_internal

#endif  // TESSERA_COMMON_HTTP_HTTP_CONNECTION_H_
