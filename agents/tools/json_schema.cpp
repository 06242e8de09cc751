#include "agents/tools/json_schema.h"

// GCC 12's <regex> trips -Wmaybe-uninitialized inside std::function under
// -fsanitize (a libstdc++ false positive, GCC bug 105562); keep builds quiet.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>

namespace swarmfs {

namespace {
using json = nlohmann::json;

// One failure: where (JSON pointer) and what.
struct Fail {
    std::string path, msg;
};
using Outcome = std::optional<Fail>;

std::string escape_pointer(const std::string& key) {
    std::string out;
    for (char c : key) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}
std::string child(const std::string& path, const std::string& key) {
    return path + "/" + escape_pointer(key);
}
std::string child(const std::string& path, size_t index) {
    return path + "/" + std::to_string(index);
}

std::string render(const Fail& f) { return f.path.empty() ? f.msg : f.path + ": " + f.msg; }

// A value as it appears in a message: JSON, cut short.
std::string show(const json& v) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

bool is_integral(const json& v) {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
}

bool has_type(const json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    if (t == "number") return v.is_number();
    if (t == "integer") return is_integral(v);
    return false;
}

size_t code_points(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

std::string join_keys(const json& obj, size_t limit = 12) {
    std::string out;
    size_t n = 0;
    for (auto& [k, v] : obj.items()) {
        if (n++ == limit) return out + ", ...";
        out += (out.empty() ? "" : ", ") + k;
    }
    return out;
}

Outcome check(const json& s, const json& v, const std::string& path);

Outcome check_type(const json& s, const json& v, const std::string& path) {
    auto it = s.find("type");
    if (it == s.end()) return std::nullopt;
    std::vector<std::string> types;
    if (it->is_string())
        types.push_back(it->get<std::string>());
    else
        for (auto& t : *it) types.push_back(t.get<std::string>());
    for (auto& t : types)
        if (has_type(v, t)) return std::nullopt;
    std::string want;
    for (size_t i = 0; i < types.size(); ++i)
        want += (i == 0 ? "" : i + 1 == types.size() ? " or " : ", ") + types[i];
    return Fail{path, "expected " + want + ", got " + json_schema_type(v)};
}

Outcome check_values(const json& s, const json& v, const std::string& path) {
    if (auto it = s.find("enum"); it != s.end()) {
        bool found = false;
        for (auto& e : *it) found = found || e == v;
        if (!found) {
            std::string list;
            size_t n = 0;
            for (auto& e : *it) {
                if (n++ == 12) {
                    list += ", ...";
                    break;
                }
                list += (list.empty() ? "" : ", ") + show(e);
            }
            return Fail{path, "must be one of " + list + "; got " + show(v)};
        }
    }
    if (auto it = s.find("const"); it != s.end() && *it != v)
        return Fail{path, "must be " + show(*it) + "; got " + show(v)};
    return std::nullopt;
}

Outcome check_number(const json& s, const json& v, const std::string& path) {
    double x = v.get<double>();
    auto bound = [&](const char* key, const char* exclusive_key, bool lower) -> Outcome {
        auto it = s.find(key);
        auto ex = s.find(exclusive_key);
        bool exclusive = ex != s.end() && ex->is_boolean() && ex->get<bool>();  // draft 4
        if (it != s.end()) {
            double b = it->get<double>();
            bool bad = lower ? (exclusive ? x <= b : x < b) : (exclusive ? x >= b : x > b);
            if (bad)
                return Fail{path, std::string("must be ") + (lower ? ">" : "<") +
                                      (exclusive ? "" : "=") + " " + it->dump() + ", got " +
                                      v.dump()};
        }
        if (ex != s.end() && ex->is_number()) {  // draft 6 and later
            double b = ex->get<double>();
            if (lower ? x <= b : x >= b)
                return Fail{path, std::string("must be ") + (lower ? "> " : "< ") + ex->dump() +
                                      ", got " + v.dump()};
        }
        return std::nullopt;
    };
    if (auto f = bound("minimum", "exclusiveMinimum", true)) return f;
    if (auto f = bound("maximum", "exclusiveMaximum", false)) return f;
    if (auto it = s.find("multipleOf"); it != s.end()) {
        double m = it->get<double>();
        double q = x / m;
        if (std::fabs(q - std::round(q)) > 1e-9 * std::max(1.0, std::fabs(q)))
            return Fail{path, "must be a multiple of " + it->dump() + ", got " + v.dump()};
    }
    return std::nullopt;
}

Outcome check_string(const json& s, const json& v, const std::string& path) {
    const auto& str = v.get_ref<const std::string&>();
    size_t len = code_points(str);
    if (auto it = s.find("minLength"); it != s.end() && len < it->get<size_t>())
        return Fail{path, "must be at least " + it->dump() + " characters long, got " +
                              std::to_string(len)};
    if (auto it = s.find("maxLength"); it != s.end() && len > it->get<size_t>())
        return Fail{
            path, "must be at most " + it->dump() + " characters long, got " + std::to_string(len)};
    if (auto it = s.find("pattern"); it != s.end()) {
        const auto& p = it->get_ref<const std::string&>();
        bool matched = false;
        try {
            matched = std::regex_search(str, std::regex(p, std::regex::ECMAScript));
        } catch (const std::regex_error&) {
            return Fail{path, "pattern " + show(*it) + " could not be evaluated"};
        }
        if (!matched) return Fail{path, "does not match pattern " + show(*it)};
    }
    return std::nullopt;
}

Outcome check_array(const json& s, const json& v, const std::string& path) {
    if (auto it = s.find("minItems"); it != s.end() && v.size() < it->get<size_t>())
        return Fail{path,
                    "expected at least " + it->dump() + " items, got " + std::to_string(v.size())};
    if (auto it = s.find("maxItems"); it != s.end() && v.size() > it->get<size_t>())
        return Fail{path,
                    "expected at most " + it->dump() + " items, got " + std::to_string(v.size())};
    if (auto it = s.find("uniqueItems"); it != s.end() && it->get<bool>()) {
        for (size_t i = 0; i < v.size(); ++i)
            for (size_t j = i + 1; j < v.size(); ++j)
                if (v[i] == v[j])
                    return Fail{path, "items " + std::to_string(i) + " and " + std::to_string(j) +
                                          " are equal; items must be unique"};
    }
    auto items = s.find("items");
    if (items == s.end()) return std::nullopt;
    if (items->is_array()) {  // a tuple
        for (size_t i = 0; i < v.size(); ++i) {
            if (i < items->size()) {
                if (auto f = check((*items)[i], v[i], child(path, i))) return f;
                continue;
            }
            auto extra = s.find("additionalItems");
            if (extra == s.end()) break;
            if (extra->is_boolean() && !extra->get<bool>())
                return Fail{path, "expected at most " + std::to_string(items->size()) +
                                      " items, got " + std::to_string(v.size())};
            if (auto f = check(*extra, v[i], child(path, i))) return f;
        }
        return std::nullopt;
    }
    for (size_t i = 0; i < v.size(); ++i)
        if (auto f = check(*items, v[i], child(path, i))) return f;
    return std::nullopt;
}

Outcome check_object(const json& s, const json& v, const std::string& path) {
    if (auto it = s.find("required"); it != s.end()) {
        for (auto& r : *it)
            if (!v.contains(r.get<std::string>()))
                return Fail{path, "missing required property \"" + r.get<std::string>() + "\""};
    }
    if (auto it = s.find("minProperties"); it != s.end() && v.size() < it->get<size_t>())
        return Fail{path, "expected at least " + it->dump() + " properties, got " +
                              std::to_string(v.size())};
    if (auto it = s.find("maxProperties"); it != s.end() && v.size() > it->get<size_t>())
        return Fail{path, "expected at most " + it->dump() + " properties, got " +
                              std::to_string(v.size())};
    static const json empty = json::object();
    auto pit = s.find("properties");
    const json& props = pit != s.end() ? *pit : empty;
    auto ppit = s.find("patternProperties");
    auto additional = s.find("additionalProperties");
    for (auto& [key, value] : v.items()) {
        bool matched = false;
        if (auto p = props.find(key); p != props.end()) {
            matched = true;
            if (auto f = check(*p, value, child(path, key))) return f;
        }
        if (ppit != s.end()) {
            for (auto& [pattern, sub] : ppit->items()) {
                bool hit = false;
                try {
                    hit = std::regex_search(key, std::regex(pattern, std::regex::ECMAScript));
                } catch (const std::regex_error&) {
                }
                if (!hit) continue;
                matched = true;
                if (auto f = check(sub, value, child(path, key))) return f;
            }
        }
        if (matched || additional == s.end()) continue;
        if (additional->is_boolean()) {
            if (additional->get<bool>()) continue;
            return Fail{path, "unknown property \"" + key + "\"" +
                                  (props.empty() ? std::string(" (no properties are allowed)")
                                                 : " (allowed: " + join_keys(props) + ")")};
        }
        if (auto f = check(*additional, value, child(path, key))) return f;
    }
    return std::nullopt;
}

Outcome check_combinators(const json& s, const json& v, const std::string& path) {
    if (auto it = s.find("allOf"); it != s.end())
        for (auto& sub : *it)
            if (auto f = check(sub, v, path)) return f;
    auto alternatives = [&](const char* key, bool exactly_one) -> Outcome {
        auto it = s.find(key);
        if (it == s.end()) return std::nullopt;
        std::vector<size_t> matches;
        std::string why;
        for (size_t i = 0; i < it->size(); ++i) {
            if (auto f = check((*it)[i], v, path)) {
                why += (why.empty() ? "" : "; ") + ("[" + std::to_string(i) + "] " + render(*f));
            } else {
                matches.push_back(i);
                if (!exactly_one) return std::nullopt;
            }
        }
        if (matches.empty())
            return Fail{path, std::string("does not match any alternative of ") + key + ": " + why};
        if (matches.size() > 1)
            return Fail{path, std::string("matches more than one alternative of ") + key + " ([" +
                                  std::to_string(matches[0]) + "] and [" +
                                  std::to_string(matches[1]) + "])"};
        return std::nullopt;
    };
    if (auto f = alternatives("anyOf", false)) return f;
    if (auto f = alternatives("oneOf", true)) return f;
    if (auto it = s.find("not"); it != s.end() && !check(*it, v, path))
        return Fail{path, "must not match the schema in \"not\""};
    return std::nullopt;
}

// Assumes s passed check_schema: keyword values have their types.
Outcome check(const json& s, const json& v, const std::string& path) {
    if (s.is_boolean()) {
        if (s.get<bool>()) return std::nullopt;
        return Fail{path, "no value is allowed here"};
    }
    if (auto f = check_type(s, v, path)) return f;
    if (auto f = check_values(s, v, path)) return f;
    Outcome f;
    if (v.is_number())
        f = check_number(s, v, path);
    else if (v.is_string())
        f = check_string(s, v, path);
    else if (v.is_array())
        f = check_array(s, v, path);
    else if (v.is_object())
        f = check_object(s, v, path);
    if (f) return f;
    return check_combinators(s, v, path);
}

// ---- checking schemas ----

using KeywordCheck = std::function<std::optional<std::string>(const json&, const std::string&)>;
std::optional<std::string> schema_error(const json& s, const std::string& path);

std::optional<std::string> sub_schema(const json& v, const std::string& path) {
    return schema_error(v, path);
}
std::optional<std::string> schema_list(const json& v, const std::string& path) {
    if (!v.is_array() || v.empty()) return path + ": must be a non-empty array of schemas";
    for (size_t i = 0; i < v.size(); ++i)
        if (auto e = schema_error(v[i], child(path, i))) return e;
    return std::nullopt;
}
std::optional<std::string> number(const json& v, const std::string& path) {
    if (!v.is_number()) return path + ": must be a number";
    return std::nullopt;
}
std::optional<std::string> count(const json& v, const std::string& path) {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
        return path + ": must be a non-negative integer";
    return std::nullopt;
}
std::optional<std::string> regex_ok(const std::string& p, const std::string& path) {
    try {
        std::regex r(p, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        return path + ": invalid regular expression " + show(p) + ": " + e.what();
    }
    return std::nullopt;
}

const std::map<std::string, KeywordCheck>& keywords() {
    static const std::set<std::string> types = {"object",  "array",   "string", "number",
                                                "integer", "boolean", "null"};
    static const std::map<std::string, KeywordCheck> table = {
        {"type",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             auto known = [&](const json& t) {
                 return t.is_string() && types.count(t.get<std::string>()) > 0;
             };
             if (known(v)) return std::nullopt;
             if (v.is_array() && !v.empty()) {
                 bool all = true;
                 for (auto& t : v) all = all && known(t);
                 if (all) return std::nullopt;
             }
             return path +
                    ": must be one of object, array, string, number, integer, boolean, "
                    "null, or a list of them; got " +
                    show(v);
         }},
        {"properties",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (!v.is_object()) return path + ": must be an object of schemas";
             for (auto& [k, sub] : v.items())
                 if (auto e = schema_error(sub, child(path, k))) return e;
             return std::nullopt;
         }},
        {"patternProperties",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (!v.is_object()) return path + ": must be an object of schemas";
             for (auto& [k, sub] : v.items()) {
                 if (auto e = regex_ok(k, child(path, k))) return e;
                 if (auto e = schema_error(sub, child(path, k))) return e;
             }
             return std::nullopt;
         }},
        {"required",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             bool ok = v.is_array();
             if (ok)
                 for (auto& r : v) ok = ok && r.is_string();
             if (!ok) return path + ": must be an array of property names";
             return std::nullopt;
         }},
        {"additionalProperties", sub_schema},
        {"additionalItems", sub_schema},
        {"not", sub_schema},
        {"items",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (v.is_array()) {
                 for (size_t i = 0; i < v.size(); ++i)
                     if (auto e = schema_error(v[i], child(path, i))) return e;
                 return std::nullopt;
             }
             return schema_error(v, path);
         }},
        {"enum",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (!v.is_array() || v.empty()) return path + ": must be a non-empty array";
             return std::nullopt;
         }},
        {"const", [](const json&, const std::string&) { return std::optional<std::string>(); }},
        {"minimum", number},
        {"maximum", number},
        {"exclusiveMinimum",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (v.is_boolean()) return std::nullopt;
             return number(v, path);
         }},
        {"exclusiveMaximum",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (v.is_boolean()) return std::nullopt;
             return number(v, path);
         }},
        {"multipleOf",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (!v.is_number() || v.get<double>() <= 0) return path + ": must be a number > 0";
             return std::nullopt;
         }},
        {"minLength", count},
        {"maxLength", count},
        {"minItems", count},
        {"maxItems", count},
        {"minProperties", count},
        {"maxProperties", count},
        {"uniqueItems",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (!v.is_boolean()) return path + ": must be true or false";
             return std::nullopt;
         }},
        {"pattern",
         [](const json& v, const std::string& path) -> std::optional<std::string> {
             if (!v.is_string()) return path + ": must be a string";
             return regex_ok(v.get<std::string>(), path);
         }},
        {"anyOf", schema_list},
        {"oneOf", schema_list},
        {"allOf", schema_list},
    };
    return table;
}

