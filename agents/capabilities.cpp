#include "agents/capabilities.h"

#include <algorithm>
#include <iterator>
#include <optional>

#include "agents/agent_config.h"
#include "agents/tools/tool.h"

namespace swarmfs {

namespace {

using Kind = Capability::Kind;

constexpr Kind kKinds[] = {Kind::tool, Kind::handoff, Kind::send, Kind::publish, Kind::net};

// Entries and paths come from users and from agents trying their luck; the
// message they end up in must stay one readable ASCII line whatever they hold
// (a log line, an err file, a JSON event that must not throw on dump).

std::optional<Kind> kind_from(std::string_view s) {
    for (Kind k : kKinds)
        if (kind_name(k) == s) return k;
    return std::nullopt;
}

bool valid_target(Kind kind, std::string_view target) {
    if (kind == Kind::net) return target.empty();
    return kind == Kind::tool ? valid_tool_name(target) : valid_agent_name(target);
}

std::string target_rule(Kind kind) {
    switch (kind) {
        case Kind::tool:
            return "tool names are 1-64 of A-Z a-z 0-9 _ -";
        case Kind::handoff:
        case Kind::send:
            return "agent names are 1-64 of A-Z a-z 0-9 _ - . (not starting with . or ending with "
                   "~)";
        case Kind::publish:
            return "topic names are 1-64 of A-Z a-z 0-9 _ - . (not starting with . or ending with "
                   "~)";
        case Kind::net:
            break;
    }
    return "net takes no target";
}

bool has_prefix(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// The parent of a normalized path other than "/".
std::string_view parent_of(std::string_view path) {
    size_t slash = path.rfind('/');
    return slash == 0 ? std::string_view("/") : path.substr(0, slash);
}

// Lexical normalization of a path an agent asks about. Unlike unveil keys,
// queries are forgiving of spelling ("//a/./b/") since a shell produces those
// innocently, but never of "..": resolving it lexically would be wrong under
// symlinks and refusing it costs nothing, as the agent can name the target.
std::optional<std::string> normalize_query(std::string_view path) {
    if (path.empty() || path.front() != '/' || path.size() > UnveilMap::kMaxPath) return {};
    if (path.find('\0') != std::string_view::npos) return {};
    std::string out;
    size_t i = 0;
    while (i < path.size()) {
        size_t end = path.find('/', i);
        if (end == std::string_view::npos) end = path.size();
        std::string_view comp = path.substr(i, end - i);
        i = end + 1;
        if (comp.empty() || comp == ".") continue;
        if (comp == ".." || comp.size() > NAME_MAX) return {};
        out += '/';
        out += comp;
    }
    if (out.empty()) out = "/";
    return out;
}

// Unveil keys are written once by the owner, so they are held to one
// spelling: anything a query would have to normalize, other than trailing
// slashes, is more likely a mistake than a wish.
Result<std::string> normalize_key(std::string_view path) {
    if (path.empty()) return make_error(EINVAL, "unveil: empty path");
    if (path.front() != '/')
        return make_error(
            EINVAL, "unveil: " + quote_config_text(path) + " is relative; paths start with /");
    if (path.size() > UnveilMap::kMaxPath)
        return make_error(EINVAL, "unveil: path " + quote_config_text(path) + " is " +
                                      std::to_string(path.size()) + " bytes, longer than " +
                                      std::to_string(UnveilMap::kMaxPath));
    for (char ch : path) {
        unsigned char u = static_cast<unsigned char>(ch);
        if (u < 0x20 || u == 0x7f)
            return make_error(EINVAL, "unveil: path " + quote_config_text(path) +
                                          " contains a control character");
    }
    size_t end = path.size();
    while (end > 1 && path[end - 1] == '/') --end;
    std::string_view trimmed = path.substr(0, end);
    if (trimmed == "/") return std::string("/");
    size_t i = 1;
    while (i <= trimmed.size()) {
        size_t stop = trimmed.find('/', i);
        if (stop == std::string_view::npos) stop = trimmed.size();
        std::string_view comp = trimmed.substr(i, stop - i);
        i = stop + 1;
        if (comp.empty())
            return make_error(
                EINVAL, "unveil: path " + quote_config_text(path) + " has an empty component");
        if (comp == "." || comp == "..")
            return make_error(EINVAL, "unveil: path " + quote_config_text(path) + " has a \"" +
                                          std::string(comp) +
                                          "\" component; write the path it means");
        if (comp.size() > NAME_MAX)
            return make_error(EINVAL, "unveil: path " + quote_config_text(path) +
                                          " has a component longer than " +
                                          std::to_string(NAME_MAX) + " bytes");
    }
    return std::string(trimmed);
}

}  // namespace

std::string_view kind_name(Kind kind) {
    switch (kind) {
        case Kind::tool:
            return "tool";
        case Kind::handoff:
            return "handoff";
        case Kind::send:
            return "send";
        case Kind::publish:
            return "publish";
        case Kind::net:
            return "net";
    }
    return "?";
}

std::string Capability::to_string() const {
    std::string s(kind_name(kind));
    if (kind != Kind::net) s += ":" + target;
    return s;
}

Result<Capability> Capability::parse(std::string_view text) {
    if (text.empty()) return make_error(EINVAL, "caps: empty entry");
    size_t colon = text.find(':');
    std::string_view kind_text = text.substr(0, colon);
    auto kind = kind_from(kind_text);
    if (!kind)
        return make_error(EINVAL, "caps: unknown kind " + quote_config_text(kind_text) + " in " +
                                      quote_config_text(text) +
                                      " (known: tool, handoff, send, publish, net)");
    if (*kind == Kind::net) {
        if (colon != std::string_view::npos)
            return make_error(EINVAL, "caps: net takes no target, got " + quote_config_text(text));
        return Capability{Kind::net, ""};
    }
    std::string k(kind_text);
    if (colon == std::string_view::npos || colon + 1 == text.size())
        return make_error(EINVAL, "caps: " + quote_config_text(text) + " needs a target: " + k +
                                      ":NAME, or " + k + ":* for any");
    std::string_view target = text.substr(colon + 1);
    if (target != "*" && !valid_target(*kind, target))
        return make_error(EINVAL, "caps: bad target " + quote_config_text(target) + " in " +
                                      quote_config_text(text) + ": " + target_rule(*kind));
    return Capability{*kind, std::string(target)};
}

Result<CapabilitySet> CapabilitySet::from_json(const nlohmann::json& j) {
    if (!j.is_array())
        return make_error(
            EINVAL, std::string("caps must be a JSON array of strings, got ") + j.type_name());
    CapabilitySet set;
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& e = j[i];
        if (!e.is_string())
            return make_error(
                EINVAL, "caps[" + std::to_string(i) + "] must be a string, got " + e.type_name());
        auto cap = Capability::parse(e.get_ref<const std::string&>());
        if (!cap) return cap.error();
        set.caps_.push_back(std::move(*cap));
    }
    auto by_text = [](const Capability& a, const Capability& b) {
        return a.to_string() < b.to_string();
    };
    std::sort(set.caps_.begin(), set.caps_.end(), by_text);
    set.caps_.erase(std::unique(set.caps_.begin(), set.caps_.end()), set.caps_.end());
    // Drop what a wildcard already grants, so a set prints one way per meaning
    // and narrow()'s "the result is the pledge" holds for printed forms too.
    bool any_of_kind[std::size(kKinds)] = {};
    for (const auto& c : set.caps_)
        if (c.wildcard()) any_of_kind[static_cast<size_t>(c.kind)] = true;
    std::vector<Capability> kept;
    for (auto& c : set.caps_)
        if (c.wildcard() || !any_of_kind[static_cast<size_t>(c.kind)]) kept.push_back(std::move(c));
    set.caps_ = std::move(kept);
    return set;
}

Result<CapabilitySet> CapabilitySet::parse(std::string_view json_text) {
    auto j = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, false);
    if (j.is_discarded()) return make_error(EINVAL, "caps: invalid JSON");
    return from_json(j);
}

