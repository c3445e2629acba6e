/**
 * The load generator: speaks the agent protocol itself with the project's codec
 * (encodeRequestFrame / FrameDecoder / decodeResponse). Closed loop: N connections, each
 * with exactly one request in flight; the next request leaves as soon as the reply is in.
 * Per-request latency is taken with process.hrtime.bigint(). A warm-up period is not
 * recorded; the measured window runs for a fixed duration (extended, within a cap, until a
 * minimum number of replies has been seen).
 *
 * Every reply is checked cheaply (type byte, identity count); a sample is fully decoded and,
 * for signatures, verified against the public key, so an agent that answers wrongly fails
 * the run instead of winning it.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { verifySignature } from '../src/keys/verify';
import { decodeResponse, encodeRequestFrame } from '../src/protocol/codec';
import { FrameDecoder } from '../src/protocol/frame';
import { MSG } from '../src/protocol/messages';
import type { Identity } from '../src/protocol/messages';
import { cpuTimeMs } from './procs';

export interface Workload {
  readonly name: string;
  /** Request frames, used in turn (sign data differs per request, so nothing can be cached). */
  readonly frames: readonly Buffer[];
  /** Cheap check of every reply body; throws on a wrong answer. */
  quickCheck(body: Buffer): void;
  /** Full decode (and signature verification) of a sampled reply to frames[index]. */
  fullCheck(body: Buffer, index: number): void;
}

export class WrongAnswerError extends Error {
  override readonly name = 'WrongAnswerError';
}

// ---------------------------------------------------------------------------------------
// workloads

/** REQUEST_IDENTITIES; the reply must list exactly `expected` (blobs and comments, in order). */
export function listWorkload(expected: readonly Identity[]): Workload {
  const frame = encodeRequestFrame({ type: 'request-identities' });
  const n = expected.length;
  return {
    name: `list ${n}`,
    frames: [frame],
    quickCheck(body) {
      if (body[0] !== MSG.IDENTITIES_ANSWER || body.length < 5 || body.readUInt32BE(1) !== n) {
        throw new WrongAnswerError(`list: expected IDENTITIES_ANSWER with ${n} keys, got type ${body[0]} (${body.length} bytes)`);
      }
    },
    fullCheck(body) {
      const r = decodeResponse(body, { maxIdentities: 2048 });
      if (r.type !== 'identities' || r.identities.length !== n) throw new WrongAnswerError('list: wrong reply');
      for (let i = 0; i < n; i++) {
        const got = r.identities[i];
        const want = expected[i];
        if (!got.blob.equals(want.blob) || got.comment !== want.comment)
          throw new WrongAnswerError(`list: identity ${i} differs`);
      }
    },
  };
}

