#include "agents/guard.h"

#include <algorithm>
#include <optional>
#include <regex>
#include <unordered_set>
#include <utility>

#include "agents/capabilities.h"

namespace swarmfs {

// A pattern and what makes searching it cheap. libstdc++'s regex_search
// restarts the automaton at every position, so a search costs the text's
// length times how far each start runs: quadratic on a long run of what the
// pattern's first part accepts ("[a-z]+@x" over a base64 blob). Three ways
// around that, used wherever they apply:
// - `prefix`: the literal every match starts with. Only its occurrences can
//   start a match, so each is tried once, anchored (match_continuous).
// - `any`: [\s\S]*?(P), anchored at the start, is one pass of the
//   polynomial (Thompson) executor over the text: linear, and it says whether
//   P matches anywhere and where one match starts (group 1).
// - `required`: a literal every match contains. A text without it cannot
//   match, which one memchr-speed find tells.
struct CompiledPattern {
    std::regex re;
    std::regex any;
    std::string prefix;    // lowercased when icase; empty when the pattern has none
    std::string required;  // likewise
};

namespace {

using SpanList = std::vector<std::pair<uint64_t, uint64_t>>;

// Patterns come from an owner's config; a pattern this long is a mistake, and
// the automaton's size (so the cost of every step) grows with it.
constexpr size_t kMaxPatternLength = 1024;

// How much of the text before a match the excerpt shows.
constexpr size_t kExcerptLead = 40;

// A config value that should have been a string, as the message shows it.
std::string quote_json(const nlohmann::json& j) {
    return j.is_string() ? quote_config_text(j.get_ref<const std::string&>())
                         : std::string(j.type_name());
}

bool alnum(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

char ascii_lower(char ch) { return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch; }

// The literal text every match of an ECMAScript pattern starts with: what
// precedes the first metacharacter, after leading zero-width ^ \b \B, minus
// a last character that a quantifier makes optional. Empty when the pattern
// has a top-level alternative (each could start differently).
std::string literal_prefix(std::string_view p, bool icase) {
    int depth = 0;
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        char c = p[i];
        if (c == '\\') {
            ++i;
        } else if (in_class) {
            if (c == ']') in_class = false;
        } else if (c == '[') {
            in_class = true;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')') {
            --depth;
        } else if (c == '|' && depth == 0) {
            return {};
        }
    }
    size_t i = 0;
    while (i < p.size()) {
        if (p[i] == '^') {
            ++i;
        } else if (p.substr(i, 2) == "\\b" || p.substr(i, 2) == "\\B") {
            i += 2;
        } else {
            break;
        }
    }
    std::string out;
    while (i < p.size()) {
        char lit;
        size_t next;
        if (p[i] == '\\') {
            if (i + 1 >= p.size() || alnum(p[i + 1])) break;  // \d, \w, \x41...: a class
            lit = p[i + 1];
            next = i + 2;
        } else if (std::string_view("^$.|?*+()[]{}").find(p[i]) != std::string_view::npos) {
            break;
        } else {
            lit = p[i];
            next = i + 1;
        }
        if (next < p.size() && std::string_view("?*+{").find(p[next]) != std::string_view::npos)
            break;
        out += icase ? ascii_lower(lit) : lit;
        i = next;
    }
    return out;
}

// The longest run of literal characters at the top level of `p` (outside
// groups and classes, not under a quantifier), which every match contains.
// Empty when shorter than 3 bytes (too common to filter anything) or when
// `p` has a top-level alternative.
std::string required_literal(std::string_view p, bool icase) {
    std::string best, run;
    auto end_run = [&] {
        if (run.size() > best.size()) best = run;
        run.clear();
    };
    int depth = 0;
    for (size_t i = 0; i < p.size();) {
        char c = p[i];
        if (depth > 0 || c == '(' || c == '[') {
            // Skip a group or a class whole.
            end_run();
            if (c == '\\') {
                i += 2;
                continue;
            }
            if (c == '[') {
                size_t j = i + 1;
                if (j < p.size() && p[j] == ']') ++j;
                while (j < p.size() && p[j] != ']') j += p[j] == '\\' ? 2 : 1;
                i = j + 1;
                continue;
            }
            if (c == '(') ++depth;
            if (c == ')') --depth;
            ++i;
            continue;
        }
        if (c == '|') return {};
        char lit;
        size_t next;
        if (c == '\\') {
            if (i + 1 >= p.size() || alnum(p[i + 1])) {  // a class, an assertion, a code
                end_run();
                char e = i + 1 < p.size() ? p[i + 1] : '\0';
                i += e == 'x' ? 4 : e == 'u' ? 6 : e == 'c' ? 3 : 2;
                continue;
            }
            lit = p[i + 1];
            next = i + 2;
        } else if (std::string_view("^$.?*+)]{}").find(c) != std::string_view::npos) {
            end_run();
            ++i;
            continue;
        } else {
            lit = c;
            next = i + 1;
        }
        if (next < p.size() && std::string_view("?*+{").find(p[next]) != std::string_view::npos) {
            end_run();  // optional or repeated: not required as such
        } else {
            run += icase ? ascii_lower(lit) : lit;
        }
        i = next;
    }
    end_run();
    return best.size() >= 3 ? best : std::string();
}

// Whether matching `p` case-sensitively against ASCII-lowercased text is the
// same as matching it case-insensitively against the text: no uppercase
// letters but escapes' (\S, \W, \B, \D), and nothing that names a character
// by code (\x41, \u0041, \cA) or by POSIX class ([[:upper:]]).
bool lowercase_safe(std::string_view p) {
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] == '\\') {
            if (i + 1 < p.size() && (p[i + 1] == 'x' || p[i + 1] == 'u' || p[i + 1] == 'c'))
                return false;
            ++i;
        } else if (p[i] >= 'A' && p[i] <= 'Z') {
            return false;
        } else if (p.substr(i, 2) == "[:") {
            return false;
        }
    }
    return true;
}

