// JSON as Go's encoding/json MarshalIndent(v, "", "  ") writes it, so `-format json` output is
// byte-for-byte serf's: map keys sorted, <, > and & escaped as \u003c \u003e \u0026 (Go's HTML-safe
// default), U+2028/U+2029 escaped, nil slices and maps as null, empty ones as [] and {}.

export type GoJson = null | boolean | number | string | GoJson[] | { [key: string]: GoJson };

function str(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function goJson(v: GoJson, indent = ''): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return JSON.stringify(v);
  if (typeof v === 'string') return str(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + goJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v).sort();
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${str(k)}: ${goJson(v[k]!, inner)}`).join(',\n')}\n${indent}}`;
}
