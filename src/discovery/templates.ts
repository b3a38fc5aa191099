// consul-template style rendering for the balancer role: whenever a balanced service's backend
// set changes, render each configured mustache template with the current sets, write the
// destination atomically (only when the text changed) and then run the template's command.
//
// The context a template sees (documented in README/ARCHITECTURE by the lead):
//   { node: "<balancer node name>", generated_at: "<ISO 8601 time of this render>",
//     services: [ { name, mode: "http"|"tcp", bind: { host, port },
//                   backends: [ { id, host, port, weight, state: "ready"|"drain",
//                                 ready: bool, draining: bool } ] } ] }
// Values are inserted as is (no HTML escaping: these are config files, not web pages).
//
// Per template: changes within `debounceMs` of the first one are rendered once, with the latest
// sets. The template file is read at every render, so fixing a broken template on disk is
// picked up at the next change. A template that cannot be read or rendered is logged as an
// error and the destination stays as it was; so does a failed write.

import { spawn } from 'node:child_process';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import Mustache from 'mustache';
import type { Backend, ServiceProtocol, TemplateSpec } from './types.ts';

export type LogFn = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string) => void;

export interface TemplateBackend {
  id: string;
  host: string;
  port: number;
  weight: number;
  state: Backend['state'];
  ready: boolean;
  draining: boolean;
}

export interface TemplateService {
  name: string;
  mode: ServiceProtocol;
  bind: { host: string; port: number };
  backends: TemplateBackend[];
}

export interface TemplateContext {
  node: string;
  generated_at: string;
  services: TemplateService[];
}

export interface TemplateRunnerOptions {
  log?: LogFn;
  /** Kill a template command after this long (default 30 s). */
  commandTimeoutMs?: number;
}

export interface TemplateRunner {
  /** The backend sets changed: render every template (debounced) with these. */
  update(node: string, services: readonly TemplateService[]): void;
  /** Resolves when no render or command is pending or running (tests, shutdown). */
  idle(): Promise<void>;
  counters(): Record<string, number>;
  /** Cancel pending renders and wait for a running one. */
  stop(): Promise<void>;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/** Command output kept for the log line; the rest is cut (a chatty reload script). */
const MAX_OUTPUT_CHARS = 2000;

export function templateBackend(b: Backend): TemplateBackend {
  return { id: b.id, host: b.host, port: b.port, weight: b.weight, state: b.state, ready: b.state === 'ready', draining: b.state === 'drain' };
}

/** Render one template text; throws (mustache's parse error) on a broken template. */
export function renderTemplate(text: string, ctx: TemplateContext): string {
  return Mustache.render(text, ctx, undefined, { escape: (v: unknown) => String(v) });
}

/** Run `sh -c command`, bounded by timeoutMs; never rejects. */
export function runCommand(command: string, timeoutMs: number): Promise<{ code: number | null; signal: string | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    // Own process group, so a timeout kills the whole pipeline the command started.
    const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const add = (d: Buffer): void => {
      if (output.length < MAX_OUTPUT_CHARS) output += d.toString('utf8');
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, output: e.message, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: output.slice(0, MAX_OUTPUT_CHARS).trim(), timedOut });
    });
  });
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Write via a temporary file in the same directory and rename: readers never see half a file. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.kodama-tmp-${process.pid}`;
  try {
    await writeFile(tmp, text, 'utf8');
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export function startTemplates(specs: readonly TemplateSpec[], opts: TemplateRunnerOptions = {}): TemplateRunner {
  const log: LogFn = opts.log ?? (() => undefined);
  const commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const counters = { template_renders: 0, template_writes: 0, template_unchanged: 0, template_commands: 0, template_command_failures: 0, template_errors: 0 };
  let latest: { node: string; services: readonly TemplateService[] } | undefined;
  let stopped = false;

  interface Slot {
    spec: TemplateSpec;
    timer: NodeJS.Timeout | undefined;
    running: Promise<void> | undefined;
    /** A change arrived while rendering: render again afterwards. */
    again: boolean;
  }
  const slots: Slot[] = specs.map((spec) => ({ spec, timer: undefined, running: undefined, again: false }));

  async function render(slot: Slot): Promise<void> {
    const { spec } = slot;
    const cur = latest;
    if (cur === undefined) return;
    counters.template_renders++;
    let text: string;
    try {
      const source = await readFile(spec.source, 'utf8');
      text = renderTemplate(source, { node: cur.node, generated_at: new Date().toISOString(), services: cur.services.map((s) => ({ ...s })) });
    } catch (e) {
      counters.template_errors++;
      log('ERR', `templates: ${spec.source}: cannot render: ${(e as Error).message}; ${spec.destination} left as it was (fix the template; it is read again at the next change)`);
      return;
    }
    if ((await readOrUndefined(spec.destination)) === text) {
      counters.template_unchanged++;
      return;
    }
    try {
      await writeAtomic(spec.destination, text);
    } catch (e) {
      counters.template_errors++;
      log('ERR', `templates: cannot write ${spec.destination}: ${(e as Error).message}`);
      return;
    }
    counters.template_writes++;
    log('INFO', `templates: rendered ${spec.source} → ${spec.destination}`);
    if (spec.command === undefined || stopped) return;
    counters.template_commands++;
    const r = await runCommand(spec.command, commandTimeoutMs);
    const out = r.output === '' ? '' : `: ${r.output}`;
    if (r.code === 0) {
      log('INFO', `templates: ${spec.destination}: command \`${spec.command}\` ok${out}`);
    } else {
      counters.template_command_failures++;
      const how = r.timedOut ? `killed after ${commandTimeoutMs} ms` : r.code === null ? `failed (${r.signal ?? 'could not start'})` : `exited ${r.code}`;
      log('WARN', `templates: ${spec.destination}: command \`${spec.command}\` ${how}${out}`);
    }
  }

  function run(slot: Slot): void {
    slot.timer = undefined;
    if (stopped) return;
    if (slot.running !== undefined) {
      slot.again = true;
      return;
    }
    slot.running = render(slot)
      .catch((e: unknown) => {
        counters.template_errors++;
        log('ERR', `templates: ${slot.spec.source}: ${(e as Error).message}`);
      })
      .finally(() => {
        slot.running = undefined;
        if (slot.again && !stopped) {
          slot.again = false;
          schedule(slot);
        }
      });
  }

  function schedule(slot: Slot): void {
    // Debounce from the first change of a burst: a steady stream of changes still renders
    // every debounceMs instead of starving.
    if (slot.timer !== undefined) return;
    slot.timer = setTimeout(() => run(slot), slot.spec.debounceMs);
  }

  return {
    update(node, services) {
      if (stopped) return;
      latest = { node, services: services.map((s) => ({ ...s, bind: { ...s.bind }, backends: s.backends.map((b) => ({ ...b })) })) };
      for (const slot of slots) schedule(slot);
    },
    async idle() {
      for (let i = 0; i < 100; i++) {
        const busy = slots.filter((s) => s.timer !== undefined || s.running !== undefined);
        if (busy.length === 0) return;
        await Promise.all(busy.map((s) => s.running ?? new Promise((r) => setTimeout(r, Math.min(50, s.spec.debounceMs + 1)))));
      }
    },
    counters: () => ({ ...counters }),
    async stop() {
      stopped = true;
      for (const s of slots) {
        if (s.timer !== undefined) clearTimeout(s.timer);
        s.timer = undefined;
      }
      await Promise.all(slots.map((s) => s.running));
    },
  };
}