bool CapabilitySet::allows(Kind kind, std::string_view target) const {
    if (kind == Kind::net)
        return std::any_of(caps_.begin(), caps_.end(),
                           [](const Capability& c) { return c.kind == Kind::net; });
    // Asking for "*" asks for the wildcard itself; anything else must be a
    // real name before a wildcard may vouch for it.
    bool asks_any = target == "*";
    if (!asks_any && !valid_target(kind, target)) return false;
    return std::any_of(caps_.begin(), caps_.end(), [&](const Capability& c) {
        return c.kind == kind && (c.wildcard() || (!asks_any && c.target == target));
    });
}

bool CapabilitySet::allows(const Capability& cap) const { return allows(cap.kind, cap.target); }

Result<CapabilitySet> CapabilitySet::narrow(const CapabilitySet& pledged) const {
    for (const auto& c : pledged.caps_)
        if (!allows(c))
            return make_error(EPERM, "pledge would widen: " + c.to_string() + " is not held");
    return pledged;
}

CapabilitySet CapabilitySet::intersect(const CapabilitySet& other) const {
    // Wildcards are per kind, so an entry of either that the other allows
    // is in both, and every capability both allow is such an entry.
    CapabilitySet both;
    for (const auto* side : {this, &other})
        for (const auto& c : side->caps_)
            if ((side == this ? other : *this).allows(c)) both.caps_.push_back(c);
    auto canonical = from_json(both.to_json());  // sorted, redundancy dropped
    return canonical ? *canonical : CapabilitySet();
}

