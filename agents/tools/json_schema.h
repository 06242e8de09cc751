#pragma once
// JSON Schema validation for tool arguments: the subset real tool schemas
// (OpenAI function parameters, MCP inputSchema) use. A call whose arguments
// fail is refused before the tool runs, with a message a model can act on:
//   "/id: expected integer, got string"
//   "missing required property \"message\""
//   "unknown property \"colour\" (allowed: color, size)"
//
// Supported keywords
//   type (object, array, string, number, integer, boolean, null, or a list)
//   properties, required, additionalProperties (bool or schema),
//   patternProperties, minProperties, maxProperties
//   items (schema, or a list for tuples), additionalItems, minItems, maxItems,
//   uniqueItems
//   enum, const
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum (number, or the
//   draft-4 boolean form), multipleOf
//   minLength, maxLength (in code points), pattern (std::regex ECMAScript,
//   unanchored as JSON Schema says)
//   anyOf, oneOf, allOf, not; boolean schemas (true, false)
// Ignored annotations: description, title, default, examples, format,
//   $schema, $id, $comment, $defs, definitions, deprecated, readOnly,
//   writeOnly, contentEncoding, contentMediaType, and any "x-..." key.
// Not supported: $ref (check_schema says "unsupported $ref"), if/then/else,
//   dependencies, propertyNames, contains and any other keyword: check_schema
//   names it, so a schema is never half-checked without anyone knowing.
#include <nlohmann/json.hpp>

#include "vault/result.h"

namespace swarmfs {

// EINVAL with the first error found and the JSON-pointer path of the value
// ("/items/2/name: ..."); the root's errors have no path.
Status validate_json(const nlohmann::json& schema, const nlohmann::json& value);

// Whether validate_json can enforce this schema: well-formed keywords,
// patterns that compile, nothing unsupported. EINVAL naming the place
// ("/properties/id/minimum: must be a number").
Status check_schema(const nlohmann::json& schema);

// The JSON type name of a value as schemas spell it: "integer" for whole
// numbers (1, 1.0), "number" for other numbers.
const char* json_schema_type(const nlohmann::json& value);

}  // namespace swarmfs
