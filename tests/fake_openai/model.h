// fake_openai: the deterministic "echo model" and the pieces of the
// OpenAI chat-completions wire format that do not depend on a socket.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fake_openai {

using json = nlohmann::json;

struct ToolCall {
    std::string id;
    std::string name;
    std::string arguments;  // the JSON text the model "wrote", sent verbatim
};

struct Reply {
    std::optional<std::string> content;  // nullopt: "content": null
    std::vector<ToolCall> tool_calls;
    std::string finish_reason = "stop";
};

// The text of a message's "content": a string, an array of parts or null.
std::string content_text(const json& content);

// Checks a chat request the way the real API does. Returns "" when valid,
// else the error message for a 400 invalid_request_error. Lenient: only what
// the echo model needs (a non-empty messages array of objects with roles).
std::string validate_chat_request(const json& req, bool lenient);

// The content of the last message with role "user" ("" if none).
std::string last_user_text(const json& messages);

// "call_" followed by a process-wide counter.
std::string next_call_id();

// The default behaviour (see README.md): echo, markers, tool results.
Reply default_reply(const json& req);

int prompt_tokens(const json& req);
int completion_tokens(const Reply& reply);

// Content deltas: a word (with its leading blanks) or at most 6 bytes each.
std::vector<std::string> split_tokens(std::string_view text);
// Argument fragments: at least 2 when the text has 2 bytes or more.
std::vector<std::string> split_fragments(std::string_view text);

// json::dump that never throws on bad UTF-8.
std::string dump(const json& j);

}  // namespace fake_openai
