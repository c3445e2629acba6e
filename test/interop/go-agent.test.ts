/**
 * Go's golang.org/x/crypto/ssh/agent client works unchanged against tsagent.
 *
 * test/fixtures/go-agent-client (stdlib + x/crypto/ssh only) is built once, offline, from
 * Debian's packages (golang-go, golang-golang-x-crypto-dev: GO111MODULE=off with
 * GOPATH=/usr/share/gocode). It generates its keys once (ed25519, ECDSA P-256, RSA 2048, an
 * ed25519 user certificate signed by a generated CA), then runs the same scripted conversation
 * against OpenSSH's ssh-agent (the reference) and against the tsagent daemon: list, add with
 * comment/lifetime, add a certificate, Sign / SignWithFlags (rsa-sha2-256/512) with every
 * signature verified in Go, Remove, Lock/Unlock (Sign refused while locked), a 3 s lifetime
 * expiring, the `query` extension, RemoveAll. Both runs must succeed and print the same JSON
 * lines (same fingerprints, and byte-identical ed25519 / RSA signatures), except `query`,
 * which OpenSSH 9.2 does not implement.
 *
 * A missing Go toolchain or x/crypto fails under CI and skips elsewhere (test/helpers/peers.ts).
 */
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentImpl } from '../helpers/daemons';
import { peerMissing, requirePeers } from '../helpers/peers';
import { cleanEnv, removeDir, run, runOk, tempDir } from '../helpers/proc';

const SRC = resolve(__dirname, '../../../test/fixtures/go-agent-client');
const GOPATH = '/usr/share/gocode';
const XCRYPTO_HINT = 'apt-get install -y --no-install-recommends golang-golang-x-crypto-dev';
const BUILD_TIMEOUT_MS = 180_000;
const RUN_TIMEOUT_MS = 90_000;

/** One JSON line of the Go client's output. */
type Line = Record<string, unknown> & { step: string };

/** Builds the Go client into `work`; undefined (after skip / throw) when x/crypto is missing. */
async function buildClient(t: TestContext, goBin: string, work: string): Promise<string | undefined> {
  const out = join(work, 'go-agent-client');
  const env = cleanEnv({
    HOME: work,
    GOPATH,
    GO111MODULE: 'off',
    GOCACHE: join(work, 'gocache'),
    GOTMPDIR: work,
    GOPROXY: 'off',
    GOFLAGS: '',
    CGO_ENABLED: '0',
  });
  const r = await run(goBin, ['build', '-o', out, '.'], { cwd: SRC, env, timeoutMs: BUILD_TIMEOUT_MS });
  if (r.code === 0) return out;
  if (/cannot find package "golang\.org\/x\/crypto/.test(r.stderr)) {
    // go build said exactly that x/crypto is missing: a missing peer, not a build failure.
    return peerMissing(t, `golang.org/x/crypto under ${GOPATH}`, XCRYPTO_HINT);
  }
  throw new Error(`go build failed (code ${r.code}, signal ${r.signal}):\n${r.stderr.slice(-4000)}`);
}

function parseLines(stdout: string, impl: AgentImpl): Line[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const v: unknown = JSON.parse(l);
      assert.ok(typeof v === 'object' && v !== null && typeof (v as Line).step === 'string', `${impl}: not a step line: ${l}`);
      return v as Line;
    });
}

/** Starts `impl`, runs the scripted conversation against it, stops it; the parsed lines. */
async function converse(impl: AgentImpl, bin: string, keys: string, work: string): Promise<{ lines: Line[]; ms: number }> {
  const daemon = await startAgentDaemon(impl);
  try {
    const t0 = Date.now();
    const r = await run(bin, ['-keys', keys, 'script'], {
      env: cleanEnv({ HOME: work, SSH_AUTH_SOCK: daemon.socketPath }),
      timeoutMs: RUN_TIMEOUT_MS,
    });
    const ms = Date.now() - t0;
    assert.equal(
      r.code,
      0,
      `Go client against ${impl} failed (code ${r.code}, signal ${r.signal}):\nstderr: ${r.stderr}\nstdout: ${r.stdout.slice(-3000)}\nagent stderr: ${daemon.stderr().slice(-3000)}`,
    );
    assert.ok(daemon.child.exitCode === null && daemon.child.signalCode === null, `${impl} died during the conversation`);
    return { lines: parseLines(r.stdout, impl), ms };
  } finally {
    await daemon.stop();
  }
}

