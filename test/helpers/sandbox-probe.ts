/**
 * Run as a service with tsagent.service's sandbox (see test/interop/systemd-user-manager.test.ts):
 * tries what the agent's coming features need from inside it and writes one JSON report.
 * - the peer's /proc entries (POLICY.md §1: exe, cmdline, cgroup, stat);
 * - files in $HOME read-only: a key file, ~/.ssh/known_hosts, ~/.config/tsagent/config.toml;
 * - the audit directory ($XDG_STATE_HOME/tsagent, default ~/.local/state/tsagent) writable;
 * - the D-Bus session bus: connect to it and pass the EXTERNAL authentication;
 * - inotify on the config directory, and running a child program (askpass).
 * Each check records "ok" or the error code, never throws: the test decides.
 *
 * Usage: node sandbox-probe.js REPORT PEER_PID
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, readlinkSync, watch, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

type Outcome = string;

function attempt(fn: () => unknown): Outcome {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/** The unix path of a `unix:path=...` D-Bus address (the only kind a user manager sets). */
function busPath(address: string | undefined, runtimeDir: string | undefined): string | undefined {
  const m = address === undefined ? null : /(?:^|;)unix:(?:[^;]*,)?path=([^,;]+)/.exec(address);
  if (m !== null) return decodeURIComponent(m[1]);
  return runtimeDir === undefined ? undefined : join(runtimeDir, 'bus');
}

/** Connects, sends a NUL and `AUTH EXTERNAL <uid as hex>`, resolves with the first reply line. */
function busAuth(path: string, uid: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve('timeout');
    }, 5000);
    let reply = '';
    sock.on('connect', () => sock.write(`\0AUTH EXTERNAL ${Buffer.from(String(uid)).toString('hex')}\r\n`));
    sock.on('data', (d) => {
      reply += d.toString('latin1');
      if (!reply.includes('\r\n')) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(reply.startsWith('OK ') ? 'ok' : `refused: ${reply.trim()}`);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
}

function watchOnce(dir: string): Outcome {
  return attempt(() => watch(dir).close());
}

async function main(): Promise<void> {
  const [report, peer] = process.argv.slice(2);
  if (report === undefined || peer === undefined) throw new Error('usage: sandbox-probe REPORT PEER_PID');
  const home = process.env.HOME ?? '';
  const stateHome = process.env.XDG_STATE_HOME ?? join(home, '.local', 'state');
  const state = join(stateHome, 'tsagent');
  const uid = process.getuid?.() ?? -1;
  const bus = busPath(process.env.DBUS_SESSION_BUS_ADDRESS, process.env.XDG_RUNTIME_DIR);
  const result = {
    uid,
    auditDir: state,
    procExe: attempt(() => readlinkSync(`/proc/${peer}/exe`)),
    procExeValue: (() => {
      try {
        return readlinkSync(`/proc/${peer}/exe`);
      } catch {
        return null;
      }
    })(),
    procCmdline: attempt(() => readFileSync(`/proc/${peer}/cmdline`)),
    procCgroup: attempt(() => readFileSync(`/proc/${peer}/cgroup`)),
    procStat: attempt(() => readFileSync(`/proc/${peer}/stat`)),
    keyFile: attempt(() => readFileSync(join(home, '.ssh', 'id_probe.pub'))),
    knownHosts: attempt(() => readFileSync(join(home, '.ssh', 'known_hosts'))),
    config: attempt(() => readFileSync(join(home, '.config', 'tsagent', 'config.toml'))),
    homeWrite: attempt(() => writeFileSync(join(home, 'written-by-sandbox'), 'x')),
    auditAppend: attempt(() => {
      mkdirSync(state, { recursive: true, mode: 0o700 });
      appendFileSync(join(state, 'audit.jsonl'), '{"event":"probe"}\n', { mode: 0o600 });
    }),
    inotify: watchOnce(join(home, '.config', 'tsagent')),
    child: attempt(() => {
      const r = spawnSync('/bin/true', [], { timeout: 10_000 });
      if (r.error !== undefined) throw r.error;
      if (r.status !== 0) throw new Error(`exit ${String(r.status)}`);
    }),
    bus: bus === undefined ? 'no address' : await busAuth(bus, uid),
  };
  writeFileSync(report, JSON.stringify(result));
}

main().catch((err: unknown) => {
  process.stderr.write(`sandbox-probe: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
