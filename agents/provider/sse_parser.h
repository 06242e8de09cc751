#pragma once
// text/event-stream framing (the WHATWG "server-sent events" rules): lines
// end with CRLF, LF or CR; "field: value" lines build an event; `data`
// fields are joined with "\n"; a blank line ends the event; lines starting
// with ':' are comments. Bytes may arrive split anywhere, even inside a CRLF
// or a UTF-8 sequence. One parser per stream: it has no shared state.
// One extension: an "error: VALUE" line (llama.cpp's server) is read as
// data of an event of type "error", so a failure mid-stream is not lost.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace swarmfs {

struct SseEvent {
    std::string type;  // the `event` field; empty means "message"; "error" also for an `error` line
    std::string data;  // the `data` fields joined with "\n"
    std::string id;
};

class SseParser {
  public:
    // A line longer than this fails the stream instead of growing memory.
    static constexpr size_t kMaxLine = 8u << 20;

    // Appends to `out` every event completed by these bytes. Returns false
    // (and ignores all later input) once a line exceeds kMaxLine.
    bool feed(std::string_view bytes, std::vector<SseEvent>& out);
    // End of stream. The standard drops an event not ended by a blank line;
    // we are lenient and dispatch it if it has data (a server that closes
    // right after "data: [DONE]\n" still finishes cleanly).
    void finish(std::vector<SseEvent>& out);
    bool failed() const { return failed_; }

  private:
    void line(std::string_view l, std::vector<SseEvent>& out);
    void dispatch(std::vector<SseEvent>& out);

    std::string partial_;   // an unfinished line
    std::string head_;      // first bytes, held until we know if they are a BOM
    bool skip_lf_ = false;  // the last byte was CR: a following LF belongs to it
    bool started_ = false;  // a BOM is only stripped at the very start
    bool failed_ = false;
    bool has_data_ = false;
    SseEvent cur_;
};

}  // namespace swarmfs