const step = (lines: readonly Line[], name: string): Line => {
  const found = lines.filter((l) => l.step === name);
  assert.equal(found.length, 1, `expected exactly one "${name}" line, got ${found.length}`);
  return found[0];
};

test('Go x/crypto/ssh/agent client: tsagent behaves like OpenSSH ssh-agent', { timeout: 300_000 }, async (t) => {
  const peers = requirePeers(t, ['go', 'ssh-agent']);
  if (peers === undefined) return;
  const work = await tempDir('tsagent-go-');
  t.after(() => removeDir(work));

  const tb = Date.now();
  const bin = await buildClient(t, peers.go, work);
  if (bin === undefined) return;
  const buildMs = Date.now() - tb;

  const keys = join(work, 'keys.json');
  await runOk(bin, ['-keys', keys, 'genkeys'], { env: cleanEnv({ HOME: work }), timeoutMs: 60_000 });

  const ref = await converse('openssh', bin, keys, work);
  const ours = await converse('tsagent', bin, keys, work);
  t.diagnostic(`go build ${buildMs} ms; conversation: OpenSSH ${ref.ms} ms, tsagent ${ours.ms} ms`);

  // The whole script ran (it exits non-zero on anything unexpected, checked in converse()).
  const steps = ours.lines.map((l) => l.step);
  for (const s of [
    'add-ed25519',
    'add-ecdsa',
    'add-rsa',
    'add-cert',
    'list-after-add',
    'sign-ed25519',
    'sign-ecdsa',
    'sign-cert',
    'sign-rsa',
    'sign-rsa-sha256',
    'sign-rsa-sha512',
    'sign-unknown-key',
    'remove-ecdsa',
    'lock',
    'sign-while-locked',
    'unlock',
    'sign-after-unlock',
    'lifetime-expired',
    'query',
    'list-after-removeall',
    'done',
  ]) {
    assert.ok(steps.includes(s), `step ${s} missing from the tsagent run: ${steps.join(', ')}`);
  }

  // What Go sees after the adds, stated explicitly (not only "same as OpenSSH").
  const listed = step(ours.lines, 'list-after-add').keys as Array<Record<string, unknown>>;
  assert.deepEqual(
    listed.map(({ label, type, comment, bits }) => ({ label, type, comment, bits })),
    [
      { label: 'ed25519', type: 'ssh-ed25519', comment: 'go-ed25519', bits: 256 },
      { label: 'ecdsa', type: 'ecdsa-sha2-nistp256', comment: 'go-ecdsa-p256', bits: 256 },
      { label: 'rsa', type: 'ssh-rsa', comment: 'go-rsa-2048', bits: 2048 },
      { label: 'cert', type: 'ssh-ed25519-cert-v01@openssh.com', comment: 'go-ed25519-cert', bits: 256 },
    ],
  );
  for (const [name, format] of [
    ['sign-rsa', 'ssh-rsa'],
    ['sign-rsa-sha256', 'rsa-sha2-256'],
    ['sign-rsa-sha512', 'rsa-sha2-512'],
  ] as const) {
    assert.equal(step(ours.lines, name).format, format, name);
  }
  assert.equal(step(ours.lines, 'sign-while-locked').ok, false);

  // Same observable results as OpenSSH, line by line (fingerprints, comments, order, which
  // requests fail and how Go reports it, ed25519/RSA signature bytes), query aside.
  const noQuery = (ls: readonly Line[]): Line[] => ls.filter((l) => l.step !== 'query');
  assert.deepEqual(noQuery(ours.lines), noQuery(ref.lines));

  // query: tsagent answers it; OpenSSH 9.2 answers "unsupported" (newer ones may list names).
  const q = step(ours.lines, 'query');
  assert.equal(q.supported, true, `tsagent query: ${JSON.stringify(q)}`);
  assert.equal(q.replyType, 29);
  assert.deepEqual([...(q.names as string[])].sort(), ['query', 'session-bind@openssh.com']);
  const rq = step(ref.lines, 'query');
  t.diagnostic(`OpenSSH query: ${JSON.stringify(rq)}; tsagent query: ${JSON.stringify(q)}`);
});
