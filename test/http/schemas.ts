// The API's JSON Schemas, read from docs/api.md (each in the ```json block right after
// `<!-- schema: Name -->`) and compiled with ajv (draft 2020-12): the doc is what tests judge by.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

export const API_DOC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'api.md');

/** Name → schema object, in the doc's order. Throws when a marker is not followed by a json block. */
export function readSchemas(text = readFileSync(API_DOC, 'utf8')): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const re = /<!-- schema: (\w+) -->\n```json\n([\s\S]*?)\n```/g;
  const markers = [...text.matchAll(/<!-- schema: (\w+) -->/g)].length;
  for (const m of text.matchAll(re)) out.set(m[1]!, JSON.parse(m[2]!) as Record<string, unknown>);
  assert.equal(out.size, markers, 'every schema marker in docs/api.md is directly followed by a ```json block');
  return out;
}

export type Validate = (name: string, value: unknown) => void;

/** Compile every schema; validate(name, v) fails the test with ajv's errors. */
export function apiValidator(): { validate: Validate; names: string[] } {
  const schemas = readSchemas();
  // ajv's CJS default export under ESM.
  const mod = Ajv2020 as unknown as { default?: typeof Ajv2020.default } & typeof Ajv2020.default;
  const Ctor = mod.default ?? mod;
  const ajv = new Ctor({ allErrors: true, strict: true });
  for (const s of schemas.values()) ajv.addSchema(s);
  for (const s of schemas.values()) assert.ok(ajv.getSchema(s['$id'] as string) !== undefined);
  const ids = new Map([...schemas].map(([n, s]) => [n, s['$id'] as string]));
  return {
    names: [...schemas.keys()],
    validate: (name, value) => {
      const id = ids.get(name);
      assert.ok(id !== undefined, `docs/api.md documents schema ${name}`);
      const v = ajv.getSchema(id)!;
      if (!v(value)) assert.fail(`${name} does not match docs/api.md: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value).slice(0, 2000)}`);
    },
  };
}