// Every pattern is compiled in libstdc++'s polynomial mode where it exists:
// the default backtracking executor is exponential on patterns like (a+)+b
// and recurses once per character, so a long line can overflow the stack.
// The polynomial executor refuses back-references at compile time, which is
// the price. (Another standard library gets its standard executor: correct,
// without the bound.)
Result<std::shared_ptr<const CompiledPattern>> compile(std::string_view pattern, bool icase,
                                                       bool multiline, bool builtin = false) {
    if (pattern.empty()) return make_error(EINVAL, "empty pattern");
    if (!builtin && pattern.size() > kMaxPatternLength)
        return make_error(EINVAL, "pattern " + quote_config_text(pattern) + " is longer than " +
                                      std::to_string(kMaxPatternLength) + " bytes");
    auto flags = std::regex::ECMAScript;
    if (icase) flags |= std::regex::icase;
    if (multiline) flags |= std::regex::multiline;
#ifdef __GLIBCXX__
    flags |= std::regex_constants::__polynomial;
#endif
    try {
        auto p = std::make_shared<CompiledPattern>();
        p->re = std::regex(pattern.begin(), pattern.end(), flags);
        p->prefix = literal_prefix(pattern, icase);
        p->required = required_literal(pattern, icase);
        std::string any = "[\\s\\S]*?(";
        any.append(pattern);
        any += ')';
        p->any = std::regex(any, flags);
        if (std::regex_search("", p->re))
            return make_error(EINVAL, "pattern " + quote_config_text(pattern) +
                                          " matches the empty string, so it matches everything");
        return std::shared_ptr<const CompiledPattern>(std::move(p));
    } catch (const std::regex_error& e) {
        return make_error(EINVAL, "bad pattern " + quote_config_text(pattern) + ": " + e.what());
    } catch (const std::exception& e) {
        return make_error(EINVAL, "pattern " + quote_config_text(pattern) + ": " + e.what());
    }
}

bool valid_rule_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char ch : name) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok) return false;
    }
    return true;
}

bool tool_name_char(char ch) { return alnum(ch) || ch == '_' || ch == '-'; }

std::optional<GuardAction> action_from(std::string_view s) {
    for (GuardAction a : {GuardAction::flag, GuardAction::drop, GuardAction::stop})
        if (guard_action_name(a) == s) return a;
    return std::nullopt;
}

// The length of the valid UTF-8 sequence at the start of `s` (Unicode's
// table of well-formed sequences: no overlongs, no surrogates, <= U+10FFFF),
// or 0.
size_t utf8_length(std::string_view s) {
    auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char c = at(0);
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (s.size() < n) return 0;
    if (at(1) < lo || at(1) > hi) return 0;
    for (size_t i = 2; i < n; ++i)
        if (at(i) < 0x80 || at(i) > 0xBF) return 0;
    return n;
}

