// Real OpenSSH servers for tests: `/usr/sbin/sshd` on 127.0.0.1 ports from this process's slot
// (test/lib/agents.ts freePort), with a host key and an authorized user key the test makes in a
// directory of its own. Logs in as the user running the tests (root in CI).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './agents.ts';

export const SSHD_BIN = '/usr/sbin/sshd';

/** Why sshd-based tests cannot run here, or undefined when they can. */
export function sshUnavailable(): string | undefined {
  for (const bin of [SSHD_BIN, '/usr/bin/ssh', '/usr/bin/ssh-keygen']) {
    if (!existsSync(bin)) return `${bin} is missing (apt-get install -y openssh-server)`;
  }
  return undefined;
}

export interface SshKeys {
  dir: string;
  /** The client's private key (pass to ssh -i). */
  identity: string;
  hostKey: string;
  authorizedKeys: string;
}

/** A host key and a client key pair in `dir`; the client key is the only one authorized. */
export function makeKeys(dir: string): SshKeys {
  const identity = join(dir, 'id_ed25519');
  const hostKey = join(dir, 'host_ed25519');
  for (const k of [identity, hostKey]) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kodama-test', '-f', k], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  const authorizedKeys = join(dir, 'authorized_keys');
  spawnSync('cp', [`${identity}.pub`, authorizedKeys]);
  return { dir, identity, hostKey, authorizedKeys };
}

/** Options every test ssh needs: the test's key, no host-key prompts or records, quiet. */
export function clientOptions(keys: SshKeys): string[] {
  return ['-i', keys.identity, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'IdentitiesOnly=yes'];
}

export interface Sshd {
  port: number;
  stop(): Promise<void>;
  running(): boolean;
}

function startOnce(keys: SshKeys, name: string, port: number): Promise<{ sshd?: Sshd; error?: string }> {
  const config = join(keys.dir, `sshd_${name}.conf`);
  writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${keys.hostKey}`,
      `AuthorizedKeysFile ${keys.authorizedKeys}`,
      'PidFile none',
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  // sshd wants its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true });
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(SSHD_BIN, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let exited = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ error: `sshd did not say it listens within 10 s: ${log}` });
    }, 10_000);
    child.stderr!.on('data', (b: Buffer) => {
      log += b.toString('utf8');
      if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) {
        clearTimeout(timer);
        resolve({
          sshd: {
            port,
            running: () => !exited,
            stop: () =>
              new Promise((done) => {
                if (exited) return done();
                child.once('exit', () => done());
                child.kill('SIGTERM');
              }),
          },
        });
      }
    });
    child.once('exit', (code, sig) => {
      exited = true;
      clearTimeout(timer);
      resolve({ error: `sshd exited (${code ?? sig}): ${log.trim()}` });
    });
  });
}

/** An sshd on a free port of this process's slot; a port taken meanwhile is tried again (3 times). */
export async function startSshd(keys: SshKeys, name: string): Promise<Sshd> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await startOnce(keys, name, await freePort());
    if (r.sshd !== undefined) return r.sshd;
    last = r.error ?? '';
    if (!/Address already in use/.test(last)) break;
  }
  throw new Error(`could not start sshd ${name}: ${last}`);
}
