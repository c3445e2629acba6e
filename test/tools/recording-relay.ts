/**
 * A recording relay for the fixture recorder: listens on a Unix socket, forwards every byte
 * both ways unchanged to the real agent, and splits each direction into frames (RFC 9987 §3)
 * so the n-th request on a connection is paired with the n-th reply.
 */
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { AgentClient } from '../../src/client/agent-client';
import { FrameDecoder } from '../../src/protocol/frame';
import type { Request } from '../../src/protocol/messages';
import { waitFor } from '../helpers/proc';

/** One request and the reply the agent gave to it (null: none, the connection closed first). */
export interface Exchange {
  /** Relay connection number, from 1. */
  readonly conn: number;
  /** Arrival order of the request over all connections, from 1. */
  readonly seq: number;
  readonly req: Buffer;
  readonly resp: Buffer | null;
}

interface Connection {
  readonly id: number;
  /** `seq` when the connection was accepted. */
  readonly openedAfter: number;
  readonly reqs: Array<{ readonly seq: number; readonly body: Buffer }>;
  readonly resps: Buffer[];
  closed: boolean;
}

/** Frames of one direction; copies each body, so the recording outlives the socket buffers. */
function frameSink(onFrame: (body: Buffer) => void, onBroken: () => void): (chunk: Buffer) => void {
  const frames = new FrameDecoder();
  return (chunk) => {
    let bodies: Buffer[];
    try {
      bodies = frames.push(chunk);
    } catch {
      onBroken(); // a zero or oversized length: nothing after it can be framed
      return;
    }
    for (const b of bodies) onFrame(Buffer.from(b));
  };
}

export class RecordingRelay {
  private readonly conns: Connection[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  /** Number of requests seen so far: a mark for `settle` / `since`. */
  seq = 0;

  constructor(private readonly upstreamPath: string) {}

  listen(relayPath: string): Promise<void> {
    const server = createServer((client) => this.onClient(client));
    this.server = server;
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(relayPath, () => resolve());
    });
  }

  private onClient(client: Socket): void {
    const conn: Connection = { id: this.conns.length + 1, openedAfter: this.seq, reqs: [], resps: [], closed: false };
    this.conns.push(conn);
    const upstream = connect(this.upstreamPath);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const finish = (): void => {
      conn.closed = true;
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    const fromClient = frameSink((body) => conn.reqs.push({ seq: ++this.seq, body }), finish);
    const fromAgent = frameSink((body) => conn.resps.push(body), finish);
    client.on('data', (d: Buffer) => {
      fromClient(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      fromAgent(d);
      client.write(d);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    for (const s of [client, upstream]) {
      s.on('close', finish);
      s.on('error', finish);
    }
  }

  /** Waits (bounded) until every request after `mark` has its reply or its connection closed. */
  async settle(mark: number, timeoutMs = 5000): Promise<void> {
    await waitFor(
      () => this.conns.every((c) => c.closed || c.reqs.every((r) => r.seq <= mark) || c.resps.length >= c.reqs.length),
      { timeoutMs, intervalMs: 50, what: 'agent replies' },
    );
  }

  /** Every exchange whose request arrived after `mark`, in arrival order. */
  since(mark: number): Exchange[] {
    const out: Exchange[] = [];
    for (const c of this.conns) {
      c.reqs.forEach((r, i) => {
        if (r.seq > mark) out.push({ conn: c.id, seq: r.seq, req: r.body, resp: c.resps[i] ?? null });
      });
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** Connections opened after `mark` on which no request was sent (connect-and-close probes). */
  silentSince(mark: number): number[] {
    return this.conns.filter((c) => c.openedAfter >= mark && c.reqs.length === 0).map((c) => c.id);
  }

  /** Sends hand-built requests on one connection through the relay; waits for every reply. */
  async sendThrough(relayPath: string, requests: readonly Request[], timeoutMs = 10_000): Promise<void> {
    const client = new AgentClient({ socketPath: relayPath, timeoutMs });
    try {
      await Promise.all(requests.map((r) => client.request(r)));
    } finally {
      client.close();
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
