/**
 * A black-box fuzzer for the REAL daemon (`tsagent start -D`), through its socket: several
 * raw connections pipeline random frames and frames mutated from the recorded fixtures
 * (test/fixtures/messages/req-*.bin), now and then broken framing (which must close only
 * that connection); meanwhile a control client checks, throughout, that the agent still
 * lists its control key and signs with it (signature verified). A daemon that dies is
 * counted as a crash and restarted. Reports frames sent, replies, crashes, control checks
 * and the agent's RSS.
 *
 * Run briefly by `npm test` (test/fuzz/fuzz.test.ts) and at length by `npm run fuzz`
 * (test/fuzz/run.ts, >= 1 M frames).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { AgentClient } from '../../src/client/agent-client';
import { privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import { verifySignature } from '../../src/keys/verify';
import { decodeRequest } from '../../src/protocol/codec';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { publicBlobOf } from '../helpers/keys';

const FIXTURES = resolve(__dirname, '../../../test/fixtures/messages');
/** Frames a fuzz connection keeps outstanding (the agent's own cap is higher). */
const PIPELINE = 16;
const CONNECTIONS = 4;
/** One frame in this many is broken framing (zero or oversized length). */
const BROKEN_EVERY = 5000;
/** A control check after this many frames. */
const CHECK_EVERY = 2000;
const CONTROL_TIMEOUT_MS = 20_000;

export interface FuzzOptions {
  /** Stop after this many frames... */
  readonly frames: number;
  /** ...or after this long, whichever is first. */
  readonly maxSeconds: number;
  readonly onProgress?: (r: FuzzReport) => void;
}

export interface FuzzReport {
  frames: number;
  replies: number;
  brokenFraming: number;
  crashes: number;
  controlChecks: number;
  controlFailures: string[];
  rssStartMb: number;
  rssPeakMb: number;
  rssEndMb: number;
  seconds: number;
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function loadFixtures(): Buffer[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.startsWith('req-') && f.endsWith('.bin'))
    .sort()
    .map((f) => readFileSync(join(FIXTURES, f)));
}

const int = (n: number): number => Math.floor(Math.random() * n);

/** A body: random, a fixture as recorded, or a fixture mutated in one of several ways. */
function makeBody(fixtures: readonly Buffer[]): Buffer {
  const pick = int(10);
  if (pick === 0) return randomBytes(1 + int(64));
  if (pick === 1) {
    const b = randomBytes(1 + int(300));
    b[0] = int(2) === 0 ? 1 + int(30) : b[0]; // often a real message type
    return b;
  }
  const base = fixtures[int(fixtures.length)];
  if (pick === 2) return Buffer.from(base);
  const b = Buffer.from(base);
  const edits = 1 + int(4);
  for (let e = 0; e < edits; e++) {
    switch (int(6)) {
      case 0: // flip a bit
        b[int(b.length)] ^= 1 << int(8);
        break;
      case 1: // an interesting byte
        b[int(b.length)] = [0, 0xff, 0x7f, 0x80, 1][int(5)]!;
        break;
      case 2: // an interesting uint32 (a length field, probably)
        if (b.length >= 5) b.writeUInt32BE([0, 1, 0xffffffff, 0x7fffffff, b.length, 256 * 1024][int(6)], int(b.length - 3));
        break;
      default:
        break;
    }
  }
  switch (int(4)) {
    case 0:
      return b.subarray(0, 1 + int(b.length)); // truncated
    case 1:
      return Buffer.concat([b, randomBytes(1 + int(16))]); // trailing bytes
    case 2: {
      const other = fixtures[int(fixtures.length)]; // spliced with another message
      return Buffer.concat([b.subarray(0, 1 + int(b.length)), other.subarray(int(other.length))]);
    }
    default:
      return b;
  }
}

/**
 * Well-formed requests that would change the agent for everyone in a way the control
 * client cannot undo (lock with an unknown passphrase) or that remove the control key are
 * not sent: they test nothing the other suites do not, and would blind the control checks.
 */
function disruptive(body: Buffer, controlBlob: Buffer): boolean {
  try {
    const req = decodeRequest(body);
    if (req.type === 'lock' || req.type === 'remove-all-identities') return true;
    if (req.type === 'remove-identity' && req.keyBlob.equals(controlBlob)) return true;
    return false;
  } catch {
    return false;
  }
}

function framed(body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

function brokenFrame(): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(int(2) === 0 ? 0 : 256 * 1024 + 1 + int(1 << 20));
  return head;
}

