#include "agents/json_document.h"

namespace swarmfs {

using json = nlohmann::json;

Result<json> parse_json_document(std::string_view text, const std::string& what,
                                 const JsonCheck& check) {
    json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) {
        // Re-parse with exceptions only to get the position for the message.
        try {
            json again = json::parse(text.begin(), text.end());
            (void)again;
        } catch (const json::parse_error& e) {
            std::string w = e.what();
            auto pos = w.find("parse error");
            return make_error(
                EINVAL, what + ": invalid JSON: " + (pos == std::string::npos ? w : w.substr(pos)));
        }
        return make_error(EINVAL, what + ": invalid JSON");
    }
    if (auto s = check(j); !s) return s.error();
    return j;
}

Status check_json_draft(std::string_view text, const std::string& what, const JsonCheck& check) {
    // Writers end a document with a newline; a chunk boundary elsewhere may
    // split a token or a UTF-8 sequence, so only judge at a line end.
    if (text.empty() || text.back() != '\n') return {};
    try {
        json j = json::parse(text.begin(), text.end());
        return check(j);
    } catch (const json::parse_error& e) {
        // An error found before the last byte cannot be cured by appending.
        if (e.byte < text.size()) return parse_json_document(text, what, check).error();
        return {};
    }
}

}  // namespace swarmfs