// Excerpts go into a JSON event, whose dump must not throw, and are read as
// one line: valid UTF-8 kept, control characters as spaces, stray bytes '?'.
void append_printable(std::string& out, std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        size_t n = utf8_length(s.substr(i));
        if (n == 0) {
            out += '?';
            ++i;
        } else if (n == 1) {
            unsigned char ch = static_cast<unsigned char>(s[i]);
            out += (ch < 0x20 || ch == 0x7f) ? ' ' : s[i];
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void truncate_utf8(std::string& s, size_t max) {
    if (s.size() <= max) return;
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s.resize(n);
}

bool continuation(std::string_view text, size_t i) {
    return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
}

// The excerpt for a match starting at `begin`: some context before it, the match,
// and what follows, up to Guard::kMaxExcerpt bytes. Secret spans are computed
// over the whole text before cutting, so a secret the excerpt's edge cuts
// through is still recognized and replaced.
std::string make_excerpt(std::string_view text, size_t begin,
                         const std::vector<Redactor::Span>& spans) {
    size_t a = begin > kExcerptLead ? begin - kExcerptLead : 0;
    while (a < begin && continuation(text, a)) ++a;
    size_t b = std::min(text.size(), a + Guard::kMaxExcerpt);
    while (b > begin && continuation(text, b)) --b;
    std::string out;
    size_t pos = a;
    for (const auto& s : spans) {
        if (s.end <= a) continue;
        if (s.begin >= b) break;
        if (s.begin > pos) append_printable(out, text.substr(pos, s.begin - pos));
        out += Redactor::kMarker;
        pos = std::min(s.end, b);
    }
    if (pos < b) append_printable(out, text.substr(pos, b - pos));
    truncate_utf8(out, Guard::kMaxExcerpt);
    return out;
}

// ---- built-in rules --------------------------------------------------------
//
// Written for the phrasing of published injection corpora, and checked by
// the unit tests against benign text that shares their words. Every match
// starts with one of the rule's anchors (a lowercase literal, or "^" for the
// start of a line), so the regex runs only there, anchored, over at most
// max_match bytes: the cost is linear in the text whatever it holds.

constexpr size_t kBuiltinMaxMatch = 512;

struct Builtin {
    const char* name;
    const char* pattern;  // empty: forbidden-tool
    const char* anchors;  // space-separated, lowercase; "^" is a line start
    bool messages;
    bool tool_results;
    bool negatable;    // not a hit after "not", "don't", "never"...
    size_t max_match;  // bytes a match may span from its anchor
};

const Builtin kBuiltins[] = {
    {"ignore-instructions",
     // VERB, then one of: [det..] qualifier.. noun ("all previous instructions");
     // [det..] noun where-from ("the rules above"); your/all noun; everything
     // above / everything you were told.
     R"~(\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:)~"
     R"~((?:(?:all|any|each|every|of|the|your|my|our|these|those|its)\s+){0,3})~"
     R"~((?:(?:previous|prior|above|earlier|preceding|foregoing|system|original|initial|)~"
     R"~(developer|safety|existing|old)\s+){1,2})~"
     R"~((?:instructions?|prompts?|rules|directions|directives|guidelines|guidance|)~"
     R"~(constraints|commands|orders|programming|guardrails|policies|context)\b)~"
     R"~(|(?:(?:all|any|each|every|of|the|your|these|those)\s+){0,3})~"
     R"~((?:instructions?|prompts?|rules|directions|directives|guidelines|guidance|)~"
     R"~(constraints|commands|orders|programming|guardrails|policies)\s+)~"
     R"~((?:above|before\s+this|so\s+far|(?:that\s+)?you\s+(?:were|have\s+been)\s+given|)~"
     R"~((?:that\s+)?you\s+(?:have\s+)?received)\b)~"
     R"~(|(?:all\s+(?:of\s+)?)?(?:your|all)\s+)~"
     R"~((?:instructions|prompts?|rules|guidelines|directives|programming|guardrails)\b)~"
     R"~(|(?:all|everything|anything)\s+(?:(?:of\s+)?(?:the\s+)?(?:above|foregoing)\b)~"
     R"~(|(?:that\s+)?(?:you\s+(?:were|have\s+been)\s+told|came\s+before|)~"
     R"~((?:was\s+)?(?:said|written)\s+(?:before|above)))))~",
     "ignore disregard forget override bypass skip", true, true, true, kBuiltinMaxMatch},
    {"reveal-secrets",
     // VERB, more of the same sentence, then a secret's name, within 160 bytes.
     // (The gap is bounded by the anchored span, not by {0,N}: N copies of a
     // state would each be live at every step.)
     R"~(\b(?:reveal|print|show|display|output|leak|dump|repeat|disclose|expose|exfiltrate|)~"
     R"~(send|share|paste|email|post|upload|list|tell\s+me|give\s+me|)~"
     R"~(what\s+(?:is|are)\s+your)\b[^\n.!?]*?)~"
     R"~((?:\b(?:system\s+prompt|(?:system|hidden|initial|original|secret)\s+)~"
     R"~((?:instructions|prompt)|api[\s_-]?keys?|secret\s+keys?|private\s+keys?|ssh\s+keys?|)~"
     R"~(secrets|passwd|credentials|)~"
     R"~(passwords?(?!\s*(?:reset|policy|policies|field|manager|strength|requirements|)~"
     R"~(change|expir))|)~"
     R"~((?:access|auth|api|bearer|session|refresh|oauth)[\s_-]?tokens?|)~"
     R"~(environment\s+variables|env\s+vars?)\b|\.env\b))~",
     "reveal print show display output leak dump repeat disclose expose exfiltrate send share "
     "paste email post upload list tell give what",
     true, true, false, 160},
    {"role-override",
     // you are now [a ..] persona; from now on you will act/obey..; from now on
     // your role..; new instructions:; act as an unfiltered..; enable DAN mode.
     R"~(\byou\s+are\s+now\s+(?:(?:a|an|the|my|in|no\s+longer)\b[^\n.!?]{0,40}?\b)?)~"
     R"~((?:assistant|ai|agent|bot|chatbot|model|mode|persona|character|role|jailbroken|)~"
     R"~(dan|unrestricted|unfiltered|uncensored|evil)\b)~"
     R"~(|\bfrom\s+now\s+on\b[,\s]*you\s+(?:are|will|must|shall|should)\s+(?:an?\s+)?)~"
     R"~((?:act|behave|respond|reply|answer|obey|follow|ignore|only|always|never|)~"
     R"~(no\s+longer|called|named|dan|unrestricted|unfiltered|uncensored|jailbroken|evil)\b)~"
     R"~(|\bfrom\s+now\s+on\b[,\s]*your\s+(?:new\s+)?)~"
     R"~((?:role|task|instructions|goal|purpose|name)\b)~"
     R"~(|\b(?:new|updated)\s+(?:system\s+)?(?:instructions|directives|prompt)\s*:)~"
     R"~(|\b(?:act|behave|respond|pretend)\s+(?:as|like|to\s+be)\s+)~"
     R"~((?:if\s+you\s+(?:are|were)\s+)?(?:an?\s+)?)~"
     R"~((?:unrestricted|unfiltered|uncensored|jailbroken|evil)\b)~"
     R"~(|\b(?:enter|enable|activate|switch\s+to)\s+)~"
     R"~((?:developer|god|jailbreak|dan|sudo|admin)\s+mode\b)~",
     "you from new updated act behave respond pretend enter enable activate switch", true, true,
     false, kBuiltinMaxMatch},
    {"fake-turn",
     // A line dressed as a turn, or a chat template's special tokens.
     R"~(^[ \t>#*_]*(?:system|assistant|developer)[*_]*[ \t]*:)~"
     R"~(|^[ \t]*</?(?:system|system_prompt|instructions)>)~"
     R"~(|<\|(?:im_start|im_end|system|assistant|user|endoftext|start_header_id|)~"
     R"~(end_header_id|eot_id)\|>)~"
     R"~(|\[/?inst\]|<</?sys>>)~",
     "^ <| [inst] [/inst] <<sys>> <</sys>>", false, true, false, kBuiltinMaxMatch},
    {"forbidden-tool", "", "", true, true, false, 0},
};

}  // namespace

struct Guard::Compiled {
    std::shared_ptr<const CompiledPattern> re;  // null for forbidden-tool
    // Where a match can start: lowercase literals, and line starts. Empty (and
    // no line starts): search with the pattern's one-pass form.
    std::vector<std::string> anchors;
    bool line_starts = false;
    size_t max_match = Guard::kMaxMatch;  // bytes an anchored match may span
    bool on_lower = false;  // the pattern is lowercase and runs on the lowercased text
    bool negatable = false;
    bool forbidden_tool = false;
    std::string broken;  // a built-in that failed to compile (a bug): fails closed
};

namespace {

struct BuiltinRule {
    GuardRule rule;
    std::shared_ptr<const Guard::Compiled> compiled;
};

}  // namespace

// Compiled once per process; every Guard shares them.
static const std::vector<BuiltinRule>& builtin_rules() {
    static const std::vector<BuiltinRule> rules = [] {
        std::vector<BuiltinRule> out;
        for (const Builtin& b : kBuiltins) {
            GuardRule rule;
            rule.name = b.name;
            rule.pattern = b.pattern;
            rule.action = GuardAction::flag;
            rule.scans_messages = b.messages;
            rule.scans_tool_results = b.tool_results;
            rule.builtin = true;
            auto c = std::make_shared<Guard::Compiled>();
            c->negatable = b.negatable;
            c->max_match = b.max_match;
            c->on_lower = true;
            std::string_view words = b.anchors;
            while (!words.empty()) {
                size_t sp = words.find(' ');
                std::string_view w = words.substr(0, sp);
                if (w == "^")
                    c->line_starts = true;
                else if (!w.empty())
                    c->anchors.emplace_back(w);
                words = sp == std::string_view::npos ? std::string_view{} : words.substr(sp + 1);
            }
            if (*b.pattern == '\0') {
                c->forbidden_tool = true;
            } else {
                // Lowercase patterns run on the lowercased text: libstdc++'s icase
                // asks the locale about every character compared, which makes a
                // search several times slower.
                auto re = compile(b.pattern, false, true, true);
                if (re.ok())
                    c->re = *re;
                else
                    c->broken = "built-in rule " + rule.name + ": " + re.error().message;
            }
            out.push_back({std::move(rule), std::move(c)});
        }
        return out;
    }();
    return rules;
}

std::string_view guard_action_name(GuardAction action) {
    switch (action) {
        case GuardAction::flag:
            return "flag";
        case GuardAction::drop:
            return "drop";
        case GuardAction::stop:
            return "stop";
    }
    return "?";
}

std::string_view guard_source_name(GuardSource source) {
    switch (source) {
        case GuardSource::message:
            return "message";
        case GuardSource::tool_result:
            return "tool_result";
    }
    return "?";
}

// ---- Guard -----------------------------------------------------------------

Guard Guard::defaults() {
    Guard g;
    for (const auto& b : builtin_rules()) {
        g.rules_.push_back(b.rule);
        g.compiled_.push_back(b.compiled);
    }
    return g;
}

Result<Guard> Guard::parse(std::string_view json_text) {
    auto j = nlohmann::json::parse(json_text, nullptr, false);
    if (j.is_discarded()) return make_error(EINVAL, "guard: not valid JSON");
    return from_json(j);
}

Result<Guard> Guard::from_json(const nlohmann::json& j) {
    if (!j.is_object())
        return make_error(EINVAL, std::string("guard must be a JSON object, got ") + j.type_name());
    for (const auto& [key, value] : j.items()) {
        (void)value;
        if (key != "defaults" && key != "rules" && key != "secrets" && key != "secret_env")
            return make_error(EINVAL, "guard: unknown key " + quote_config_text(key) +
                                          " (known: defaults, rules, secrets, secret_env)");
    }
    Guard g;

    // Built-ins, with the owner's changes.
    const auto& builtins = builtin_rules();
    bool use_builtins = true;
    nlohmann::json overrides = nlohmann::json::object();
    if (auto it = j.find("defaults"); it != j.end()) {
        if (it->is_boolean()) {
            use_builtins = it->get<bool>();
        } else if (it->is_object()) {
            overrides = *it;
        } else {
            return make_error(EINVAL,
                              std::string("guard: defaults must be true, false or an object of "
                                          "built-in rule -> flag|drop|stop|off, got ") +
                                  it->type_name());
        }
    }
    for (const auto& [name, value] : overrides.items()) {
        bool known = std::any_of(builtins.begin(), builtins.end(),
                                 [&](const BuiltinRule& b) { return b.rule.name == name; });
        if (!known) {
            std::string names;
            for (const auto& b : builtins) names += (names.empty() ? "" : ", ") + b.rule.name;
            return make_error(EINVAL, "guard: defaults: unknown built-in rule " +
                                          quote_config_text(name) + " (built-ins: " + names + ")");
        }
        bool ok = value.is_string() &&
                  (value == "off" || action_from(value.get_ref<const std::string&>()));
        if (!ok)
            return make_error(EINVAL, "guard: defaults: " + quote_config_text(name) +
                                          ": unknown action " + quote_json(value) +
                                          " (expected flag, drop, stop or off)");
    }
    if (use_builtins) {
        for (const auto& b : builtins) {
            GuardRule rule = b.rule;
            if (auto it = overrides.find(rule.name); it != overrides.end()) {
                const auto& s = it->get_ref<const std::string&>();
                if (s == "off") continue;
                rule.action = *action_from(s);
            }
            g.rules_.push_back(std::move(rule));
            g.compiled_.push_back(b.compiled);
        }
    }

    // The owner's rules.
    if (auto it = j.find("rules"); it != j.end()) {
        if (!it->is_array())
            return make_error(
                EINVAL,
                std::string("guard: rules must be an array of objects, got ") + it->type_name());
        std::unordered_set<std::string> names;
        for (size_t i = 0; i < it->size(); ++i) {
            const auto& r = (*it)[i];
            std::string where = "guard: rules[" + std::to_string(i) + "]";
            if (!r.is_object())
                return make_error(EINVAL, where + " must be an object, got " + r.type_name());
            auto name_it = r.find("name");
            if (name_it == r.end() || !name_it->is_string())
                return make_error(EINVAL, where + ": needs a \"name\" (a string)");
            const std::string& name = name_it->get_ref<const std::string&>();
            if (!valid_rule_name(name))
                return make_error(EINVAL, where + ": bad name " + quote_config_text(name) +
                                              ": rule names are 1-64 of A-Z a-z 0-9 _ - .");
            where += " " + quote_config_text(name);
            for (const auto& [key, value] : r.items()) {
                (void)value;
                if (key != "name" && key != "pattern" && key != "action" && key != "scan")
                    return make_error(EINVAL, where + ": unknown key " + quote_config_text(key) +
                                                  " (known: name, pattern, action, scan)");
            }
            bool is_builtin =
                std::any_of(builtins.begin(), builtins.end(),
                            [&](const BuiltinRule& b) { return b.rule.name == name; });
            if (is_builtin)
                return make_error(EINVAL, where +
                                              ": that name is a built-in rule; set its "
                                              "action under \"defaults\"");
            if (!names.insert(name).second)
                return make_error(EINVAL, where + ": duplicate rule name");

            GuardRule rule;
            rule.name = name;
            auto pat_it = r.find("pattern");
            if (pat_it == r.end() || !pat_it->is_string())
                return make_error(EINVAL, where + ": needs a \"pattern\" (a string)");
            rule.pattern = pat_it->get_ref<const std::string&>();
            // Case-insensitive: as a lowercase pattern over the lowercased text
            // where that is the same thing (faster; see the built-ins), else icase.
            bool on_lower = lowercase_safe(rule.pattern);
            auto re = compile(rule.pattern, !on_lower, true);
            if (!re.ok()) return make_error(EINVAL, where + ": " + re.error().message);

            if (auto a = r.find("action"); a != r.end()) {
                auto act =
                    a->is_string() ? action_from(a->get_ref<const std::string&>()) : std::nullopt;
                if (!act)
                    return make_error(EINVAL, where + ": unknown action " + quote_json(*a) +
                                                  " (expected flag, drop or stop)");
                rule.action = *act;
            }
            if (auto s = r.find("scan"); s != r.end()) {
                if (!s->is_array() || s->empty())
                    return make_error(EINVAL, where +
                                                  ": scan must be a non-empty array of "
                                                  "\"message\", \"tool_result\"");
                rule.scans_messages = rule.scans_tool_results = false;
                for (const auto& src : *s) {
                    if (src == "message")
                        rule.scans_messages = true;
                    else if (src == "tool_result")
                        rule.scans_tool_results = true;
                    else
                        return make_error(EINVAL, where + ": unknown scan source " +
                                                      quote_json(src) +
                                                      " (expected message, tool_result)");
                }
            }
            auto c = std::make_shared<Compiled>();
            c->re = *re;
            c->on_lower = on_lower;
            // A prefix of one byte would make nearly every position an anchor.
            if ((*re)->prefix.size() >= 2) c->anchors.push_back((*re)->prefix);
            g.rules_.push_back(std::move(rule));
            g.compiled_.push_back(std::move(c));
        }
    }

    // Secrets: checked here so a bad one is a config error, not a silent leak.
    auto strings = [&](const char* key, bool icase, std::vector<std::string>& out) -> Status {
        auto it = j.find(key);
        if (it == j.end()) return {};
        if (!it->is_array())
            return make_error(EINVAL, std::string("guard: ") + key +
                                          " must be an array of patterns, got " + it->type_name());
        for (size_t i = 0; i < it->size(); ++i) {
            const auto& p = (*it)[i];
            std::string where = std::string("guard: ") + key + "[" + std::to_string(i) + "]";
            if (!p.is_string())
                return make_error(EINVAL, where + " must be a string, got " + p.type_name());
            auto re = compile(p.get_ref<const std::string&>(), icase, false);
            if (!re.ok()) return make_error(EINVAL, where + ": " + re.error().message);
            out.push_back(p.get<std::string>());
        }
        return {};
    };
    if (Status s = strings("secrets", false, g.secrets_); !s) return s.error();
    if (Status s = strings("secret_env", true, g.secret_env_); !s) return s.error();
    return g;
}

Result<Redactor> Guard::redactor(char** envp,
                                 const std::vector<std::string>& extra_literals) const {
    return Redactor::from_environment(envp, extra_literals, secrets_, secret_env_);
}

namespace {

struct Segment {
    size_t begin;
    size_t end;
};

struct Hit {
    size_t rule;  // index into rules_
    size_t begin;
    std::string detail;
    std::string failure;  // the engine failed: reported as a hit (fails closed)
};

// Whether the word before `at` negates what follows ("don't ignore", "do not
// ignore", "never skip"): a reminder of the rules, not an attack on them.
bool negated(std::string_view text, size_t at, size_t floor) {
    size_t end = at;
    while (end > floor && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\n'))
        --end;
    size_t begin = end;
    while (begin > floor && end - begin < 16 &&
           (alnum(text[begin - 1]) || text[begin - 1] == '\'' ||
            static_cast<unsigned char>(text[begin - 1]) >= 0x80))
        --begin;
    std::string word;
    for (size_t i = begin; i < end; ++i) word += ascii_lower(text[i]);
    // U+2019, the apostrophe word processors write.
    for (size_t p; (p = word.find("\xe2\x80\x99")) != std::string::npos;) word.replace(p, 3, "'");
    static const char* const kNegations[] = {"not",       "never",  "don't",  "dont", "cannot",
                                             "can't",     "cant",   "won't",  "wont", "mustn't",
                                             "shouldn't", "didn't", "doesn't"};
    return std::any_of(std::begin(kNegations), std::end(kNegations),
                       [&](const char* n) { return word == n; });
}

// The start of the first match of a pattern rule in `segments` of `text`.
// Each search sees the text around it: with match_prev_avail, ^ and \b look
// at the byte before; where a search stops inside the text, not_eol/not_eow
// keep $ and \b from pretending the text ends there.
std::optional<size_t> find_pattern(std::string_view text, const std::vector<Segment>& segments,
                                   const Guard::Compiled& c, std::string_view lower) {
    namespace rc = std::regex_constants;
    const char* base = c.on_lower ? lower.data() : text.data();
    auto flags_for = [&](size_t from, size_t to) {
        auto f = rc::match_continuous;
        if (from > 0) f |= rc::match_prev_avail;
        if (to < text.size()) f |= rc::match_not_eol | rc::match_not_eow;
        return f;
    };
    std::cmatch m;

    if (c.anchors.empty() && !c.line_starts) {
        for (const Segment& seg : segments)
            if ((c.re->required.empty() ||
                 lower.substr(seg.begin, seg.end - seg.begin).find(c.re->required) !=
                     std::string_view::npos) &&
                std::regex_search(base + seg.begin, base + seg.end, m, c.re->any,
                                  flags_for(seg.begin, seg.end)))
                return static_cast<size_t>(m[1].first - base);
        return std::nullopt;
    }

    for (const Segment& seg : segments) {
        std::vector<size_t> starts;
        std::string_view low = lower.substr(0, seg.end);
        for (const auto& a : c.anchors)
            for (size_t p = low.find(a, seg.begin); p != std::string_view::npos;
                 p = low.find(a, p + 1))
                starts.push_back(p);
        if (c.line_starts) {
            if (seg.begin == 0 || text[seg.begin - 1] == '\n') starts.push_back(seg.begin);
            for (size_t p = low.find('\n', seg.begin);
                 p != std::string_view::npos && p + 1 < seg.end; p = low.find('\n', p + 1))
                starts.push_back(p + 1);
        }
        std::sort(starts.begin(), starts.end());
        starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
        for (size_t at : starts) {
            size_t to = std::min(seg.end, at + c.max_match);
            if (!std::regex_search(base + at, base + to, m, c.re->re, flags_for(at, to))) continue;
            if (c.negatable && negated(text, at, seg.begin)) continue;
            return at;
        }
    }
    return std::nullopt;
}

// The first tool the text names that exists but is not held: maximal runs of
// tool-name characters, compared whole (and without leading or trailing '-',
// which prose puts around words: "--delete_everything", "lookup-").
std::optional<std::pair<size_t, std::string>> find_forbidden(std::string_view text,
                                                             const std::vector<Segment>& segments,
                                                             const GuardContext& ctx) {
    std::unordered_set<std::string_view> held(ctx.held_tools.begin(), ctx.held_tools.end());
    std::unordered_set<std::string_view> forbidden;
    for (const auto& t : ctx.all_tools)
        if (!t.empty() && !held.count(t)) forbidden.insert(t);
    if (forbidden.empty()) return std::nullopt;
    for (const Segment& seg : segments) {
        size_t i = seg.begin;
        while (i < seg.end) {
            if (!tool_name_char(text[i])) {
                ++i;
                continue;
            }
            size_t j = i;
            while (j < seg.end && tool_name_char(text[j])) ++j;
            std::string_view word = text.substr(i, j - i);
            if (forbidden.count(word)) return std::make_pair(i, std::string(word));
            size_t a = 0, b = word.size();
            while (a < b && word[a] == '-') ++a;
            while (b > a && word[b - 1] == '-') --b;
            std::string_view trimmed = word.substr(a, b - a);
            if (trimmed.size() != word.size() && forbidden.count(trimmed))
                return std::make_pair(i + a, std::string(trimmed));
            i = j;
        }
    }
    return std::nullopt;
}

}  // namespace

std::vector<GuardMatch> Guard::scan(std::string_view text, GuardSource src,
                                    const GuardContext& ctx) const {
    std::vector<Segment> segments;
    if (text.size() <= kMaxScanBytes) {
        segments.push_back({0, text.size()});
    } else {
        segments.push_back({0, kMaxScanBytes / 2});
        segments.push_back({text.size() - kMaxScanBytes / 2, text.size()});
    }

    // Lowercased once: anchors are found in it and built-ins run on it (ASCII
    // only, so offsets agree with the text).
    std::string lower;
    bool lowered = false;
    auto lowercase = [&]() -> std::string_view {
        if (!lowered) {
            lower.assign(text.size(), ' ');
            for (const Segment& seg : segments)  // and the byte before, for \b and ^
                for (size_t i = seg.begin > 0 ? seg.begin - 1 : 0; i < seg.end; ++i)
                    lower[i] = ascii_lower(text[i]);
            lowered = true;
        }
        return lower;
    };

    std::vector<Hit> hits;
    for (size_t i = 0; i < rules_.size(); ++i) {
        const GuardRule& rule = rules_[i];
        if (!(src == GuardSource::message ? rule.scans_messages : rule.scans_tool_results))
            continue;
        const Compiled& c = *compiled_[i];
        if (!c.broken.empty()) {
            hits.push_back({i, 0, {}, c.broken});
            continue;
        }
        try {
            if (c.forbidden_tool) {
                if (auto f = find_forbidden(text, segments, ctx))
                    hits.push_back({i, f->first, std::move(f->second), {}});
            } else if (auto at = find_pattern(text, segments, c, lowercase())) {
                hits.push_back({i, *at, {}, {}});
            }
        } catch (const std::exception& e) {
            hits.push_back({i, 0, {}, std::string("scan failed: ") + e.what()});
        }
    }
    if (hits.empty()) return {};

    std::stable_sort(hits.begin(), hits.end(), [&](const Hit& a, const Hit& b) {
        return rules_[a.rule].action > rules_[b.rule].action;
    });
    std::vector<Redactor::Span> spans;
    if (ctx.redactor != nullptr) spans = ctx.redactor->secret_spans(text);
    std::vector<GuardMatch> out;
    out.reserve(hits.size());
    for (Hit& h : hits) {
        GuardMatch m;
        m.rule = rules_[h.rule].name;
        m.action = rules_[h.rule].action;
        if (!h.failure.empty()) {
            append_printable(m.excerpt, h.failure);
            truncate_utf8(m.excerpt, kMaxExcerpt);
        } else {
            m.excerpt = make_excerpt(text, h.begin, spans);
        }
        m.detail = std::move(h.detail);
        out.push_back(std::move(m));
    }
    return out;
}

// ---- Redactor --------------------------------------------------------------

namespace {

// The spelling a string has inside a JSON string literal, as nlohmann dumps it.
std::string json_escaped(std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (char ch : s) {
        unsigned char u = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (u < 0x20) {
                    out += "\\u00";
                    out += hex[u >> 4];
                    out += hex[u & 15];
                } else {
                    out += ch;
                }
        }
    }
    return out;
}

// The length of the line (piece) starting `rest`: through its '\n', or
// Redactor::kMaxLine bytes if none comes sooner. 0 when that is not yet
// decided (no '\n' and fewer than kMaxLine bytes) unless `final`.
size_t piece_length(std::string_view rest, bool final) {
    size_t limit = std::min(rest.size(), Redactor::kMaxLine);
    size_t nl = rest.substr(0, limit).find('\n');
    if (nl != std::string_view::npos) return nl + 1;
    if (rest.size() >= Redactor::kMaxLine) return Redactor::kMaxLine;
    return final ? rest.size() : 0;
}

// Sorts and merges (touching spans too: one marker for one run of secret bytes).
std::vector<Redactor::Span> merge(SpanList spans) {
    std::sort(spans.begin(), spans.end());
    std::vector<Redactor::Span> out;
    for (const auto& [b, e] : spans) {
        if (!out.empty() && b <= out.back().end)
            out.back().end = std::max<size_t>(out.back().end, e);
        else
            out.push_back({static_cast<size_t>(b), static_cast<size_t>(e)});
    }
    return out;
}

}  // namespace

Result<Redactor> Redactor::from_environment(char** envp,
                                            const std::vector<std::string>& extra_literals,
                                            const std::vector<std::string>& patterns,
                                            const std::vector<std::string>& env_names) {
    Redactor r;
    std::vector<std::shared_ptr<const CompiledPattern>> names;
    if (env_names.empty()) {
        auto re = compile(kDefaultSecretEnv, true, false);
        if (!re.ok()) return make_error(EINVAL, "secret_env: " + re.error().message);
        names.push_back(*re);
    }
    for (size_t i = 0; i < env_names.size(); ++i) {
        auto re = compile(env_names[i], true, false);
        if (!re.ok())
            return make_error(EINVAL,
                              "secret_env[" + std::to_string(i) + "]: " + re.error().message);
        names.push_back(*re);
    }
    for (size_t i = 0; i < patterns.size(); ++i) {
        auto re = compile(patterns[i], false, false);
        if (!re.ok())
            return make_error(EINVAL, "secrets[" + std::to_string(i) + "]: " + re.error().message);
        r.patterns_.push_back(*re);
    }

    std::vector<std::string> lits;
    try {
        for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
            std::string_view kv(*e);
            size_t eq = kv.find('=');
            if (eq == std::string_view::npos || kv.size() - eq - 1 < kMinSecretLength) continue;
            std::string_view name = kv.substr(0, eq);
            bool secret = std::any_of(names.begin(), names.end(), [&](const auto& n) {
                return std::regex_search(name.begin(), name.end(), n->re);
            });
            if (secret) lits.emplace_back(kv.substr(eq + 1));
        }
    } catch (const std::exception& e) {
        return make_error(EIO, std::string("secret_env: reading the environment: ") + e.what());
    }
    lits.insert(lits.end(), extra_literals.begin(), extra_literals.end());
    size_t given = lits.size();
    for (size_t i = 0; i < given; ++i) {
        std::string esc = json_escaped(lits[i]);
        if (esc != lits[i]) lits.push_back(std::move(esc));
    }
    std::erase_if(lits, [](const std::string& s) { return s.size() < kMinSecretLength; });
    std::sort(lits.begin(), lits.end());
    lits.erase(std::unique(lits.begin(), lits.end()), lits.end());
    for (const auto& s : lits) {
        r.longest_ = std::max(r.longest_, s.size());
        r.first_byte_[static_cast<unsigned char>(s[0])] = true;
    }
    r.literals_ = std::move(lits);
    return r;
}

