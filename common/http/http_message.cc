// The bytes of HTTP/1.1 responses: status lines, headers, chunked bodies.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/http/http_server.h"

namespace tessera {

const char* StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

std::string FormatResponse(const HttpResponse& r, bool keep_alive) {
  std::string out = absl::StrFormat("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n",
                                    r.status, StatusText(r.status), r.content_type, r.body.size());
  for (const auto& [name, value] : r.headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  absl::StrAppend(&out, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n",
                  "\r\n", r.body);
  return out;
}

std::string FormatChunkedHead(int status, const std::string& content_type, bool keep_alive,
                              bool chunked) {
  return absl::StrFormat(
      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n%s"
      "Connection: %s\r\n\r\n",
      status, StatusText(status), content_type, chunked ? "Transfer-Encoding: chunked\r\n" : "",
      keep_alive ? "keep-alive" : "close");
}

std::string FormatChunk(const std::string& data, bool chunked) {
  if (!chunked) return data;
  if (data.empty()) return "";  // an empty chunk would end the body
  return absl::StrFormat("%x\r\n%s\r\n", data.size(), data);
}

}  // namespace tessera