nlohmann::json CapabilitySet::to_json() const {
    auto j = nlohmann::json::array();
    for (const auto& c : caps_) j.push_back(c.to_string());
    return j;
}

std::string CapabilitySet::to_text() const {
    std::string s;
    for (const auto& c : caps_) s += c.to_string() + "\n";
    return s;
}

std::string_view mode_name(Mode mode) {
    switch (mode) {
        case Mode::none:
            return "none";
        case Mode::r:
            return "r";
        case Mode::rw:
            return "rw";
    }
    return "?";
}

Result<UnveilMap> UnveilMap::from_json(const nlohmann::json& j) {
    if (!j.is_object())
        return make_error(EINVAL, std::string("unveil must be a JSON object of path -> "
                                              "\"r\" or \"rw\", got ") +
                                      j.type_name());
    UnveilMap map;
    std::map<std::string, std::string> spelled;  // normalized -> as written, for messages
    for (const auto& [key, value] : j.items()) {
        auto path = normalize_key(key);
        if (!path) return path.error();
        Mode mode = Mode::none;
        if (value.is_string() && value.get_ref<const std::string&>() == "r") mode = Mode::r;
        if (value.is_string() && value.get_ref<const std::string&>() == "rw") mode = Mode::rw;
        if (mode == Mode::none)
            return make_error(
                EINVAL,
                "unveil: mode of " + quote_config_text(key) + " must be \"r\" or \"rw\", got " +
                    (value.is_string() ? quote_config_text(value.get_ref<const std::string&>())
                                       : std::string(value.type_name())));
        auto [it, added] = spelled.try_emplace(*path, key);
        if (!added)
            return make_error(EINVAL, "unveil: " + quote_config_text(it->second) + " and " +
                                          quote_config_text(key) + " name the same path");
        map.paths_[*path] = mode;
    }
    return map;
}

Result<UnveilMap> UnveilMap::parse(std::string_view json_text) {
    auto j = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, false);
    if (j.is_discarded()) return make_error(EINVAL, "unveil: invalid JSON");
    return from_json(j);
}

Mode UnveilMap::mode_for(std::string_view path) const {
    auto norm = normalize_query(path);
    if (!norm || paths_.empty()) return Mode::none;
    // Walk up by whole components, so "/vault/kb" never covers "/vault/kbx".
    std::string_view p = *norm;
    for (;;) {
        auto it = paths_.find(std::string(p));
        if (it != paths_.end()) return it->second;
        if (p == "/") return Mode::none;
        p = parent_of(p);
    }
}