void Redactor::literal_spans(std::string_view text, uint64_t base, SpanList& out) const {
    for (const auto& lit : literals_) {
        size_t pos = text.find(lit);
        if (pos == std::string_view::npos) continue;
        // Overlapping occurrences of one literal ("aaaaaaaa" in a longer run)
        // extend one span instead of adding one each.
        uint64_t b = base + pos, e = b + lit.size();
        while ((pos = text.find(lit, pos + 1)) != std::string_view::npos) {
            uint64_t nb = base + pos;
            if (nb <= e) {
                e = nb + lit.size();
            } else {
                out.emplace_back(b, e);
                b = nb;
                e = nb + lit.size();
            }
        }
        out.emplace_back(b, e);
    }
}

void Redactor::pattern_spans(std::string_view piece, uint64_t base, SpanList& out) const {
    namespace rc = std::regex_constants;
    std::string_view line = piece;
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    const char* begin = line.data();
    const char* end = begin + line.size();
    auto add = [&](const std::cmatch& m) {
        out.emplace_back(base + (m[0].first - begin), base + (m[0].second - begin));
    };
    for (const auto& p : patterns_) {
        try {
            std::cmatch m;
            if (p->prefix.size() >= 2) {
                // Only where the prefix occurs can a match start: one anchored
                // try each, the same matches regex_search would find.
                size_t at = line.find(p->prefix);
                while (at != std::string_view::npos) {
                    auto f = rc::match_continuous;
                    if (at > 0) f |= rc::match_prev_avail;
                    if (std::regex_search(begin + at, end, m, p->re, f) && m[0].length() > 0) {
                        add(m);
                        at = line.find(p->prefix, m[0].second - begin);
                    } else {
                        at = line.find(p->prefix, at + 1);
                    }
                }
                continue;
            }
            // No prefix: a linear pass says whether the line holds a match at
            // all; only then the search that lists them, which can cost the
            // line's length squared (the line is at most kMaxLine).
            if (!p->required.empty() && line.find(p->required) == std::string_view::npos) continue;
            if (!std::regex_search(begin, end, m, p->any, rc::match_continuous)) continue;
            const char* from = begin;
            while (from <= end) {
                auto f = rc::match_default;
                if (from > begin) f |= rc::match_prev_avail;
                if (!std::regex_search(from, end, m, p->re, f)) break;
                if (m[0].length() == 0) {
                    from = m[0].second + 1;
                    continue;
                }
                add(m);
                from = m[0].second;
            }
        } catch (const std::exception&) {
            // The engine gave up on this line (out of memory): redact all of
            // it rather than let a secret through.
            out.emplace_back(base, base + line.size());
        }
    }
}

