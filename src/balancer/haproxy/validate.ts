// `haproxy -c -f <candidate>`: HAProxy's own verdict on a config before it replaces the live
// one. Note (verified on 2.6): `-c` parses everything but binds nothing, so an address that
// cannot be bound passes here and only fails at reload — master.ts catches that case.
import { execFile } from 'node:child_process';
import { HaproxyError } from './errors.ts';

/** Resolves when HAProxy accepts the file; rejects ERR_HAPROXY_CONFIG with HAProxy's alerts. */
export function validateConfig(binary: string, path: string, timeoutMs = 10_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    execFile(binary, ['-c', '-f', path], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err === null) {
        resolve();
        return;
      }
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      if (e.code === 'ENOENT') {
        reject(new HaproxyError('ERR_HAPROXY_SPAWN', `cannot run ${binary} to validate the config: not found`));
        return;
      }
      reject(new HaproxyError('ERR_HAPROXY_CONFIG', `HAProxy rejected ${path}: ${haproxyComplaints(`${stderr}\n${stdout}`)}`));
    });
  });
}

/** The ALERT lines of HAProxy's output (else its first lines), without the "[ALERT] (pid) :" prefix. */
export function haproxyComplaints(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const alerts = lines.filter((l) => l.startsWith('[ALERT]'));
  const pick = (alerts.length > 0 ? alerts : lines).slice(0, 5);
  const text = pick.map((l) => l.replace(/^\[[A-Z]+\]\s*\(\d+\)\s*:\s*/, '')).join('; ');
  return text === '' ? 'no output (exit status non-zero)' : text;
}