/** SIGN_REQUEST for `keyBlob`, one request per data blob in turn; replies must verify as `algorithm`. */
export function signWorkload(
  name: string,
  keyBlob: Buffer,
  flags: number,
  algorithm: string,
  datas: readonly Buffer[],
): Workload {
  const frames = datas.map((data) => encodeRequestFrame({ type: 'sign', keyBlob, data, flags }));
  return {
    name,
    frames,
    quickCheck(body) {
      if (body[0] !== MSG.SIGN_RESPONSE) throw new WrongAnswerError(`${name}: expected SIGN_RESPONSE, got type ${body[0]}`);
    },
    fullCheck(body, index) {
      const r = decodeResponse(body);
      if (r.type !== 'sign-response') throw new WrongAnswerError(`${name}: wrong reply type ${r.type}`);
      if (!verifySignature(keyBlob, datas[index], r.signature, [algorithm])) {
        throw new WrongAnswerError(`${name}: signature does not verify as ${algorithm}`);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// statistics

export interface LoadResult {
  readonly ops: number;
  readonly elapsedMs: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  /** CPU the load generator (this process) used in the measured window. */
  readonly clientCpuMs: number;
  /** CPU the agent used in the measured window (all threads; /proc, 10 ms ticks). */
  readonly agentCpuMs: number | undefined;
  /** The system (kernel) part of agentCpuMs. */
  readonly agentSysMs: number | undefined;
  /** agentCpuMs / ops, in µs. */
  readonly agentCpuUsPerOp: number | undefined;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

function summarize(
  latNs: number[],
  elapsedNs: bigint,
  clientCpuMs: number,
  agent: { user: number; sys: number } | undefined,
): LoadResult {
  const agentCpuMs = agent === undefined ? undefined : agent.user + agent.sys;
  const sorted = Float64Array.from(latNs).sort();
  const elapsedMs = Number(elapsedNs) / 1e6;
  let sum = 0;
  for (const v of sorted) sum += v;
  const ops = sorted.length;
  return {
    ops,
    elapsedMs,
    opsPerSec: ops / (elapsedMs / 1000),
    p50Ms: percentile(sorted, 50) / 1e6,
    p90Ms: percentile(sorted, 90) / 1e6,
    p99Ms: percentile(sorted, 99) / 1e6,
    maxMs: ops > 0 ? sorted[ops - 1] / 1e6 : NaN,
    meanMs: ops > 0 ? sum / ops / 1e6 : NaN,
    clientCpuMs,
    agentCpuMs,
    agentSysMs: agent?.sys,
    agentCpuUsPerOp: agentCpuMs === undefined || ops === 0 ? undefined : (agentCpuMs * 1000) / ops,
  };
}

// ---------------------------------------------------------------------------------------
// the closed loop

export interface LoadOptions {
  readonly socketPath: string;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Keep measuring past durationMs until this many replies (bounded by maxDurationMs). */
  readonly minOps: number;
  readonly maxDurationMs: number;
  /** Connect, send one request, read the reply, close — per request (connection churn). */
  readonly churn?: boolean;
  /** The agent's PID, to read its CPU time over the measured window. */
  readonly agentPid?: number;
  /** Give up (and fail) if the run is not finished this long after it should have. */
  readonly stallMs?: number;
  /**
   * A request sent once at the start of every connection, answered with SUCCESS, before the
   * workload (the policy-on run's session-bind@openssh.com). With churn it is written together
   * with the request and counts in the latency, as `ssh` pays it on each connection.
   */
  readonly preamble?: Buffer;
}

/**
 * Phases shared by all connections: 0 warm-up (not recorded), 1 measured, 2 stopping
 * (no new requests; finish when nothing is in flight).
 */
class Phases {
  phase: 0 | 1 | 2 = 0;
  tStart = 0n;
  tStop = 0n;
  readonly latNs: number[] = [];
  private cpuClient0: NodeJS.CpuUsage | undefined;
  private cpuAgent0: { user: number; sys: number } | undefined;
  clientCpuMs = 0;
  agentCpu: { user: number; sys: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: LoadOptions,
    private readonly onStop: () => void,
  ) {}

  begin(): void {
    this.timer = setTimeout(() => this.startMeasuring(), this.o.warmupMs);
  }

  private readAgentCpu(): { user: number; sys: number } | undefined {
    if (this.o.agentPid === undefined) return undefined;
    try {
      return cpuTimeMs(this.o.agentPid);
    } catch {
      return undefined;
    }
  }

  private startMeasuring(): void {
    this.phase = 1;
    this.cpuAgent0 = this.readAgentCpu();
    this.cpuClient0 = process.cpuUsage();
    this.tStart = process.hrtime.bigint();
    this.timer = setTimeout(() => this.maybeStop(), this.o.durationMs);
  }

  private maybeStop(): void {
    const elapsedMs = Number(process.hrtime.bigint() - this.tStart) / 1e6;
    if (this.latNs.length < this.o.minOps && elapsedMs < this.o.maxDurationMs) {
      this.timer = setTimeout(() => this.maybeStop(), 10);
      return;
    }
    this.tStop = process.hrtime.bigint();
    this.phase = 2;
    const c = process.cpuUsage(this.cpuClient0);
    this.clientCpuMs = (c.user + c.system) / 1000;
    const a0 = this.cpuAgent0;
    const a1 = this.readAgentCpu();
    this.agentCpu = a1 !== undefined && a0 !== undefined ? { user: a1.user - a0.user, sys: a1.sys - a0.sys } : undefined;
    this.onStop();
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  result(): LoadResult {
    return summarize(this.latNs, this.tStop - this.tStart, this.clientCpuMs, this.agentCpu);
  }
}

/** Connects, bounded: an agent that never accepts fails the run instead of hanging it. */
function openConnection(path: string, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`connect to ${path}: no answer in ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', fail);
      resolve(s);
    });
    s.once('error', fail);
  });
}

/** Sends the preamble and waits (bounded) for its SUCCESS reply. */
function sendPreamble(s: Socket, frame: Buffer, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder();
    const done = (err?: Error): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', done);
      s.off('close', onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onClose = (): void => done(new Error('the agent closed the connection after the preamble'));
    const onData = (chunk: Buffer): void => {
      let bodies: Buffer[];
      try {
        bodies = decoder.push(chunk);
      } catch (e) {
        return done(e as Error);
      }
      if (bodies.length === 0) return;
      if (bodies.length > 1 || bodies[0][0] !== MSG.SUCCESS) {
        return done(new WrongAnswerError(`preamble answered with type ${bodies[0][0]}, not SUCCESS`));
      }
      done();
    };
    const timer = setTimeout(() => done(new Error(`no reply to the preamble in ${timeoutMs} ms`)), timeoutMs);
    s.on('data', onData);
    s.once('error', done);
    s.once('close', onClose);
    s.write(frame);
  });
}

/** How often a reply is fully decoded / verified: the first on each connection, then 1 in N. */
const FULL_CHECK_EVERY = 512;

/** Runs the workload against the socket and returns throughput and latency. */
export async function runLoad(w: Workload, o: LoadOptions): Promise<LoadResult> {
  return o.churn ? runChurn(w, o) : runPersistent(w, o);
}

async function runPersistent(w: Workload, o: LoadOptions): Promise<LoadResult> {
  const socks: Socket[] = [];
  try {
    for (let i = 0; i < o.concurrency; i++) {
      const s = await openConnection(o.socketPath);
      socks.push(s);
      if (o.preamble !== undefined) await sendPreamble(s, o.preamble);
    }
  } catch (e) {
    for (const s of socks) s.destroy();
    throw e;
  }
  const frames = w.frames;
  return new Promise<LoadResult>((resolve, reject) => {
    let inFlight = 0;
    let settled = false;
    let stallTimer: NodeJS.Timeout | undefined;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      phases.cancel();
      if (stallTimer !== undefined) clearTimeout(stallTimer);
      for (const s of socks) s.destroy();
      if (err !== undefined) reject(err);
      else resolve(phases.result());
    };
    const phases = new Phases(o, () => {
      if (inFlight === 0) return finish();
      stallTimer = setTimeout(
        () => finish(new Error(`${w.name}: ${inFlight} requests unanswered ${o.stallMs ?? 30_000} ms after the end`)),
        o.stallMs ?? 30_000,
      );
    });

    phases.begin();
    socks.forEach((sock, i) => {
      const decoder = new FrameDecoder();
      let index = (i * 7) % frames.length;
      let sentAt = 0n;
      let replies = 0;
      let waiting = false;
      const send = (): void => {
        index = index + 1 === frames.length ? 0 : index + 1;
        waiting = true;
        inFlight++;
        sentAt = process.hrtime.bigint();
        sock.write(frames[index]);
      };
      sock.on('data', (chunk: Buffer) => {
        const now = process.hrtime.bigint();
        if (settled) return;
        let bodies: Buffer[];
        try {
          bodies = decoder.push(chunk);
        } catch (e) {
          finish(e as Error);
          return;
        }
        if (bodies.length === 0) return;
        if (bodies.length > 1 || !waiting) {
          finish(new WrongAnswerError(`${w.name}: more replies than requests`));
          return;
        }
        const body = bodies[0];
        waiting = false;
        inFlight--;
        try {
          w.quickCheck(body);
          if (replies++ % FULL_CHECK_EVERY === 0) w.fullCheck(body, index);
        } catch (e) {
          finish(e as Error);
          return;
        }
        if (phases.phase === 1) phases.latNs.push(Number(now - sentAt));
        if (phases.phase < 2) send();
        else if (inFlight === 0) finish();
      });
      sock.on('error', (e) => finish(new Error(`${w.name}: connection error: ${e.message}`)));
      sock.on('close', () => {
        if (!settled) finish(new Error(`${w.name}: the agent closed a connection`));
      });
      send(); // every connection starts with exactly one request in flight
    });
  });
}

async function runChurn(w: Workload, o: LoadOptions): Promise<LoadResult> {
  const frame = o.preamble === undefined ? w.frames[0] : Buffer.concat([o.preamble, w.frames[0]]);
  const replies = o.preamble === undefined ? 1 : 2;
  return new Promise<LoadResult>((resolve, reject) => {
    let active = 0;
    let settled = false;
    let stallTimer: NodeJS.Timeout | undefined;
    const open = new Set<Socket>();
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      phases.cancel();
      if (stallTimer !== undefined) clearTimeout(stallTimer);
      for (const s of open) s.destroy();
      if (err !== undefined) reject(err);
      else resolve(phases.result());
    };
    const phases = new Phases(o, () => {
      if (active === 0) return finish();
      stallTimer = setTimeout(
        () => finish(new Error(`${w.name}: ${active} connections unanswered after the end`)),
        o.stallMs ?? 30_000,
      );
    });
    let count = 0;
    const once = (): void => {
      active++;
      const n = count++;
      const t0 = process.hrtime.bigint();
      const decoder = new FrameDecoder();
      const sock = connect(o.socketPath);
      open.add(sock);
      let answered = false;
      const got: Buffer[] = [];
      sock.once('connect', () => sock.write(frame));
      sock.on('data', (chunk: Buffer) => {
        const now = process.hrtime.bigint();
        if (settled || answered) return;
        let bodies: Buffer[];
        try {
          bodies = decoder.push(chunk);
        } catch (e) {
          finish(e as Error);
          return;
        }
        got.push(...bodies);
        if (got.length < replies) return;
        answered = true;
        try {
          if (got.length > replies) throw new WrongAnswerError(`${w.name}: more replies than requests`);
          if (replies === 2 && got[0][0] !== MSG.SUCCESS) {
            throw new WrongAnswerError(`${w.name}: preamble answered with type ${got[0][0]}, not SUCCESS`);
          }
          const body = got[replies - 1];
          w.quickCheck(body);
          if (n % FULL_CHECK_EVERY === 0) w.fullCheck(body, 0);
        } catch (e) {
          finish(e as Error);
          return;
        }
        sock.destroy();
        open.delete(sock);
        active--;
        if (phases.phase === 1) phases.latNs.push(Number(now - t0));
        if (phases.phase < 2) once();
        else if (active === 0) finish();
      });
      sock.on('error', (e) => finish(new Error(`${w.name}: connection error: ${e.message}`)));
      sock.on('close', () => {
        if (!answered && !settled) finish(new Error(`${w.name}: the agent closed the connection before answering`));
      });
    };
    phases.begin();
    for (let i = 0; i < o.concurrency; i++) once();
  });
}