bool Redactor::could_start_literal(std::string_view tail) const {
    for (const auto& lit : literals_)
        if (lit.size() > tail.size() && std::string_view(lit).substr(0, tail.size()) == tail)
            return true;
    return false;
}

std::vector<Redactor::Span> Redactor::secret_spans(std::string_view text) const {
    if (empty()) return {};
    SpanList spans;
    literal_spans(text, 0, spans);
    if (!patterns_.empty()) {
        size_t pos = 0;
        while (pos < text.size()) {
            size_t len = piece_length(text.substr(pos), true);
            pattern_spans(text.substr(pos, len), pos, spans);
            pos += len;
        }
    }
    return merge(std::move(spans));
}

std::string Redactor::redact(std::string_view text) const {
    auto spans = secret_spans(text);
    if (spans.empty()) return std::string(text);
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    for (const auto& s : spans) {
        out.append(text.substr(pos, s.begin - pos));
        out += kMarker;
        pos = s.end;
    }
    out.append(text.substr(pos));
    return out;
}

// ---- StreamRedactor --------------------------------------------------------

StreamRedactor::StreamRedactor(std::shared_ptr<const Redactor> r) : r_(std::move(r)) {}

std::string StreamRedactor::feed(std::string_view chunk) {
    buf_.append(chunk);
    return emit(false);
}

