// Validates the OpenAPI document with swagger-parser, then each response given
// against the schema named for it, with ajv (JSON Schema 2020-12, as OpenAPI 3.1).
// Usage: node check.mjs openapi.json samples.json, where samples.json is
// [{"schema": "Done", "body": {...}}, ...]. Prints one JSON line: {"ok", "errors"}.
import { readFileSync } from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [docPath, samplesPath] = process.argv.slice(2);
const errors = [];
const doc = JSON.parse(readFileSync(docPath, "utf8"));
try {
  await SwaggerParser.validate(structuredClone(doc));
} catch (e) {
  errors.push(`document: ${e.message}`);
}
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// The components as one schema, their $refs pointed at it, so they resolve.
const rewrite = (v) => JSON.parse(JSON.stringify(v).replaceAll("#/components/schemas/", "sight#/$defs/"));
ajv.addSchema(rewrite({ $id: "sight", $defs: doc.components.schemas }));
for (const [i, s] of JSON.parse(readFileSync(samplesPath, "utf8")).entries()) {
  const validate = ajv.getSchema(`sight#/$defs/${s.schema}`);
  if (!validate) errors.push(`sample ${i}: no schema ${s.schema}`);
  else if (!validate(s.body)) errors.push(`sample ${i} (${s.schema}): ${ajv.errorsText(validate.errors)}: ${JSON.stringify(s.body).slice(0, 300)}`);
}
console.log(JSON.stringify({ ok: errors.length === 0, errors }));
