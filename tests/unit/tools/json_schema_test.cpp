#include "agents/tools/json_schema.h"

#include <gtest/gtest.h>

using namespace swarmfs;
using json = nlohmann::json;

namespace {
// "" when valid, else the message.
std::string why(const json& schema, const json& value) {
    Status st = validate_json(schema, value);
    if (st) return "";
    EXPECT_EQ(st.error().code, EINVAL);
    return st.error().message;
}
std::string schema_why(const json& schema) {
    Status st = check_schema(schema);
    return st ? "" : st.error().message;
}

const json kPerson = json::parse(R"({
  "type": "object",
  "description": "a person",
  "properties": {
    "id": {"type": "integer", "minimum": 1},
    "name": {"type": "string", "minLength": 1, "maxLength": 5},
    "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
    "role": {"enum": ["admin", "user"]},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": true},
    "score": {"type": ["number", "null"], "exclusiveMaximum": 10},
    "address": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"], "additionalProperties": false}
  },
  "required": ["id", "name"],
  "additionalProperties": false
})");
}  // namespace

TEST(JsonSchema, AcceptsAValidValue) {
    EXPECT_EQ(schema_why(kPerson), "");
    EXPECT_EQ(why(kPerson, json::parse(R"({"id": 3, "name": "ann", "email": "a@b", "role": "user",
        "tags": ["x", "y"], "score": null, "address": {"city": "Oslo"}})")),
              "");
    EXPECT_EQ(why(kPerson, {{"id", 3.0}, {"name", "bob"}, {"score", 9.5}}), "");
}

TEST(JsonSchema, ErrorsNameThePathAndTheProblem) {
    EXPECT_EQ(why(kPerson, {{"id", "7"}, {"name", "a"}}), "/id: expected integer, got string");
    EXPECT_EQ(why(kPerson, {{"id", 1.5}, {"name", "a"}}), "/id: expected integer, got number");
    EXPECT_EQ(why(kPerson, {{"name", "a"}}), "missing required property \"id\"");
    EXPECT_EQ(why(kPerson, json::array()), "expected object, got array");
    EXPECT_EQ(why(kPerson, {{"id", 0}, {"name", "a"}}), "/id: must be >= 1, got 0");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", ""}}),
              "/name: must be at least 1 characters long, got 0");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "abcdef"}}),
              "/name: must be at most 5 characters long, got 6");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"email", "nope"}}),
              "/email: does not match pattern \"^[^@]+@[^@]+$\"");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"role", "root"}}),
              "/role: must be one of \"admin\", \"user\"; got \"root\"");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"tags", {"x", 2}}}),
              "/tags/1: expected string, got integer");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"tags", {"x", "y", "z"}}}),
              "/tags: expected at most 2 items, got 3");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"tags", {"x", "x"}}}),
              "/tags: items 0 and 1 are equal; items must be unique");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"score", "high"}}),
              "/score: expected number or null, got string");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"score", 10}}), "/score: must be < 10, got 10");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"colour", "red"}}),
              "unknown property \"colour\" (allowed: address, email, id, name, role, score, tags)");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"address", json::object()}}),
              "/address: missing required property \"city\"");
    EXPECT_EQ(why(kPerson, {{"id", 1}, {"name", "a"}, {"address", {{"city", 1}}}}),
              "/address/city: expected string, got integer");
}

TEST(JsonSchema, LengthCountsCodePointsNotBytes) {
    json s = {{"type", "string"}, {"maxLength", 3}};
    EXPECT_EQ(why(s, "日本語"), "");
    EXPECT_NE(why(s, "日本語x"), "");
}

TEST(JsonSchema, PointerEscapesSlashAndTilde) {
    json s = {{"type", "object"},
              {"properties", {{"a/b", {{"type", "object"}, {"properties", {{"c~d", {{"type", "null"}}}}}}}}}};
    EXPECT_EQ(why(s, {{"a/b", {{"c~d", 1}}}}), "/a~1b/c~0d: expected null, got integer");
}

TEST(JsonSchema, AdditionalPropertiesAsSchemaAndPatternProperties) {
    json s = {{"type", "object"},
              {"properties", {{"n", {{"type", "integer"}}}}},
              {"patternProperties", {{"^x-", {{"type", "string"}}}}},
              {"additionalProperties", {{"type", "boolean"}}}};
    EXPECT_EQ(schema_why(s), "");
    EXPECT_EQ(why(s, {{"n", 1}, {"x-a", "s"}, {"flag", true}}), "");
    EXPECT_EQ(why(s, {{"x-a", 1}}), "/x-a: expected string, got integer");
    EXPECT_EQ(why(s, {{"flag", "yes"}}), "/flag: expected boolean, got string");
    EXPECT_EQ(why({{"type", "object"}, {"additionalProperties", false}}, {{"a", 1}}),
              "unknown property \"a\" (no properties are allowed)");
}

