#include "model.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <set>

namespace fake_openai {

namespace {

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

// Index of the next UTF-8 character boundary after i.
size_t next_char(std::string_view s, size_t i) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    return i;
}

std::string role_of(const json& m) {
    if (m.is_object() && m.contains("role") && m["role"].is_string()) {
        return m["role"].get<std::string>();
    }
    return "";
}

bool valid_tool_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

std::set<std::string> offered_tools(const json& req) {
    std::set<std::string> names;
    if (!req.contains("tools") || !req["tools"].is_array()) return names;
    for (const json& t : req["tools"]) {
        if (t.is_object() && t.contains("function") && t["function"].is_object() &&
            t["function"].contains("name") && t["function"]["name"].is_string()) {
            names.insert(t["function"]["name"].get<std::string>());
        }
    }
    return names;
}

// End of a balanced JSON object/array starting at s[i] ('{' or '['), just
// past its closing bracket, or npos.
size_t scan_json_value(std::string_view s, size_t i) {
    int depth = 0;
    bool in_string = false;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        }
    }
    return std::string::npos;
}

struct Marker {
    bool handoff;
    std::string name;       // agent (handoff) or tool name
    std::string arguments;  // tool only
};

// Parses "[tool:NAME ARGS]" at s[i] (i at '['). Returns the end or npos.
size_t parse_tool_marker(std::string_view s, size_t i, Marker& m) {
    size_t p = i + 6;  // past "[tool:"
    size_t name_start = p;
    while (p < s.size() && s[p] != ']' && !std::isspace(static_cast<unsigned char>(s[p]))) ++p;
    if (p >= s.size() || p == name_start) return std::string::npos;
    m.handoff = false;
    m.name = std::string(s.substr(name_start, p - name_start));
    while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
    if (p >= s.size()) return std::string::npos;
    if (s[p] == ']') {
        m.arguments = "{}";
        return p + 1;
    }
    size_t args_start = p;
    if (s[p] == '{' || s[p] == '[') {
        size_t e = scan_json_value(s, p);
        if (e != std::string::npos) {
            size_t q = e;
            while (q < s.size() && std::isspace(static_cast<unsigned char>(s[q]))) ++q;
            if (q < s.size() && s[q] == ']') {
                m.arguments = std::string(s.substr(args_start, e - args_start));
                return q + 1;
            }
        }
    }
    size_t close = s.find(']', p);
    if (close == std::string::npos) return std::string::npos;
    m.arguments = trim(s.substr(args_start, close - args_start));
    if (m.arguments.empty()) m.arguments = "{}";
    return close + 1;
}

std::vector<Marker> find_markers(std::string_view s) {
    std::vector<Marker> out;
    size_t i = 0;
    while ((i = s.find('[', i)) != std::string::npos) {
        Marker m;
        if (s.substr(i).starts_with("[handoff:")) {
            size_t close = s.find(']', i);
            std::string name =
                close == std::string::npos ? "" : trim(s.substr(i + 9, close - i - 9));
            if (!name.empty()) {
                out.push_back({true, name, "{}"});
                i = close + 1;
                continue;
            }
        } else if (s.substr(i).starts_with("[tool:")) {
            size_t e = parse_tool_marker(s, i, m);
            if (e != std::string::npos) {
                out.push_back(m);
                i = e;
                continue;
            }
        }
        ++i;
    }
    return out;
}

size_t ceil_div4(size_t n) { return (n + 3) / 4; }

}  // namespace

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string content_text(const json& content) {
    if (content.is_string()) return content.get<std::string>();
    std::string out;
    if (content.is_array()) {
        for (const json& part : content) {
            if (part.is_object() && part.contains("text") && part["text"].is_string()) {
                out += part["text"].get<std::string>();
            } else if (part.is_string()) {
                out += part.get<std::string>();
            }
        }
    }
    return out;
}

