#pragma once
// The guard: a tripwire on what flows into an agent (incoming messages and
// tool results) for prompt injection, and the redactor that keeps secrets out
// of what flows out of the swarm (outputs and the log).
//
// The swarm file's "guard" section:
//
//   "guard": {
//     "defaults": true,                       // the built-in rules (default true);
//                                             // or {"RULE": "flag"|"drop"|"stop"|"off", ...}
//                                             // to change some of them, the rest as shipped
//     "rules": [{"name": "no-exfil",          // 1-64 of A-Z a-z 0-9 _ - .
//                "pattern": "curl\\s+-d",     // ECMAScript, case-insensitive, ^ $ per line
//                "action": "drop",            // flag | drop | stop
//                "scan": ["tool_result"]}],   // message, tool_result (default both)
//     "secrets": ["sk-[A-Za-z0-9]{20,}"],     // extra secret patterns (case-sensitive)
//     "secret_env": ["^MYCO_"]                // which env var names hold secrets
//   }                                         // (default KEY|TOKEN|SECRET|PASSWORD|
//                                             //  PASSWD|CREDENTIAL, case-insensitive)
//
// Built-in rules (names are stable: events, configs and docs refer to them):
//
//   rule                 scans          fires on (case-insensitive)
//   ignore-instructions  both           ignore/disregard/forget/override/bypass/skip [all|the|
//                                       your..] previous/prior/above/system/original..
//                                       instructions/prompt/rules/guidelines..; "ignore
//                                       everything above". Not when negated ("don't ignore
//                                       the rules above" is a reminder, not an attack).
//   reveal-secrets       both           reveal/print/show/leak/dump/send/tell me/"what is your"
//                                       .. then, in the same sentence, system prompt, api key,
//                                       secret(s), password, credentials, access/auth/api
//                                       token, environment variables, .env
//   role-override        both           "you are now a/an/in .. assistant/mode/persona/
//                                       unrestricted..", "from now on you will act/obey..",
//                                       "new (system) instructions:", "act as an unfiltered..",
//                                       "enable developer/jailbreak/DAN mode"
//   fake-turn            tool_result    a line starting "system:", "assistant:" or
//                                       "developer:" (also "### System:", "> system:"), and
//                                       chat-template tokens: <|im_start|>, <|eot_id|>,
//                                       [INST], <<SYS>>, <system> at line start ...
//   forbidden-tool       both           a tool that exists in the swarm (GuardContext::
//                                       all_tools, transfer_to_NAME included) but the agent
//                                       does not hold, named as a whole word: with
//                                       lookup_ticket held and lookup not, "lookup_ticket"
//                                       does not fire and "call lookup" does. Case-sensitive,
//                                       as tool names are: "Search" is prose, "search" a name.
//
// Every built-in's action is flag: a heuristic should cost a log line when it
// is wrong, not a conversation. Making one drop or stop is the owner's opt-in
// ("defaults": {"ignore-instructions": "stop"}), the same way for every
// built-in, forbidden-tool included (there is no separate key for it). What
// drop and stop do (replace the content, stop the agent) is the caller's:
// the guard reports the strongest action first.
//
// Cost: std::regex backtracks, and on long input can take exponential time or
// overflow the stack; and regex_search restarts at every byte, which is
// quadratic on a long run of what a pattern's first part accepts. So:
// - every pattern is compiled in libstdc++'s polynomial mode (a Thompson-style
//   simulation, no deep recursion; back-references are refused at parse);
// - a built-in runs only where one of its anchor words (or a line start) is,
//   anchored there, over at most 512 bytes (160 for reveal-secrets);
// - a configured pattern with a literal prefix ("curl\\s+-d": "curl") runs
//   only where the prefix is, anchored, over at most kMaxMatch bytes (a longer
//   match from there is missed); one without ("(wget|curl) ") runs as one
//   linear pass of [\s\S]*?(PATTERN) over the text, skipped outright when the
//   text lacks a literal every match needs ("@evil.example" in
//   "[a-z.]+@evil\\.example").
// So a scan costs time linear in the text, per rule. Texts longer than
// kMaxScanBytes are scanned in their first and last kMaxScanBytes/2
// (injections hide at the ends of long documents; the middle of a huge one
// is not scanned). Measured (-O2, one core, 64 KiB): all built-ins 6 ms on
// prose (the GPL), 8 ms on text dense with their anchor words; a configured
// pattern with no prefix and no required literal 8 ms; a 16 MiB text 140 ms.
// GuardCost.LongInputsScanInBoundedTime prints its own timings.
//
// Guard, Redactor and the compiled patterns are immutable values, safe to
// share across threads. Nothing here throws.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vault/result.h"