TEST(JsonSchema, NumbersBoundsAndMultiples) {
    EXPECT_EQ(why({{"type", "number"}, {"minimum", 0}, {"maximum", 1}}, 0.5), "");
    EXPECT_EQ(why({{"type", "number"}, {"maximum", 1}}, 1.5), "must be <= 1, got 1.5");
    EXPECT_EQ(why({{"type", "number"}, {"exclusiveMinimum", 0}}, 0), "must be > 0, got 0");
    // draft 4: boolean exclusiveMinimum modifies minimum
    EXPECT_EQ(why({{"minimum", 0}, {"exclusiveMinimum", true}}, 0), "must be > 0, got 0");
    EXPECT_EQ(why({{"multipleOf", 0.1}}, 0.3), "");
    EXPECT_EQ(why({{"multipleOf", 5}}, 7), "must be a multiple of 5, got 7");
    EXPECT_EQ(why({{"type", "integer"}}, 2.0), "");
    EXPECT_EQ(why({{"type", "number"}}, 2), "");
    EXPECT_EQ(why({{"type", "number"}}, true), "expected number, got boolean");
}

TEST(JsonSchema, ConstArraysAndTuples) {
    EXPECT_EQ(why({{"const", "on"}}, "off"), "must be \"on\"; got \"off\"");
    json tuple = {{"type", "array"},
                  {"items", {{{"type", "string"}}, {{"type", "integer"}}}},
                  {"additionalItems", false}};
    EXPECT_EQ(schema_why(tuple), "");
    EXPECT_EQ(why(tuple, {"a", 1}), "");
    EXPECT_EQ(why(tuple, {"a", "b"}), "/1: expected integer, got string");
    EXPECT_EQ(why(tuple, {"a", 1, 2}), "expected at most 2 items, got 3");
    EXPECT_EQ(why({{"type", "array"}, {"minItems", 1}}, json::array()),
              "expected at least 1 items, got 0");
}

TEST(JsonSchema, Combinators) {
    json any = {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}, {"minimum", 0}}}}};
    EXPECT_EQ(why(any, "s"), "");
    EXPECT_EQ(why(any, 3), "");
    EXPECT_EQ(why(any, -1),
              "does not match any alternative of anyOf: [0] expected string, got integer; [1] "
              "must be >= 0, got -1");
    json one = {{"oneOf", {{{"type", "integer"}}, {{"type", "number"}}}}};
    EXPECT_EQ(why(one, 1.5), "");
    EXPECT_EQ(why(one, 1), "matches more than one alternative of oneOf ([0] and [1])");
    json all = {{"allOf", {{{"type", "string"}}, {{"minLength", 2}}}}};
    EXPECT_EQ(why(all, "ab"), "");
    EXPECT_EQ(why(all, "a"), "must be at least 2 characters long, got 1");
    EXPECT_EQ(why({{"not", {{"type", "null"}}}}, nullptr), "must not match the schema in \"not\"");
    EXPECT_EQ(why(true, 1), "");
    EXPECT_EQ(why({{"type", "object"}, {"properties", {{"x", false}}}}, {{"x", 1}}),
              "/x: no value is allowed here");
    EXPECT_EQ(why(json::object(), json::array({1, "x"})), "");
}

TEST(JsonSchema, AnnotationsAreIgnored) {
    json s = json::parse(R"({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "title": "T", "properties": {"url": {"type": "string", "format": "uri", "default": "x",
        "examples": ["a"], "deprecated": true}}, "x-vendor": 1, "$comment": "hi"})");
    EXPECT_EQ(schema_why(s), "");
    EXPECT_EQ(why(s, {{"url", "not a uri, and that is fine"}}), "");
}

TEST(JsonSchema, CheckSchemaRejectsWhatItCannotEnforce) {
    EXPECT_EQ(schema_why({{"type", "object"}, {"properties", {{"x", {{"$ref", "#/$defs/X"}}}}}}),
              "/properties/x: unsupported $ref \"#/$defs/X\" (inline the referenced schema)");
    EXPECT_EQ(schema_why({{"if", json::object()}}), "schema: unsupported keyword \"if\"");
    EXPECT_EQ(schema_why({{"type", "text"}}),
              "/type: must be one of object, array, string, number, integer, boolean, null, or a "
              "list of them; got \"text\"");
    EXPECT_EQ(schema_why({{"properties", {{"n", {{"minimum", "1"}}}}}}),
              "/properties/n/minimum: must be a number");
    EXPECT_EQ(schema_why({{"minLength", -1}}), "/minLength: must be a non-negative integer");
    EXPECT_EQ(schema_why({{"required", "id"}}), "/required: must be an array of property names");
    EXPECT_EQ(schema_why({{"anyOf", json::array()}}), "/anyOf: must be a non-empty array of schemas");
    EXPECT_NE(schema_why({{"pattern", "(unclosed"}}).find("/pattern: invalid regular expression"),
              std::string::npos);
    EXPECT_EQ(schema_why("object"), "schema: a schema must be a JSON object (or true/false)");
    // validate_json never throws on a schema that was not checked.
    Status st = validate_json({{"minLength", "x"}}, "abc");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "invalid schema: /minLength: must be a non-negative integer");
}
