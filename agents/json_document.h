#pragma once
// JSON documents users edit as files (an agent's config, a conversation's
// vars): parsing with a message that points at the problem, and judging a
// document still being written.
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "vault/result.h"

namespace swarmfs {

using JsonCheck = std::function<Status(const nlohmann::json&)>;

// Parses text and runs check on it; EINVAL "<what>: invalid JSON: ..." etc.
Result<nlohmann::json> parse_json_document(std::string_view text, const std::string& what,
                                           const JsonCheck& check);

// For a document still being written: fails only when no continuation could
// make it valid, so `echo '{bad' > file` fails at write() (where a shell sees
// it) and a document written in several chunks does not.
Status check_json_draft(std::string_view text, const std::string& what, const JsonCheck& check);

}  // namespace swarmfs
