#include "agents/provider/sse_parser.h"

#include <algorithm>

namespace swarmfs {

bool SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
    if (failed_) return false;
    if (!started_) {
        // Strip a UTF-8 BOM at the very start; it may itself arrive split.
        static constexpr std::string_view bom = "\xEF\xBB\xBF";
        size_t take = std::min(bom.size() - head_.size(), bytes.size());
        head_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (head_.size() < bom.size() && bom.starts_with(head_)) return true;  // undecided
        started_ = true;
        std::string head = std::move(head_);
        head_.clear();
        if (head != bom && !feed(head, out)) return false;
    }
    while (!bytes.empty()) {
        if (skip_lf_) {
            skip_lf_ = false;
            if (bytes.front() == '\n') {
                bytes.remove_prefix(1);
                continue;
            }
        }
        size_t eol = bytes.find_first_of("\r\n");
        if (eol == std::string_view::npos) {
            if (partial_.size() + bytes.size() > kMaxLine) {
                failed_ = true;
                partial_.clear();
                return false;
            }
            partial_.append(bytes);
            return true;
        }
        if (partial_.empty()) {
            line(bytes.substr(0, eol), out);
        } else {
            partial_.append(bytes.substr(0, eol));
            line(partial_, out);
            partial_.clear();
        }
        skip_lf_ = bytes[eol] == '\r';
        bytes.remove_prefix(eol + 1);
    }
    return true;
}

void SseParser::finish(std::vector<SseEvent>& out) {
    if (failed_) return;
    if (!started_) {
        started_ = true;
        std::string head = std::move(head_);
        head_.clear();
        if (head != "\xEF\xBB\xBF" && !feed(head, out)) return;
    }
    if (!partial_.empty()) {
        std::string l = std::move(partial_);
        partial_.clear();
        line(l, out);
    }
    dispatch(out);
}

void SseParser::line(std::string_view l, std::vector<SseEvent>& out) {
    if (l.empty()) {
        dispatch(out);
        return;
    }
    if (l.front() == ':') return;  // comment (keep-alive pings)
    std::string_view field = l, value;
    if (size_t colon = l.find(':'); colon != std::string_view::npos) {
        field = l.substr(0, colon);
        value = l.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
        if (has_data_) cur_.data.push_back('\n');
        cur_.data.append(value);
        has_data_ = true;
    } else if (field == "event") {
        cur_.type.assign(value);
    } else if (field == "error") {
        // Not in the standard: llama.cpp's server reports a failure inside a
        // stream as an "error: {json}" line. A standard parser drops it as
        // an unknown field and the client sees only a stream that ended
        // early; we keep it as data of an event named "error".
        cur_.type = "error";
        if (has_data_) cur_.data.push_back('\n');
        cur_.data.append(value);
        has_data_ = true;
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) cur_.id.assign(value);
    }
    // "retry" and other fields are ignored.
}

void SseParser::dispatch(std::vector<SseEvent>& out) {
    // An event with no data field is not dispatched (the standard's rule).
    if (has_data_) out.push_back(std::move(cur_));
    cur_ = SseEvent{};
    has_data_ = false;
}

}  // namespace swarmfs