/** One fuzz connection: keeps PIPELINE frames outstanding, counts replies by their framing. */
class FuzzConn {
  private outstanding = 0;
  private pending: Buffer = Buffer.alloc(0);
  closed = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly sock: Socket,
    private readonly onReply: () => void,
  ) {
    sock.on('data', (d: Buffer) => {
      this.pending = this.pending.length === 0 ? d : Buffer.concat([this.pending, d]);
      while (this.pending.length >= 4) {
        const len = this.pending.readUInt32BE(0);
        if (this.pending.length < 4 + len) break;
        this.pending = this.pending.subarray(4 + len);
        this.outstanding--;
        this.onReply();
      }
      this.kick();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.kick();
    });
  }

  static open(path: string, onReply: () => void): Promise<FuzzConn> {
    return new Promise((resolvePromise, reject) => {
      const sock = connect(path);
      sock.once('connect', () => resolvePromise(new FuzzConn(sock, onReply)));
      sock.once('error', reject);
    });
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Waits (bounded) until another frame may be sent; false when the connection is gone. */
  async ready(): Promise<boolean> {
    while (!this.closed && this.outstanding >= PIPELINE) {
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 1000).unref();
      });
    }
    return !this.closed;
  }

  send(frame: Buffer, expectReply: boolean): void {
    if (expectReply) this.outstanding++;
    this.sock.write(frame);
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const fixtures = loadFixtures();
  const start = Date.now();
  const deadline = start + opts.maxSeconds * 1000;
  const report: FuzzReport = {
    frames: 0,
    replies: 0,
    brokenFraming: 0,
    crashes: 0,
    controlChecks: 0,
    controlFailures: [],
    rssStartMb: 0,
    rssPeakMb: 0,
    rssEndMb: 0,
    seconds: 0,
  };
  const controlKey = privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey);
  const controlBlob = publicBlobOf(controlKey);

  let agent: AgentDaemon = await startAgentDaemon('tsagent', { env: { SSH_ASKPASS_REQUIRE: 'never' } });
  let control = new AgentClient({ socketPath: agent.socketPath, timeoutMs: CONTROL_TIMEOUT_MS });
  await control.add({ key: controlKey, comment: 'control' });
  report.rssStartMb = rssMb(agent.child.pid);
  let nextCheck = CHECK_EVERY;

  let restarting: Promise<boolean> | undefined;
  const restartIfDead = (): Promise<boolean> => {
    restarting ??= restart().finally(() => (restarting = undefined));
    return restarting;
  };
  const restart = async (): Promise<boolean> => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) return false;
    report.crashes++;
    report.controlFailures.push(
      `daemon died (${agent.child.signalCode ?? agent.child.exitCode}): ${agent.stderr().slice(-2000)}`,
    );
    control.close();
    await agent.stop();
    agent = await startAgentDaemon('tsagent', { env: { SSH_ASKPASS_REQUIRE: 'never' } });
    control = new AgentClient({ socketPath: agent.socketPath, timeoutMs: CONTROL_TIMEOUT_MS });
    await control.add({ key: controlKey, comment: 'control' });
    return true;
  };

  const check = async (): Promise<void> => {
    report.controlChecks++;
    try {
      let ids = await control.list();
      if (!ids.some((id) => id.blob.equals(controlBlob))) {
        // A fuzzed remove can take it (a mutated blob may match); put it back and go on.
        await control.add({ key: controlKey, comment: 'control' });
        ids = await control.list();
      }
      if (!ids.some((id) => id.blob.equals(controlBlob))) throw new Error('control key missing after re-adding it');
      const data = randomBytes(32);
      const sig = await control.sign(controlBlob, data);
      if (!verifySignature(controlBlob, data, sig)) throw new Error('control signature does not verify');
    } catch (err) {
      if (await restartIfDead()) return;
      report.controlFailures.push(`control check ${report.controlChecks}: ${(err as Error).message}`);
    }
    report.rssPeakMb = Math.max(report.rssPeakMb, rssMb(agent.child.pid));
  };

  const worker = async (): Promise<void> => {
    let conn: FuzzConn | undefined;
    while (report.frames < opts.frames && Date.now() < deadline && report.controlFailures.length < 10) {
      if (conn === undefined || conn.closed) {
        conn?.destroy();
        try {
          conn = await FuzzConn.open(agent.socketPath, () => report.replies++);
        } catch {
          await restartIfDead();
          conn = undefined;
          continue;
        }
      }
      if (!(await conn.ready())) continue;
      if (++report.frames % BROKEN_EVERY === 0) {
        report.brokenFraming++;
        conn.send(brokenFrame(), false);
        await conn.ready();
        conn.destroy(); // the agent closes it; do not wait on a half-open socket
        conn = undefined;
        continue;
      }
      let body = makeBody(fixtures);
      while (disruptive(body, controlBlob)) body = makeBody(fixtures);
      conn.send(framed(body), true);
      if (report.frames >= nextCheck) {
        nextCheck += CHECK_EVERY;
        await check();
        opts.onProgress?.(report);
      }
    }
    conn?.destroy();
  };

  try {
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
    await check();
    report.rssEndMb = rssMb(agent.child.pid);
    report.rssPeakMb = Math.max(report.rssPeakMb, report.rssEndMb);
  } finally {
    control.close();
    await agent.stop();
  }
  report.seconds = (Date.now() - start) / 1000;
  return report;
}