std::string validate_chat_request(const json& req, bool lenient) {
    if (!req.is_object()) return "The request body must be a JSON object.";
    if (!lenient && (!req.contains("model") || !req["model"].is_string() ||
                     req["model"].get<std::string>().empty())) {
        return "you must provide a model parameter";
    }
    if (!req.contains("messages") || !req["messages"].is_array()) {
        return "Missing required parameter: 'messages'.";
    }
    const json& msgs = req["messages"];
    if (msgs.empty())
        return "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
               "an empty array instead.";
    static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
    for (size_t i = 0; i < msgs.size(); ++i) {
        const json& m = msgs[i];
        std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) return "Invalid type for '" + where + "': expected an object.";
        std::string role = role_of(m);
        if (!roles.count(role)) {
            return "Invalid value: '" + role + "'. Supported values are: 'system', " +
                   "'assistant', 'user', 'tool', and 'developer'. ('" + where + ".role')";
        }
        if (lenient) continue;
        bool has_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
        if (role != "assistant" || !has_calls) {
            if (!m.contains("content")) {
                return "Missing required parameter: '" + where + ".content'.";
            }
        }
        const json& c = m.contains("content") ? m["content"] : json();
        if (!(c.is_string() || c.is_array() || (c.is_null() && role == "assistant"))) {
            return "Invalid type for '" + where + ".content': expected a string or an array.";
        }
        if (role == "tool" && (!m.contains("tool_call_id") || !m["tool_call_id"].is_string())) {
            return "Missing required parameter: '" + where + ".tool_call_id'.";
        }
        if (has_calls) {
            if (role != "assistant") {
                return "Unrecognized request argument supplied: " + where + ".tool_calls";
            }
            if (!m["tool_calls"].is_array()) {
                return "Invalid type for '" + where + ".tool_calls': expected an array.";
            }
            for (size_t k = 0; k < m["tool_calls"].size(); ++k) {
                const json& tc = m["tool_calls"][k];
                std::string tw = where + ".tool_calls[" + std::to_string(k) + "]";
                if (!tc.is_object() || !tc.contains("id") || !tc["id"].is_string()) {
                    return "Missing required parameter: '" + tw + ".id'.";
                }
                if (!tc.contains("type") || tc["type"] != "function") {
                    return "Missing required parameter: '" + tw + ".type'.";
                }
                if (!tc.contains("function") || !tc["function"].is_object() ||
                    !tc["function"].contains("name") || !tc["function"]["name"].is_string()) {
                    return "Missing required parameter: '" + tw + ".function.name'.";
                }
                if (!tc["function"].contains("arguments") ||
                    !tc["function"]["arguments"].is_string()) {
                    return "Missing required parameter: '" + tw + ".function.arguments'.";
                }
            }
        }
    }
    if (!lenient) {
        // Tool messages answer the tool_calls of the assistant message before
        // them, and every tool call gets an answer.
        for (size_t i = 0; i < msgs.size(); ++i) {
            const json& m = msgs[i];
            if (role_of(m) == "tool") {
                return "Invalid parameter: messages with role 'tool' must be a response to a "
                       "preceeding message with 'tool_calls'.";
            }
            if (role_of(m) != "assistant" || !m.contains("tool_calls") ||
                !m["tool_calls"].is_array() || m["tool_calls"].empty()) {
                continue;
            }
            std::vector<std::string> pending;
            for (const json& tc : m["tool_calls"]) pending.push_back(tc["id"].get<std::string>());
            size_t j = i + 1;
            for (; j < msgs.size() && role_of(msgs[j]) == "tool"; ++j) {
                std::string id = msgs[j]["tool_call_id"].get<std::string>();
                auto it = std::find(pending.begin(), pending.end(), id);
                if (it == pending.end()) {
                    return "Invalid parameter: messages with role 'tool' must be a response to "
                           "a preceeding message with 'tool_calls'.";
                }
                pending.erase(it);
            }
            if (!pending.empty()) {
                std::string ids;
                for (const auto& id : pending) ids += (ids.empty() ? "" : ", ") + id;
                return "An assistant message with 'tool_calls' must be followed by tool "
                       "messages responding to each 'tool_call_id'. The following "
                       "tool_call_ids did not have response messages: " +
                       ids;
            }
            i = j - 1;
        }
        if (req.contains("tools") && !req["tools"].is_null()) {
            if (!req["tools"].is_array()) return "Invalid type for 'tools': expected an array.";
            for (size_t i = 0; i < req["tools"].size(); ++i) {
                const json& t = req["tools"][i];
                std::string where = "tools[" + std::to_string(i) + "]";
                if (!t.is_object() || !t.contains("type") || t["type"] != "function") {
                    return "Missing required parameter: '" + where + ".type'.";
                }
                if (!t.contains("function") || !t["function"].is_object() ||
                    !t["function"].contains("name") || !t["function"]["name"].is_string()) {
                    return "Missing required parameter: '" + where + ".function.name'.";
                }
                if (!valid_tool_name(t["function"]["name"].get<std::string>())) {
                    return "Invalid '" + where +
                           ".function.name': string does not match pattern. Expected a string "
                           "that matches the pattern '^[a-zA-Z0-9_-]+$'.";
                }
                if (t["function"].contains("parameters") &&
                    !t["function"]["parameters"].is_object()) {
                    return "Invalid type for '" + where +
                           ".function.parameters': expected an object.";
                }
            }
        }
        if (req.contains("stream") && !req["stream"].is_boolean() && !req["stream"].is_null()) {
            return "Invalid type for 'stream': expected a boolean.";
        }
        bool streaming = req.contains("stream") && req["stream"] == true;
        if (req.contains("stream_options") && !req["stream_options"].is_null()) {
            if (!streaming) {
                return "The 'stream_options' parameter is only allowed when 'stream' is enabled.";
            }
            if (!req["stream_options"].is_object()) {
                return "Invalid type for 'stream_options': expected an object.";
            }
        }
    }
    return "";
}