std::string StreamRedactor::finish() {
    std::string out = emit(true);
    buf_.clear();
    base_ = piece_ = cover_end_ = 0;
    prev_covered_ = false;
    pattern_spans_.clear();
    return out;
}

// Returns the longest prefix of buf_ whose redaction no later input can
// change (see the header), redacted exactly as Redactor::redact would.
std::string StreamRedactor::emit(bool final) {
    std::string out;
    const uint64_t total = base_ + buf_.size();
    if (!r_ || r_->empty()) {
        out.swap(buf_);
        base_ = piece_ = total;
        return out;
    }
    const Redactor& r = *r_;
    std::string_view buf(buf_);

    // Lines complete by now are scanned for patterns, once each.
    if (r.patterns_.empty()) {
        piece_ = total;
    } else {
        while (piece_ < total) {
            std::string_view rest = buf.substr(piece_ - base_);
            size_t len = piece_length(rest, final);
            if (len == 0) break;
            r.pattern_spans(rest.substr(0, len), piece_, pattern_spans_);
            piece_ += len;
        }
    }

    // Where the tail could still become a literal, the redaction is undecided.
    uint64_t cut = total;
    if (!final && r.longest_ > 1) {
        uint64_t from = total - std::min<uint64_t>(buf_.size(), r.longest_ - 1);
        for (uint64_t p = from; p < total; ++p) {
            if (!r.first_byte_[static_cast<unsigned char>(buf[p - base_])]) continue;
            if (r.could_start_literal(buf.substr(p - base_))) {
                cut = p;
                break;
            }
        }
    }
    cut = std::min(cut, piece_);
    if (cut == base_) return out;

    SpanList spans;
    r.literal_spans(buf, base_, spans);
    spans.insert(spans.end(), pattern_spans_.begin(), pattern_spans_.end());
    if (cover_end_ > base_) spans.emplace_back(base_, cover_end_);
    std::sort(spans.begin(), spans.end());

    out.reserve(cut - base_);
    uint64_t pos = base_;
    bool last_covered = false;  // whether the byte at cut-1 is redacted
    size_t i = 0;
    while (i < spans.size() && spans[i].first < cut) {
        uint64_t rb = spans[i].first, re = spans[i].second;
        for (++i; i < spans.size() && spans[i].first <= re; ++i) re = std::max(re, spans[i].second);
        out.append(buf.substr(pos - base_, rb - pos));
        // A run that starts where the last returned byte was redacted is the
        // same run: its marker is already out.
        if (!(rb == base_ && prev_covered_)) out += Redactor::kMarker;
        pos = std::min(re, cut);
        cover_end_ = std::max(cover_end_, re);
        last_covered = re >= cut;
    }
    out.append(buf.substr(pos - base_, cut - pos));
    prev_covered_ = last_covered;

    std::erase_if(pattern_spans_, [&](const auto& s) { return s.first < cut; });
    buf_.erase(0, cut - base_);
    base_ = cut;
    return out;
}

}  // namespace swarmfs
