// Structure as the code states it: no import circle among src/ files (type imports and dynamic
// imports included). agent.ts reaches its subsystems only through src/agent/subsystems.ts and
// they reach it only through src/agent/host.ts; a circle means a layer reached back up.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

function graph(): Map<string, string[]> {
  const files = sources(SRC);
  const known = new Set(files);
  const g = new Map<string, string[]>();
  for (const f of files) {
    const deps = new Set<string>();
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT_RE)) {
      const target = normalize(join(dirname(f), m[1] ?? m[2]!));
      if (known.has(target)) deps.add(target);
    }
    g.set(f, [...deps]);
  }
  return g;
}

/** Strongly connected components with more than one file (or a file importing itself): Tarjan's. */
function circles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.map((f) => relative(SRC, f)).sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('no import circle among src/ files (type and dynamic imports included)', () => {
  const g = graph();
  assert.ok(g.size > 100, `read ${g.size} source files`);
  assert.ok((g.get(join(SRC, 'agent', 'agent.ts')) ?? []).length > 10, 'imports of agent.ts were read');
  const found = circles(g);
  assert.deepEqual(found, [], `import circles (each: files that reach each other):\n${found.map((c) => '  ' + c.join(' ↔ ')).join('\n')}`);
});

test('the checker sees a circle when there is one', () => {
  const a = join(SRC, 'x', 'a.ts');
  const b = join(SRC, 'x', 'b.ts');
  assert.deepEqual(circles(new Map([[a, [b]], [b, [a]]])), [['x/a.ts', 'x/b.ts']]);
  assert.deepEqual(circles(new Map([[a, [b]], [b, []]])), []);
});

test('a plain agent reaches its subsystems only through dynamic imports in subsystems.ts', () => {
  const text = readFileSync(join(SRC, 'agent', 'agent.ts'), 'utf8');
  const valueImports = [...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+'(\.\.\/(?:discovery|checks|deploy|exec|http|balancer)\/[^']+)'/gm)].map((m) => m[1]);
  assert.deepEqual(valueImports, [], 'agent.ts imports a subsystem module at load time');
});