bool UnveilMap::visible(std::string_view dir) const {
    auto norm = normalize_query(dir);
    if (!norm) return false;
    if (*norm == "/" || mode_for(*norm) != Mode::none) return true;
    std::string prefix = *norm + "/";
    auto it = paths_.lower_bound(prefix);
    return it != paths_.end() && has_prefix(it->first, prefix);
}

std::vector<std::string> UnveilMap::visible_children(std::string_view dir) const {
    auto norm = normalize_query(dir);
    if (!norm || mode_for(*norm) != Mode::none) return {};
    std::string prefix = *norm == "/" ? "/" : *norm + "/";
    std::vector<std::string> names;
    for (auto it = paths_.lower_bound(prefix); it != paths_.end() && has_prefix(it->first, prefix);
         ++it) {
        std::string_view rest = std::string_view(it->first).substr(prefix.size());
        names.emplace_back(rest.substr(0, rest.find('/')));
    }
    // Keys sort '-' and '.' before '/', so one child's keys need not be adjacent.
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

UnveilMap UnveilMap::intersect(const UnveilMap& other) const {
    // Both maps are constant between keys of either, so the lower mode at
    // each key of both is the lower mode everywhere. A key where it is none
    // can go: that side covers none of the key's ancestors either.
    UnveilMap both;
    for (const auto* side : {this, &other})
        for (const auto& entry : side->paths_) {
            Mode m = std::min(mode_for(entry.first), other.mode_for(entry.first));
            if (m != Mode::none) both.paths_[entry.first] = m;
        }
    return both;
}

Result<UnveilMap> UnveilMap::narrow(const UnveilMap& pledged) const {
    // Both maps are constant between keys of either, so comparing modes at
    // every key of both finds any path where the pledge would see more. Report
    // the widening that the earliest pledged entry causes.
    std::optional<std::string> blamed;
    std::string message;
    auto widen = [&](const std::string& key, std::string msg) {
        if (!blamed || key < *blamed) {
            blamed = key;
            message = std::move(msg);
        }
    };
    for (const auto& [path, mode] : pledged.paths_) {
        Mode held = mode_for(path);
        if (mode <= held) continue;
        if (held == Mode::none)
            widen(path, "pledge would widen: " + path + " is not unveiled");
        else
            widen(path, "pledge would widen: " + path + " " + std::string(mode_name(mode)) +
                            ", but only " + std::string(mode_name(held)) + " is held");
    }
    for (const auto& [path, held] : paths_) {
        Mode mode = pledged.mode_for(path);
        if (mode <= held) continue;
        std::string_view cause = path;
        while (pledged.paths_.find(std::string(cause)) == pledged.paths_.end())
            cause = parent_of(cause);
        std::string c(cause);
        widen(c, "pledge would widen: " + c + " " + std::string(mode_name(mode)) + " would make " +
                     path + " " + std::string(mode_name(mode)) + ", but only " +
                     std::string(mode_name(held)) + " is held there");
    }
    if (blamed) return make_error(EPERM, message);
    return pledged;
}

nlohmann::json UnveilMap::to_json() const {
    auto j = nlohmann::json::object();
    for (const auto& [path, mode] : paths_) j[path] = std::string(mode_name(mode));
    return j;
}

std::string UnveilMap::to_text() const {
    std::string s;
    for (const auto& [path, mode] : paths_) s += std::string(mode_name(mode)) + " " + path + "\n";
    return s;
}

// Config text ends up in an err file and the log: one readable ASCII line.
std::string quote_config_text(std::string_view s) {
    constexpr size_t kShown = 96;
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (size_t i = 0; i < s.size() && i < kShown; ++i) {
        unsigned char ch = static_cast<unsigned char>(s[i]);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += static_cast<char>(ch);
        } else if (ch < 0x20 || ch >= 0x7f) {
            out += "\\x";
            out += hex[ch >> 4];
            out += hex[ch & 15];
        } else {
            out += static_cast<char>(ch);
        }
    }
    if (s.size() > kShown) out += "...";
    out += '"';
    return out;
}

std::string vault_top_folder(const std::string& path) {
    size_t start = path.find_first_not_of('/');
    if (start == std::string::npos) return "";
    size_t end = path.find('/', start);
    return path.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace swarmfs