namespace swarmfs {

// Ordered: stop is the strongest.
enum class GuardAction { flag, drop, stop };
// What is scanned.
enum class GuardSource { message, tool_result };

std::string_view guard_action_name(GuardAction action);  // "flag", "drop", "stop"
std::string_view guard_source_name(GuardSource source);  // "message", "tool_result"

struct GuardMatch {
    std::string rule;  // the rule that fired: a built-in's name or a configured one
    GuardAction action = GuardAction::flag;
    // At most kMaxExcerpt bytes of the text around the first match, one line
    // of valid UTF-8 (control characters become spaces), cut from the text as
    // GuardContext::redactor would redact it: no byte of a secret it knows.
    std::string excerpt;
    std::string detail;  // forbidden-tool: the tool named; empty for pattern rules

    friend bool operator==(const GuardMatch&, const GuardMatch&) = default;
};

class Redactor;

// What a scan needs to know about the agent the text is going to.
struct GuardContext {
    // Tool names (and transfer_to_NAME names) the agent may call, wildcards
    // already expanded by the caller.
    std::vector<std::string> held_tools;
    // Every tool name that exists in the swarm.
    std::vector<std::string> all_tools;
    // Redacts excerpts; not owned, may be null (excerpts then unredacted).
    const Redactor* redactor = nullptr;
};

// One rule as configured, for listing.
struct GuardRule {
    std::string name;
    std::string pattern;  // empty for forbidden-tool
    GuardAction action = GuardAction::flag;
    bool scans_messages = true;
    bool scans_tool_results = true;
    bool builtin = false;
};

struct CompiledPattern;  // a std::regex, kept out of this header

class Guard {
  public:
    Guard() = default;  // no rules, no extra secrets: scan() finds nothing

    // The "guard" section (an object). EINVAL naming the key or rule for
    // anything malformed: an unknown key, a rule without name or pattern, a
    // bad regex (with std::regex's words), a pattern that matches the empty
    // string (it would fire on everything), an unknown action or scan source,
    // a rule name used twice or taken by a built-in.
    static Result<Guard> from_json(const nlohmann::json& j);
    static Result<Guard> parse(std::string_view json_text);
    // The built-in rules with their shipped actions; what from_json({}) gives.
    static Guard defaults();

    // Every rule that matches, strongest action first, then in rule order
    // (built-ins in the table's order, then "rules" in config order). One
    // match per rule, for its first occurrence. A rule whose regex engine
    // fails (out of memory) is reported as matching, with the failure as its
    // excerpt: a tripwire that cannot look fails closed.
    std::vector<GuardMatch> scan(std::string_view text, GuardSource src,
                                 const GuardContext& ctx) const;

    const std::vector<GuardRule>& rules() const { return rules_; }
    const std::vector<std::string>& secret_patterns() const { return secrets_; }
    const std::vector<std::string>& secret_env() const { return secret_env_; }

    // The redactor this section describes, over the environment `envp` (as
    // main's third argument or environ; may be null) plus `extra_literals`
    // (say, each provider's API key). Its patterns were checked by from_json,
    // so this does not fail in practice; the Result is from_environment's.
    Result<Redactor> redactor(char** envp, const std::vector<std::string>& extra_literals) const;

    static constexpr size_t kMaxMatch = 4096;
    static constexpr size_t kMaxScanBytes = size_t{1} << 20;
    static constexpr size_t kMaxExcerpt = 120;

    struct Compiled;  // per rule: the regex, its anchors, ...; opaque, in guard.cpp

  private:
    std::vector<GuardRule> rules_;
    std::vector<std::shared_ptr<const Compiled>> compiled_;  // parallel to rules_
    std::vector<std::string> secrets_;
    std::vector<std::string> secret_env_;
};

// Replaces secrets with "[REDACTED]".
//
// Secrets are literals (the values of environment variables whose names match
// the secret_env patterns, and explicit ones such as a provider's API key;
// each also in its JSON-escaped spelling when that differs, so a secret with a
// quote in it is caught inside a log line too) and patterns (case-sensitive
// regexes: secret formats like "AKIA[0-9A-Z]{16}" are). Literals shorter than
// kMinSecretLength are ignored: too short to be a key, and redacting them
// would mangle ordinary words ("true", "admin").
//
// What redact() replaces, exactly: mark every byte of every occurrence of a
// literal anywhere in the text (overlapping occurrences included), and every
// byte of every non-empty pattern match within a line (a line ends after
// '\n'; a line longer than kMaxLine is cut into kMaxLine-byte pieces, each
// scanned on its own; ^ and $ match at a line's ends). Each maximal run of
// marked bytes becomes one "[REDACTED]". StreamRedactor produces exactly the
// same bytes for any split of the text into chunks.
//
// Cost: literals, a find per literal (9 MiB with a few secrets: ~25 ms). A
// pattern with a literal prefix ("sk-") is tried only where the prefix is; one
// without is checked per line by a linear pass, and only a line that matches
// is searched in full, which can cost up to that line's length squared.
class Redactor {
  public:
    Redactor() = default;  // no secrets: redact() is the identity