const std::set<std::string>& annotations() {
    static const std::set<std::string> set = {
        "description", "title",    "default",   "examples",        "format",
        "$schema",     "$id",      "$comment",  "$defs",           "definitions",
        "deprecated",  "readOnly", "writeOnly", "contentEncoding", "contentMediaType"};
    return set;
}

std::optional<std::string> schema_error(const json& s, const std::string& path) {
    std::string where = path.empty() ? "schema" : path;
    if (s.is_boolean()) return std::nullopt;
    if (!s.is_object()) return where + ": a schema must be a JSON object (or true/false)";
    for (auto& [key, value] : s.items()) {
        if (key == "$ref")
            return where + ": unsupported $ref " + show(value) + " (inline the referenced schema)";
        if (annotations().count(key) || key.rfind("x-", 0) == 0) continue;
        auto it = keywords().find(key);
        if (it == keywords().end()) return where + ": unsupported keyword \"" + key + "\"";
        if (auto e = it->second(value, child(path, key))) return e;
    }
    return std::nullopt;
}
}  // namespace

const char* json_schema_type(const nlohmann::json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "boolean";
        case json::value_t::string:
            return "string";
        case json::value_t::array:
            return "array";
        case json::value_t::object:
            return "object";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "integer";
        case json::value_t::number_float:
            return is_integral(v) ? "integer" : "number";
        default:
            return "binary";
    }
}

Status validate_json(const nlohmann::json& schema, const nlohmann::json& value) {
    // The checker trusts keyword types; an unchecked schema is checked first.
    if (auto e = schema_error(schema, "")) return make_error(EINVAL, "invalid schema: " + *e);
    if (auto f = check(schema, value, "")) return make_error(EINVAL, render(*f));
    return {};
}

Status check_schema(const nlohmann::json& schema) {
    if (auto e = schema_error(schema, "")) return make_error(EINVAL, *e);
    return {};
}

}  // namespace swarmfs
