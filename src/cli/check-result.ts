// `kodama check-result`: push a result for a check (a TTL check's heartbeat, or a passive result)
// to the node that owns it: the query `kodama-check-result` filtered to that node, payload a
// CheckResultPush. The node's answer says whether it took it.

import { CHECK_RESULT_QUERY } from '../checks/types.ts';
import type { CheckResultPush, CheckStatus } from '../checks/types.ts';
import { parseDurationMs } from './duration.ts';
import { DEFAULT_QUERY_TIMEOUT_MS, collectAnswers } from './checks.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

const CHECK_NAME = /^[A-Za-z0-9_.-]{1,32}$/;

const help = `Usage: kodama check-result [options]

  Pushes a result for a check to the node running it (query
  "${CHECK_RESULT_QUERY}" filtered to that node) and prints the node's answer.
  TTL checks must receive one at least every TTL, else they go to their
  ttl_status (critical by default).

Options:

  -check=NAME               The check's name (required).
  -status=0..3              Nagios status (required): 0 passing, 1 warning,
                            2 critical, 3 unknown.
  -output=TEXT              The result's output (first line shown by
                            "kodama checks").
  -node=NAME                The node the check runs on (default: the node of
                            the agent at -rpc-addr).
  -timeout=5s               How long to wait for the node's answer.
${RPC_HELP}

Exit status: 0 when the node accepted the result; 1 when it refused it (e.g.
no such check there), did not answer, or on errors.
`;

/**
 * The node's answer: JSON {"ok": true} / {"ok": false, "error": "…"}, or plain text ("ok …"
 * accepted, anything else is the reason for a refusal).
 */
export function interpretAnswer(text: string): { ok: boolean; message: string } {
  const trimmed = text.trim();
  try {
    const v: unknown = JSON.parse(trimmed);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const error = typeof o['error'] === 'string' ? o['error'] : '';
      const ok = typeof o['ok'] === 'boolean' ? o['ok'] : error === '';
      const message = typeof o['message'] === 'string' ? o['message'] : error;
      return { ok, message: message === '' ? trimmed : message };
    }
  } catch {
    // plain text
  }
  const ok = /^ok\b/i.test(trimmed);
  // kodama agents answer "ok" or "error: <why>"
  return { ok, message: ok ? trimmed.replace(/^ok\b[:\s]*/i, '') : trimmed.replace(/^error:\s*/i, '') };
}

export const checkResultCommand = rpcCommand({
  name: 'check-result',
  synopsis: 'Push a result for a (TTL) check',
  help,
  flags: [
    { name: 'check', kind: 'string' },
    { name: 'status', kind: 'string' },
    { name: 'output', kind: 'string' },
    { name: 'node', kind: 'string' },
    { name: 'timeout', kind: 'string' },
  ],
  failure: 'Error pushing the check result',
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const check = f.strings.get('check');
    if (check === undefined) throw usage('-check is required: the name of the check to push a result for.');
    if (!CHECK_NAME.test(check)) throw usage(`Invalid check name "${check}" (1-32 letters, digits, "_", "." or "-")`);
    const s = f.strings.get('status');
    if (s === undefined) throw usage('-status is required: 0 passing, 1 warning, 2 critical, 3 unknown.');
    if (!/^[0-3]$/.test(s)) throw usage(`Invalid -status "${s}": use 0 passing, 1 warning, 2 critical or 3 unknown.`);
    const node = f.strings.get('node');
    if (node === '') throw usage('-node must not be empty');
    const t = f.strings.get('timeout');
    const timeoutMs = t === undefined ? DEFAULT_QUERY_TIMEOUT_MS : parseDurationMs(t);
    if (timeoutMs <= 0) throw usage(`-timeout must be positive, got "${t}"`);
    const push: CheckResultPush = { check, status: Number(s) as CheckStatus, output: f.strings.get('output') ?? '' };
    return { push, node, timeoutMs };
  },
  exec: async (client, o, io) => {
    const node = o.node ?? (await client.stats())['agent']?.['name'];
    if (node === undefined || node === '') {
      io.stderr('The agent did not tell its node name: pass -node.\n');
      return 1;
    }
    const { answers, acks, interrupted } = await collectAnswers(
      client,
      {
        name: CHECK_RESULT_QUERY,
        payload: new TextEncoder().encode(JSON.stringify(o.push)),
        filterNodes: [node],
        filterTags: {},
        requestAck: true,
        relayFactor: 0,
        timeoutMs: o.timeoutMs,
      },
      io,
      // an acknowledged push reached the node: sending it again would record the result twice
      { waitFor: new Set([node]), askAgain: (got, acks) => (got.has(node) || acks.has(node) ? [] : [node]) },
    );
    if (interrupted) return 1;
    const text = answers.get(node);
    if (text === undefined) {
      io.stderr(
        acks.has(node)
          ? `Node ${node} received the result but did not answer: is it a kodama agent with checks configured?\n`
          : `No answer from node ${node}: is it alive and named so? (see "kodama members")\n`,
      );
      return 1;
    }
    const a = interpretAnswer(text);
    if (!a.ok) {
      io.stderr(`Node ${node} refused the result for ${o.push.check}: ${a.message}\n`);
      return 1;
    }
    io.stdout(`Node ${node} accepted ${o.push.check}=${o.push.status}${a.message === '' ? '' : `: ${a.message}`}\n`);
    return 0;
  },
});
