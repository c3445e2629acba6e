/**
 * An SSH server built with the `ssh2` npm package for forwarding tests: 127.0.0.1, an
 * ephemeral port, a host key made fresh by the real ssh-keygen, publickey logins for the
 * given keys only (signatures verified), sessions that accept agent forwarding and hand
 * every exec request to the test.
 *
 * `openAuthAgentChannel(conn)` opens the server → client `auth-agent@openssh.com` channel.
 * ssh2 1.17's Protocol has the message (`openssh_authAgent`), but its server-side
 * `openChannel()` only knows x11 / forwarded-tcpip / forwarded-streamlocal, so the helper
 * does what openChannel does for the other types: reserve a channel id, send the open, and
 * receive the Channel (or the open failure) through the callback ssh2 calls on the reply.
 */
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { Server, utils } from 'ssh2';
import type { Connection, ParsedKey, ServerChannel } from 'ssh2';
import { generateKey } from './keys';

/** ssh2's lib/Channel.js MAX_WINDOW and PACKET_SIZE (what openChannel offers). */
const WINDOW = 2 * 1024 * 1024;
const PACKET = 32 * 1024;

type OpenCallback = ((err: Error | undefined, channel: Duplex) => void) & { type?: string };

/** The two ssh2 internals the channel opener needs (not in @types/ssh2). */
interface Ssh2ConnectionInternals {
  readonly _chanMgr: { add(cb: OpenCallback): number };
  readonly _protocol: { openssh_authAgent(chan: number, window: number, packetSize: number): void };
}

export function openAuthAgentChannel(conn: Connection, timeoutMs = 10_000): Promise<Duplex> {
  const internals = conn as unknown as Ssh2ConnectionInternals;
  return new Promise<Duplex>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('auth-agent channel did not open in time')), timeoutMs);
    const cb: OpenCallback = (err, channel) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(channel);
    };
    cb.type = 'auth-agent@openssh.com';
    const id = internals._chanMgr.add(cb);
    if (id === -1) {
      clearTimeout(timer);
      reject(new Error('no free channel ids'));
      return;
    }
    internals._protocol.openssh_authAgent(id, WINDOW, PACKET);
  });
}

export interface ExecRequest {
  readonly conn: Connection;
  readonly stream: ServerChannel;
  readonly command: string;
  /** The session asked for agent forwarding (auth-agent-req@openssh.com) before the exec. */
  readonly agentForwarding: boolean;
}

export interface Ssh2TestServer {
  readonly port: number;
  /** The host key's public line, for known_hosts / hostVerifier. */
  readonly hostKeyLine: string;
  readonly hostKeyBlob: Buffer;
  /** Key blobs of every successful (signed) publickey login, in order. */
  readonly logins: Buffer[];
  /** The next exec request (already accepted), bounded. */
  nextExec(timeoutMs?: number): Promise<ExecRequest>;
  close(): Promise<void>;
}

function parsePublic(line: string): ParsedKey {
  const k = utils.parseKey(line);
  if (k instanceof Error) throw k;
  if (Array.isArray(k)) throw new Error('one key per line');
  return k;
}

export async function startSsh2Server(dir: string, authorizedLines: readonly string[]): Promise<Ssh2TestServer> {
  const host = await generateKey(dir, 'ed25519', 'ssh2-test-host', { name: 'ssh2_host_key' });
  const allowed = authorizedLines.map(parsePublic);
  const logins: Buffer[] = [];
  const execs: ExecRequest[] = [];
  const waiters: Array<(e: ExecRequest) => void> = [];
  const conns = new Set<Connection>();

  const server = new Server({ hostKeys: [readFileSync(host.privatePath)] }, (conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => undefined);
    conn.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const key = allowed.find((k) => k.getPublicSSH().equals(ctx.key.data));
      if (key === undefined) return ctx.reject(['publickey']);
      if (ctx.signature === undefined || ctx.blob === undefined) return ctx.accept(); // key check only
      if (key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      logins.push(Buffer.from(ctx.key.data));
      return ctx.accept();
    });
    conn.on('ready', () => {
      conn.on('session', (acceptSession) => {
        const session = acceptSession();
        let agentForwarding = false;
        session.on('auth-agent', (accept) => {
          agentForwarding = true;
          accept?.();
        });
        session.on('env', (accept) => accept?.());
        session.on('exec', (accept, _reject, info) => {
          const req: ExecRequest = { conn, stream: accept(), command: info.command, agentForwarding };
          const w = waiters.shift();
          if (w !== undefined) w(req);
          else execs.push(req);
        });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('ssh2 server has no TCP address');

  return {
    port: addr.port,
    hostKeyLine: host.publicLine,
    hostKeyBlob: host.blob,
    logins,
    nextExec: (timeoutMs = 15_000) =>
      new Promise<ExecRequest>((resolve, reject) => {
        const ready = execs.shift();
        if (ready !== undefined) return resolve(ready);
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(got), 1);
          reject(new Error(`no exec request within ${timeoutMs} ms`));
        }, timeoutMs);
        const got = (e: ExecRequest): void => {
          clearTimeout(timer);
          resolve(e);
        };
        waiters.push(got);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.end();
        // Bounded: a client that never lets go does not hold the test up past 5 s.
        const timer = setTimeout(resolve, 5000);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