std::string last_user_text(const json& messages) {
    if (!messages.is_array()) return "";
    for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
        if (role_of(*it) == "user")
            return it->contains("content") ? content_text((*it)["content"]) : "";
    }
    return "";
}

std::string next_call_id() {
    static std::atomic<unsigned long> counter{0};
    char buf[32];
    std::snprintf(buf, sizeof buf, "call_%019lu", ++counter);
    return buf;
}

Reply default_reply(const json& req) {
    const json& msgs = req["messages"];
    Reply r;

    // Tool results: answer every trailing tool message, one line each.
    if (role_of(msgs.back()) == "tool") {
        size_t first = msgs.size();
        while (first > 0 && role_of(msgs[first - 1]) == "tool") --first;
        std::string text;
        for (size_t i = first; i < msgs.size(); ++i) {
            std::string id = msgs[i].value("tool_call_id", std::string());
            std::string name = "unknown";
            for (size_t k = i; k-- > 0;) {
                const json& a = msgs[k];
                if (role_of(a) != "assistant" || !a.contains("tool_calls") ||
                    !a["tool_calls"].is_array()) {
                    continue;
                }
                bool found = false;
                for (const json& tc : a["tool_calls"]) {
                    if (tc.is_object() && tc.value("id", std::string()) == id &&
                        tc.contains("function") && tc["function"].is_object()) {
                        name = tc["function"].value("name", std::string("unknown"));
                        found = true;
                        break;
                    }
                }
                if (found) break;
            }
            if (!text.empty()) text += "\n";
            text += "tool " + name + " said: " +
                    (msgs[i].contains("content") ? content_text(msgs[i]["content"]) : "");
        }
        r.content = text;
        return r;
    }

    std::string user = last_user_text(msgs);
    std::vector<Marker> markers = find_markers(user);
    if (!markers.empty()) {
        std::set<std::string> offered = offered_tools(req);
        for (const Marker& m : markers) {
            std::string fn = m.handoff ? "transfer_to_" + m.name : m.name;
            if (m.handoff && !offered.count(fn)) {
                r.content = "no tool " + fn + " offered";
                r.tool_calls.clear();
                return r;
            }
            r.tool_calls.push_back({next_call_id(), fn, m.arguments});
        }
        r.finish_reason = "tool_calls";
        return r;
    }
    if (user.find("[system]") != std::string::npos) {
        std::string sys;
        for (const json& m : msgs) {
            std::string role = role_of(m);
            if ((role == "system" || role == "developer") && m.contains("content")) {
                if (!sys.empty()) sys += "\n";
                sys += content_text(m["content"]);
            }
        }
        r.content = "system: " + sys;
        return r;
    }
    if (user.find("[count]") != std::string::npos) {
        r.content = "messages: " + std::to_string(msgs.size());
        return r;
    }
    r.content = "echo: " + trim(user);
    return r;
}

int prompt_tokens(const json& req) {
    size_t chars = 0;
    if (req.contains("messages") && req["messages"].is_array()) {
        for (const json& m : req["messages"]) {
            if (m.is_object() && m.contains("content")) chars += content_text(m["content"]).size();
        }
    }
    return static_cast<int>(std::max<size_t>(1, ceil_div4(chars)));
}

int completion_tokens(const Reply& reply) {
    size_t chars = reply.content ? reply.content->size() : 0;
    for (const ToolCall& tc : reply.tool_calls) chars += tc.name.size() + tc.arguments.size();
    return static_cast<int>(std::max<size_t>(1, ceil_div4(chars)));
}

std::vector<std::string> split_tokens(std::string_view text) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
        while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) &&
               i - start < 6) {
            i = next_char(text, i);
        }
        out.emplace_back(text.substr(start, i - start));
    }
    return out;
}

std::vector<std::string> split_fragments(std::string_view text) {
    std::vector<std::string> out;
    if (text.empty()) return out;
    size_t piece = std::clamp<size_t>((text.size() + 1) / 2, 1, 8);
    size_t i = 0;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && i - start < piece) i = next_char(text, i);
        out.emplace_back(text.substr(start, i - start));
    }
    return out;
}

}  // namespace fake_openai
