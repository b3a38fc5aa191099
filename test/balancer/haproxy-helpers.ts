// Shared by the HAProxy driver tests.
export const HAPROXY = '/usr/sbin/haproxy';

/**
 * A free port for an HAProxy frontend: from this process's port slot (test/lib/agents.ts), below
 * the kernel's ephemeral range (32768+). Port 0 would hand out a port that, in the moment before
 * HAProxy binds it, another test (or a client socket) may get as well — and HAProxy binds with
 * SO_REUSEPORT, so both would silently share it; no other test process hands out a slot's ports.
 */
export { freePort as freeFrontendPort } from '../lib/agents.ts';
