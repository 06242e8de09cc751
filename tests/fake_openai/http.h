// fake_openai: a minimal HTTP/1.1 connection over a POSIX socket.
//
// One Conn per accepted socket, used by one thread. Requests are read with
// Content-Length or chunked bodies (pipelined bytes stay buffered for the
// next request); responses go out whole or as chunked transfer encoding, one
// send per chunk, so a client sees every chunk as soon as it is written.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fake_openai {

struct Request {
    std::string method;
    std::string target;                          // as sent: path plus query
    std::string path;                            // target without the query
    std::string version;                         // "HTTP/1.1"
    std::map<std::string, std::string> headers;  // names lowercased
    std::string body;
    bool keep_alive = true;

    std::string header(const std::string& name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

const char* reason_phrase(int status);

class Conn {
  public:
    enum class Read { kOk, kEof, kBad, kTooLarge };

    explicit Conn(int fd);
    ~Conn();
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    // Reads the next request. kEof: the peer closed (or went idle) between
    // requests. kBad/kTooLarge: answer 400/413 and close.
    Read read_request(Request& req);

    bool send_all(std::string_view data);
    // A whole response with Content-Length.
    bool send_response(int status, const Headers& headers, std::string_view body, bool keep_alive);
    // Status line and headers only (for truncated bodies and stalls).
    bool send_head(int status, const Headers& headers, bool keep_alive);
    // Chunked transfer encoding: head, then chunks, then the last chunk.
    bool start_chunked(int status, const Headers& headers, bool keep_alive);
    bool send_chunk(std::string_view data);
    bool end_chunked();

  private:
    bool fill();
    bool read_chunked_body(std::string& body);
    bool need(size_t bytes);

    int fd_;
    std::string buf_;
    size_t pos_ = 0;
    bool continue_expected_ = false;
};

}  // namespace fake_openai