    // `env_names`: regexes (case-insensitive, searched anywhere in the name)
    // picking which variables hold secrets; empty means kDefaultSecretEnv.
    // EINVAL naming a pattern that does not compile or matches "".
    static Result<Redactor> from_environment(char** envp,
                                             const std::vector<std::string>& extra_literals,
                                             const std::vector<std::string>& patterns,
                                             const std::vector<std::string>& env_names = {});

    std::string redact(std::string_view text) const;

    // The byte ranges redact() replaces, sorted, merged (touching ranges too).
    struct Span {
        size_t begin = 0;
        size_t end = 0;
        friend bool operator==(const Span&, const Span&) = default;
    };
    std::vector<Span> secret_spans(std::string_view text) const;

    size_t longest_literal() const { return longest_; }
    size_t literal_count() const { return literals_.size(); }
    size_t pattern_count() const { return patterns_.size(); }
    bool empty() const { return literals_.empty() && patterns_.empty(); }

    static constexpr size_t kMinSecretLength = 8;
    static constexpr size_t kMaxLine = 4096;
    static constexpr std::string_view kMarker = "[REDACTED]";
    static constexpr std::string_view kDefaultSecretEnv =
        "KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL";

  private:
    friend class StreamRedactor;
    // Adds every occurrence of every literal in `text` as [base+i, base+i+len).
    void literal_spans(std::string_view text, uint64_t base,
                       std::vector<std::pair<uint64_t, uint64_t>>& out) const;
    // Adds the pattern matches of one line (piece), `base` its offset.
    void pattern_spans(std::string_view piece, uint64_t base,
                       std::vector<std::pair<uint64_t, uint64_t>>& out) const;
    // Whether some literal is longer than `tail` and starts with it.
    bool could_start_literal(std::string_view tail) const;

    std::vector<std::string> literals_;  // distinct, each >= kMinSecretLength
    std::vector<std::shared_ptr<const CompiledPattern>> patterns_;
    size_t longest_ = 0;
    std::array<bool, 256> first_byte_{};  // bytes some literal starts with
};

// Redacts a stream (chunks of a process's stdout) so that the output of every
// feed() and the final finish(), concatenated, is exactly redact() of the
// input concatenated, however it was split: a secret cut across two chunks is
// still redacted, and no other byte is lost, added or reordered.
//
// To get there it holds back (returns later) only what it cannot yet decide:
// - the bytes from the earliest position where the input seen so far ends in
//   a proper prefix of some literal: at most longest_literal()-1 bytes, and
//   none when the tail cannot start a secret;
// - with patterns configured, the current incomplete line as well (lines are
//   cut at kMaxLine, so at most kMaxLine-1 bytes): a pattern is applied to a
//   whole line. Without patterns, output is never held for a line.
// finish() flushes everything and makes the object ready for a new stream.
// Not thread-safe (one stream, one reader); the Redactor it shares is.
class StreamRedactor {
  public:
    explicit StreamRedactor(std::shared_ptr<const Redactor> r);

    std::string feed(std::string_view chunk);
    std::string finish();

    size_t held() const { return buf_.size(); }  // bytes fed but not yet returned

  private:
    std::string emit(bool final);

    std::shared_ptr<const Redactor> r_;
    std::string buf_;  // input not yet returned, starting at stream offset base_
    uint64_t base_ = 0;
    uint64_t piece_ = 0;         // offset of the incomplete line (pieces before it are scanned)
    uint64_t cover_end_ = 0;     // spans that began before base_ reach up to here
    bool prev_covered_ = false;  // the byte at base_-1 was redacted (a run may continue)
    std::vector<std::pair<uint64_t, uint64_t>> pattern_spans_;  // from scanned lines, >= base_
};

}  // namespace swarmfs
