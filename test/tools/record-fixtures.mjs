#!/usr/bin/env node
// Record golden byte fixtures of real ssh-agent protocol traffic.
//
// Starts OpenSSH's reference agent (`ssh-agent -D -a <tmp>/upstream.sock`, clean
// environment), puts a recording relay in front of it on <tmp>/relay.sock and drives the
// real ssh-add / ssh-keygen / ssh (and a few hand-built requests) through the relay.
// Every request body and its reply body (without the 4-byte length prefix, so the first
// byte is the message type) is written to test/fixtures/messages/{req,resp}-<name>.bin,
// together with test/fixtures/messages/manifest.json.
//
// Plain Node ESM, no dependencies, does not need the project build:
//     node test/tools/record-fixtures.mjs
//
// All keys are throwaway test keys generated fresh in a temporary directory; the script
// never prints key material. Every spawned process is tracked and killed by its PID at the
// end (and on error), every wait is bounded, and only 127.0.0.1 is used.

import net from 'node:net';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT_DIR = path.resolve(HERE, '..', 'fixtures', 'messages');
const VERBOSE = process.argv.includes('-v') || process.argv.includes('--verbose');
const SKIP_SSHD = process.argv.includes('--no-sshd');

const SSH_ADD = 'ssh-add';
const SSH_AGENT = 'ssh-agent';
const SSH_KEYGEN = 'ssh-keygen';
const SSH = 'ssh';
const SSHD = fs.existsSync('/usr/sbin/sshd') ? '/usr/sbin/sshd' : null;
const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------------------------------
// Message numbers
const MSG = {
  1: 'SSH_AGENTC_REQUEST_RSA_IDENTITIES (legacy)',
  5: 'SSH_AGENT_FAILURE',
  6: 'SSH_AGENT_SUCCESS',
  9: 'SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES (legacy)',
  11: 'SSH2_AGENTC_REQUEST_IDENTITIES',
  12: 'SSH2_AGENT_IDENTITIES_ANSWER',
  13: 'SSH2_AGENTC_SIGN_REQUEST',
  14: 'SSH2_AGENT_SIGN_RESPONSE',
  17: 'SSH2_AGENTC_ADD_IDENTITY',
  18: 'SSH2_AGENTC_REMOVE_IDENTITY',
  19: 'SSH2_AGENTC_REMOVE_ALL_IDENTITIES',
  22: 'SSH_AGENTC_LOCK',
  23: 'SSH_AGENTC_UNLOCK',
  25: 'SSH2_AGENTC_ADD_ID_CONSTRAINED',
  27: 'SSH_AGENTC_EXTENSION',
  28: 'SSH_AGENT_EXTENSION_FAILURE',
  29: 'SSH_AGENT_EXTENSION_RESPONSE',
};
const msgName = (t) => MSG[t] ?? `unknown(${t})`;

// ---------------------------------------------------------------------------------------
// Process bookkeeping: every child is tracked and killed by PID on exit.
const children = new Map(); // pid -> { child, label }

function track(child, label) {
  if (child.pid === undefined) return child;
  children.set(child.pid, { child, label });
  child.once('exit', () => children.delete(child.pid));
  return child;
}

function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

async function killChild(child, graceMs = 2000) {
  if (!alive(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
  const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut && alive(child)) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    await Promise.race([exited, sleep(graceMs)]);
  }
}

async function killAll() {
  // Newest first (clients before the daemons they talk to).
  const list = [...children.values()].reverse();
  for (const { child } of list) await killChild(child);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, predicate, timeoutMs = 10000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Run a command to completion with a bounded wait. Never uses a shell. */
function run(cmd, args, { env, timeoutMs = 30000, okCodes = [0] } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }), cmd);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      reject(new Error(`${cmd} ${args.join(' ')}: timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (VERBOSE) console.error(`  $ ${cmd} ${args.join(' ')} -> ${code ?? signal}`);
      if (okCodes !== null && !okCodes.includes(code)) {
        reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal}\n${stdout}${stderr}`));
      } else {
        resolve({ code, signal, stdout, stderr });
      }
    });
  });
}

// ---------------------------------------------------------------------------------------
// SSH wire helpers
class Reader {
  constructor(buf, off = 0) { this.buf = buf; this.off = off; }
  get done() { return this.off >= this.buf.length; }
  byte() { this.need(1); return this.buf[this.off++]; }
  uint32() { this.need(4); const v = this.buf.readUInt32BE(this.off); this.off += 4; return v; }
  string() { const n = this.uint32(); this.need(n); const s = this.buf.subarray(this.off, this.off + n); this.off += n; return s; }
  need(n) { if (this.off + n > this.buf.length) throw new Error('short buffer'); }
}
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const sshString = (s) => { const b = Buffer.from(s); return Buffer.concat([u32(b.length), b]); };
const frame = (body) => Buffer.concat([u32(body.length), body]);
const blobType = (blob) => new Reader(blob).string().toString();

function pubBlob(pubFile) {
  const [, b64] = fs.readFileSync(pubFile, 'utf8').trim().split(/\s+/);
  return Buffer.from(b64, 'base64');
}

/** Splits a byte stream into frames (uint32 length + body); calls onFrame(body). */
function frameSplitter(onFrame) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) break;
      onFrame(Buffer.from(buf.subarray(4, 4 + n)));
      buf = buf.subarray(4 + n);
    }
  };
}

// ---------------------------------------------------------------------------------------
// Recording relay
class Recorder {
  constructor(upstreamPath) {
    this.upstreamPath = upstreamPath;
    this.conns = [];
    this.seq = 0;
    this.sockets = new Set();
  }

  listen(relayPath) {
    this.server = net.createServer((client) => this.onClient(client));
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(relayPath, () => resolve());
    });
  }

  onClient(client) {
    const conn = { id: this.conns.length + 1, openedAfter: this.seq, reqs: [], resps: [], closed: false };
    this.conns.push(conn);
    const upstream = net.connect(this.upstreamPath);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const fromClient = frameSplitter((body) => conn.reqs.push({ seq: ++this.seq, body }));
    const fromAgent = frameSplitter((body) => conn.resps.push(body));
    client.on('data', (d) => { fromClient(d); upstream.write(d); });
    upstream.on('data', (d) => { fromAgent(d); client.write(d); });
    const finish = () => {
      conn.closed = true;
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', finish);
    upstream.on('close', finish);
    client.on('error', finish);
    upstream.on('error', finish);
  }

  /** Wait (bounded) until every request after `mark` has its reply or its connection closed. */
  async settle(mark, timeoutMs = 5000) {
    await waitFor('agent replies', () => this.conns.every((c) =>
      c.closed || c.reqs.filter((r) => r.seq > mark).length === 0 || c.resps.length >= c.reqs.length), timeoutMs);
  }

  /** All request/reply exchanges whose request arrived after `mark`, in arrival order. */
  since(mark) {
    const out = [];
    for (const c of this.conns) {
      c.reqs.forEach((r, i) => {
        if (r.seq > mark) out.push({ conn: c.id, seq: r.seq, req: r.body, resp: c.resps[i] ?? null });
      });
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** Connections opened after `mark` on which no request was sent (connect-and-close probes). */
  silentSince(mark) {
    return this.conns.filter((c) => c.openedAfter >= mark && c.reqs.length === 0).map((c) => c.id);
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Send hand-built request bodies on one connection and return the reply bodies. */
function agentRequests(sockPath, bodies, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const replies = [];
    const sock = net.connect(sockPath);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('agent request timed out')); }, timeoutMs);
    const split = frameSplitter((body) => {
      replies.push(body);
      if (replies.length === bodies.length) { clearTimeout(timer); sock.end(); resolve(replies); }
    });
    sock.on('data', split);
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('close', () => {
      clearTimeout(timer);
      if (replies.length < bodies.length) reject(new Error('agent closed the connection early'));
    });
    sock.on('connect', () => { for (const b of bodies) sock.write(frame(b)); });
  });
}

// ---------------------------------------------------------------------------------------
// Human-readable notes (also a sanity check that every frame parses)
const FIELDS = {
  'ssh-ed25519': 2, 'ssh-rsa': 6,
  'ecdsa-sha2-nistp256': 3, 'ecdsa-sha2-nistp384': 3, 'ecdsa-sha2-nistp521': 3,
  'ssh-ed25519-cert-v01@openssh.com': 3, 'ssh-rsa-cert-v01@openssh.com': 5,
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': 2, 'ecdsa-sha2-nistp384-cert-v01@openssh.com': 2,
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': 2,
};

function describe(body) {
  const t = body[0];
  const r = new Reader(body, 1);
  const parts = [`${t} ${msgName(t)}`];
  try {
    switch (t) {
      case 17: case 25: {
        const kt = r.string().toString();
        const n = FIELDS[kt];
        if (n === undefined) { parts.push(kt); break; }
        for (let i = 0; i < n; i++) r.string();
        const comment = r.string().toString();
        parts.push(`key ${kt}, comment "${comment}"`);
        const cons = [];
        while (!r.done) {
          const c = r.byte();
          if (c === 1) cons.push(`lifetime ${r.uint32()}s`);
          else if (c === 2) cons.push('confirm');
          else if (c === 255) { cons.push(`extension ${r.string()}`); break; }
          else { cons.push(`unknown constraint ${c}`); break; }
        }
        if (cons.length) parts.push(`constraints: ${cons.join(', ')}`);
        break;
      }
      case 13: {
        const blob = r.string(); const data = r.string(); const flags = r.uint32();
        parts.push(`key ${blobType(blob)}, ${data.length} data bytes, flags ${flags}`);
        break;
      }
      case 14: {
        const sig = new Reader(r.string());
        const alg = sig.string().toString(); const raw = sig.string();
        parts.push(`signature ${alg}, ${raw.length} bytes`);
        break;
      }
      case 12: {
        const n = r.uint32();
        const keys = [];
        for (let i = 0; i < n; i++) { const b = r.string(); const c = r.string().toString(); keys.push(`${blobType(b)} "${c}"`); }
        parts.push(`${n} keys${n ? ': ' + keys.join('; ') : ''}`);
        break;
      }
      case 18: parts.push(`key ${blobType(r.string())}`); break;
      case 22: case 23: parts.push(`passphrase of ${r.string().length} bytes`); break;
      case 27: case 29: {
        const name = r.string().toString();
        parts.push(`"${name}"`);
        if (t === 27 && name === 'session-bind@openssh.com') {
          const hk = r.string(); const sid = r.string(); const sig = new Reader(r.string()); const fwd = r.byte();
          parts.push(`hostkey ${blobType(hk)}, session_id ${sid.length} bytes, signature ${sig.string()}, is_forwarding ${fwd}`);
        } else if (t === 29 && name === 'query') {
          const names = [];
          while (!r.done) names.push(r.string().toString());
          parts.push(`extensions [${names.join(', ')}]`);
        }
        break;
      }
      default: break;
    }
    if (!r.done && ![17, 25, 27, 29].includes(t)) parts.push(`(${body.length - r.off} trailing bytes)`);
  } catch (e) {
    parts.push(`(unparsed: ${e.message})`);
  }
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------
// Fixture collection (kept in memory, written only when everything succeeded)
const fixtures = new Map(); // file name -> Buffer
const manifest = [];

function addFile(file, body, direction, scenario, note) {
  if (fixtures.has(file)) throw new Error(`duplicate fixture name ${file}`);
  fixtures.set(file, body);
  manifest.push({ file, direction, type: body[0], scenario, note: `${describe(body)}. ${note}`.trim() });
}

function savePair(name, ex, scenario, note = '') {
  if (!ex.resp) throw new Error(`${name}: no reply recorded`);
  addFile(`req-${name}.bin`, ex.req, 'request', scenario, note);
  addFile(`resp-${name}.bin`, ex.resp, 'response', scenario, note);
  console.log(`  ${name.padEnd(40)} ${describe(ex.req)}  ->  ${describe(ex.resp)}`);
}

function summarize(exs) {
  return exs.map((e) => `[conn ${e.conn}] ${describe(e.req)} -> ${e.resp ? describe(e.resp) : 'no reply'}`).join('\n');
}

function expectTypes(scenario, exs, types) {
  const got = exs.map((e) => e.req[0]);
  if (got.length !== types.length || got.some((t, i) => t !== types[i])) {
    throw new Error(`${scenario}: expected request types [${types}] but recorded [${got}]:\n${summarize(exs)}`);
  }
}

/** Save the exchanges of one scenario; names numbered -1, -2 when there are several. */
function saveAll(name, exs, scenario, note = '') {
  if (exs.length === 1) savePair(name, exs[0], scenario, note);
  else exs.forEach((e, i) => savePair(`${name}-${i + 1}`, e, scenario, `${note} Request ${i + 1} of ${exs.length} sent by this scenario.`));
}

// ---------------------------------------------------------------------------------------
async function main() {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsagent-fixtures-'));
  const home = path.join(tmp, 'home');
  const keys = path.join(tmp, 'keys');
  await fsp.mkdir(home, { mode: 0o700 });
  await fsp.mkdir(keys, { mode: 0o700 });
  const upstreamSock = path.join(tmp, 'upstream.sock');
  const relaySock = path.join(tmp, 'relay.sock');
  let recorder = null;

  const cleanup = async () => {
    await killAll();
    if (recorder) await recorder.close();
    await fsp.rm(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig) => { cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const v = spawnSync(SSH, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
    const sshVersion = `${v.stdout}${v.stderr}`.trim();
    console.log(`Recording with ${sshVersion}`);

    // --- reference agent, clean environment --------------------------------------------
    const agentEnv = { PATH: SAFE_PATH, HOME: home, LANG: 'C' };
    const agent = track(spawn(SSH_AGENT, ['-D', '-a', upstreamSock], { env: agentEnv, stdio: ['ignore', 'ignore', 'pipe'] }), 'ssh-agent');
    let agentErr = '';
    agent.stderr.on('data', (d) => { agentErr += d; });
    await waitFor('ssh-agent socket', () => {
      if (!alive(agent)) throw new Error(`ssh-agent exited: ${agentErr}`);
      return fs.existsSync(upstreamSock);
    });

    recorder = new Recorder(upstreamSock);
    await recorder.listen(relaySock);

    const askpass = path.join(tmp, 'askpass.sh');
    await fsp.writeFile(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$FIXTURE_PASS"\n', { mode: 0o700 });
    const env = (extra = {}) => ({ PATH: SAFE_PATH, HOME: home, LANG: 'C', SSH_AUTH_SOCK: relaySock, ...extra });

    /** Run a command through the relay and return the exchanges it produced. */
    const capture = async (cmd, args, opts = {}) => {
      const mark = recorder.seq;
      const res = await run(cmd, args, { env: env(opts.env), okCodes: opts.okCodes, timeoutMs: opts.timeoutMs });
      await recorder.settle(mark);
      const silent = recorder.silentSince(mark);
      if (VERBOSE && silent.length) console.error(`  (connections without any request: ${silent.join(', ')})`);
      return { exs: recorder.since(mark), res, silent };
    };
    const captureHand = async (bodies) => {
      const mark = recorder.seq;
      await agentRequests(relaySock, bodies);
      await recorder.settle(mark);
      return recorder.since(mark);
    };

    // --- throwaway keys ----------------------------------------------------------------
    const keyTypes = {
      'ed25519': ['-t', 'ed25519'],
      'ecdsa-256': ['-t', 'ecdsa', '-b', '256'],
      'ecdsa-384': ['-t', 'ecdsa', '-b', '384'],
      'ecdsa-521': ['-t', 'ecdsa', '-b', '521'],
      'rsa-2048': ['-t', 'rsa', '-b', '2048'],
    };
    const gen = async (name, typeArgs) => {
      const file = path.join(keys, name);
      await run(SSH_KEYGEN, ['-q', '-N', '', ...typeArgs, '-C', `tsagent-fixture-${name}`, '-f', file], { env: env(), timeoutMs: 60000 });
      return file;
    };
    const K = {};
    for (const [name, args] of Object.entries(keyTypes)) K[name] = await gen(name, args);
    K['constrained-ed25519'] = await gen('constrained-ed25519', keyTypes['ed25519']);
    K['constrained-rsa'] = await gen('constrained-rsa', keyTypes['rsa-2048']);
    const ca = await gen('ca', keyTypes['ed25519']);
    for (const t of ['ed25519', 'ecdsa-256', 'rsa']) {
      const k = await gen(`cert-${t}`, keyTypes[t === 'rsa' ? 'rsa-2048' : t]);
      await run(SSH_KEYGEN, ['-q', '-s', ca, '-I', `tsagent-fixture-cert-${t}`, '-n', 'root', `${k}.pub`], { env: env() });
      if (!fs.existsSync(`${k}-cert.pub`)) throw new Error(`certificate ${k}-cert.pub was not created`);
      K[`cert-${t}`] = k;
    }

    // --- empty list --------------------------------------------------------------------
    console.log('Scenarios:');
    {
      const { exs } = await capture(SSH_ADD, ['-l'], { okCodes: [1] });
      expectTypes('identities-empty', exs, [11]);
      savePair('identities-empty', exs[0], 'ssh-add -l on an empty agent', 'Reply is the empty identity list (n = 0).');
    }

    // --- plain adds --------------------------------------------------------------------
    for (const name of Object.keys(keyTypes)) {
      const { exs } = await capture(SSH_ADD, [K[name]]);
      expectTypes(`add-${name}`, exs, [17]);
      savePair(`add-${name}`, exs[0], `ssh-add <${name} key>`);
    }

    // --- constrained adds --------------------------------------------------------------
    for (const name of ['ed25519', 'rsa']) {
      const { exs } = await capture(SSH_ADD, ['-c', '-t', '60', K[`constrained-${name}`]]);
      expectTypes(`add-constrained-${name}`, exs, [25]);
      savePair(`add-constrained-${name}`, exs[0], `ssh-add -c -t 60 <${name} key>`, 'Constraints as ssh-add orders them.');
    }

    // --- certificates ------------------------------------------------------------------
    for (const name of ['ed25519', 'ecdsa-256', 'rsa']) {
      const { exs } = await capture(SSH_ADD, [K[`cert-${name}`]]);
      expectTypes(`add-cert-${name}`, exs, [17, 17]);
      saveAll(`add-cert-${name}`, exs, `ssh-add <${name} key> with <key>-cert.pub next to it`,
        'ssh-add sends the plain key first, then the certificate (cert blob + private parts only).');
    }

    // --- list with several keys ---------------------------------------------------------
    {
      const { exs } = await capture(SSH_ADD, ['-l']);
      expectTypes('request-identities', exs, [11]);
      savePair('request-identities', exs[0], 'ssh-add -l with plain keys, constrained keys and certificates loaded',
        'Identities in insertion order; a certificate and its plain key are separate identities.');
    }

    // --- ssh-add -T (test signatures) ---------------------------------------------------
    const signFlags = {};
    for (const [name, file] of [['ed25519', K['ed25519']], ['ecdsa-256', K['ecdsa-256']], ['rsa', K['rsa-2048']]]) {
      const { exs } = await capture(SSH_ADD, ['-T', `${file}.pub`]);
      const signs = exs.filter((e) => e.req[0] === 13);
      if (signs.length !== 1) throw new Error(`sign-${name}: expected one sign request:\n${summarize(exs)}`);
      const r = new Reader(signs[0].req, 1); r.string(); r.string();
      signFlags[name] = r.uint32();
      const others = exs.filter((e) => e.req[0] !== 13);
      savePair(`sign-${name}`, signs[0], `ssh-add -T <${name} key>.pub`, `ssh-add -T signs 1024 random bytes with flags ${signFlags[name]}.`);
      others.forEach((e, i) => savePair(`sign-${name}-${e.req[0] === 11 ? 'request-identities' : 'msg' + e.req[0]}${others.length > 1 ? '-' + (i + 1) : ''}`,
        e, `ssh-add -T <${name} key>.pub`, 'Auxiliary request sent by ssh-add -T.'));
    }

    // --- RSA sign flags by hand ---------------------------------------------------------
    {
      const blob = pubBlob(`${K['rsa-2048']}.pub`);
      const data = Buffer.from('tsagent fixture: data to be signed\n');
      const signReq = (b, flags) => Buffer.concat([Buffer.from([13]), sshString(b), sshString(data), u32(flags)]);
      for (const [name, flags] of [['sign-rsa-sha1', 0], ['sign-rsa-sha2-256', 2], ['sign-rsa-sha2-512', 4], ['sign-rsa-flags-6', 6]]) {
        const exs = await captureHand([signReq(blob, flags)]);
        expectTypes(name, exs, [13]);
        savePair(name, exs[0], `hand-built SIGN_REQUEST, RSA key, flags ${flags}`,
          flags === 6 ? 'Both SHA-2 flags set.' : '');
      }
      const certBlob = pubBlob(`${K['cert-rsa']}-cert.pub`);
      let exs = await captureHand([signReq(certBlob, 4)]);
      expectTypes('sign-rsa-cert-sha2-512', exs, [13]);
      savePair('sign-rsa-cert-sha2-512', exs[0], 'hand-built SIGN_REQUEST, RSA certificate identity, flags 4');
      exs = await captureHand([signReq(pubBlob(`${ca}.pub`), 0)]);
      expectTypes('sign-unknown-key', exs, [13]);
      savePair('sign-unknown-key', exs[0], 'hand-built SIGN_REQUEST for a key the agent does not hold (the CA key)');
    }

    // --- git-style signing (ssh-keygen -Y sign) ------------------------------------------
    {
      const msgFile = path.join(tmp, 'message.txt');
      await fsp.writeFile(msgFile, 'tsagent fixture: a commit to sign\n');
      const { exs } = await capture(SSH_KEYGEN, ['-Y', 'sign', '-f', `${K['ed25519']}.pub`, '-n', 'git', msgFile]);
      const signs = exs.filter((e) => e.req[0] === 13);
      if (signs.length !== 1) throw new Error(`sshsig-sign-ed25519: expected one sign request:\n${summarize(exs)}`);
      if (!fs.existsSync(`${msgFile}.sig`)) throw new Error('ssh-keygen -Y sign did not write a signature');
      savePair('sshsig-sign-ed25519', signs[0], 'ssh-keygen -Y sign -f <ed25519 key>.pub -n git <file>',
        'Data is the SSHSIG to-be-signed blob ("SSHSIG", namespace "git", hash sha512 of the file).');
      const others = exs.filter((e) => e.req[0] !== 13);
      others.forEach((e, i) => savePair(`sshsig-sign-ed25519-${e.req[0] === 11 ? 'request-identities' : 'msg' + e.req[0]}${others.length > 1 ? '-' + (i + 1) : ''}`,
        e, 'ssh-keygen -Y sign -f <ed25519 key>.pub -n git <file>', 'Sent by ssh-keygen to check that the agent holds the key.'));
    }

    // --- remove one, remove absent -------------------------------------------------------
    {
      let { exs } = await capture(SSH_ADD, ['-d', K['ecdsa-384']]);
      expectTypes('remove-identity', exs, [18]);
      savePair('remove-identity', exs[0], 'ssh-add -d <ecdsa-384 key>');
      ({ exs } = await capture(SSH_ADD, ['-d', K['ecdsa-384']], { okCodes: [1] }));
      expectTypes('failure', exs, [18]);
      savePair('failure', exs[0], 'ssh-add -d <ecdsa-384 key> again (key no longer in the agent)',
        'The request is a REMOVE_IDENTITY for an absent key; the reply is FAILURE.');
      const hand = await captureHand([Buffer.from([1])]);
      expectTypes('unknown-type', hand, [1]);
      savePair('unknown-type', hand[0], 'hand-built legacy SSH1 REQUEST_RSA_IDENTITIES (type 1, empty body)');
    }

    // --- lock / unlock ------------------------------------------------------------------
    {
      const ask = (pass) => ({ SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', FIXTURE_PASS: pass });
      let { exs } = await capture(SSH_ADD, ['-x'], { env: ask('fixture-lock-passphrase') });
      expectTypes('lock', exs, [22]);
      savePair('lock', exs[0], 'ssh-add -x (passphrase "fixture-lock-passphrase" from SSH_ASKPASS, asked twice)');
      ({ exs } = await capture(SSH_ADD, ['-l'], { okCodes: [1] }));
      expectTypes('identities-locked', exs, [11]);
      savePair('identities-locked', exs[0], 'ssh-add -l while locked', 'A locked agent lists no keys.');
      ({ exs } = await capture(SSH_ADD, ['-X'], { env: ask('wrong-passphrase'), okCodes: [1] }));
      expectTypes('unlock-wrong', exs, [23]);
      savePair('unlock-wrong', exs[0], 'ssh-add -X with a wrong passphrase ("wrong-passphrase")');
      ({ exs } = await capture(SSH_ADD, ['-X'], { env: ask('fixture-lock-passphrase') }));
      expectTypes('unlock', exs, [23]);
      savePair('unlock', exs[0], 'ssh-add -X with the right passphrase');
    }

    // --- remove all ---------------------------------------------------------------------
    {
      const { exs } = await capture(SSH_ADD, ['-D']);
      // OpenSSH 9.2's ssh-add -D sends 19 first, then the legacy 9, on the same connection.
      const v2 = exs.find((e) => e.req[0] === 19);
      const v1 = exs.find((e) => e.req[0] === 9);
      if (exs.length !== 2 || !v1 || !v2) throw new Error(`remove-all: expected one 19 and one 9:\n${summarize(exs)}`);
      const order = exs[0] === v2 ? 'sent first, before the legacy 9' : 'sent second, after the legacy 9';
      savePair('remove-all', v2, 'ssh-add -D', `SSH2 REMOVE_ALL_IDENTITIES, ${order}.`);
      savePair('remove-all-v1', v1, 'ssh-add -D', `Legacy SSH1 REMOVE_ALL_RSA_IDENTITIES, request ${exs.indexOf(v1) + 1} of 2 on the same connection.`);
    }

    // --- extensions by hand ---------------------------------------------------------------
    {
      let exs = await captureHand([Buffer.concat([Buffer.from([27]), sshString('query')])]);
      expectTypes('query', exs, [27]);
      savePair('query', exs[0], 'hand-built EXTENSION "query"', 'Whatever this OpenSSH agent answers.');
      exs = await captureHand([Buffer.concat([Buffer.from([27]), sshString('no-such-extension@tsagent.invalid')])]);
      expectTypes('extension-unknown', exs, [27]);
      savePair('extension-unknown', exs[0], 'hand-built EXTENSION with an unknown name');
    }

    // --- ssh login through the agent (session-bind) ----------------------------------------
    if (SKIP_SSHD || !SSHD) {
      console.log(`  (skipping the sshd scenarios: ${SKIP_SSHD ? '--no-sshd' : 'no /usr/sbin/sshd'})`);
    } else {
      await sshScenarios({ tmp, keys, K, env, capture, run });
    }

    // --- write everything -----------------------------------------------------------------
    await fsp.mkdir(OUT_DIR, { recursive: true });
    for (const f of await fsp.readdir(OUT_DIR)) {
      if (/^(req|resp)-.*\.bin$/.test(f) || f === 'manifest.json') await fsp.rm(path.join(OUT_DIR, f));
    }
    for (const [file, body] of fixtures) await fsp.writeFile(path.join(OUT_DIR, file), body);
    await fsp.writeFile(path.join(OUT_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    console.log(`Wrote ${fixtures.size} fixture files and manifest.json to ${path.relative(process.cwd(), OUT_DIR) || OUT_DIR}`);
    console.log(`ssh-add -T flags: ${JSON.stringify(signFlags)}`);
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

async function sshScenarios({ tmp, K, env, capture }) {
  const user = os.userInfo().username;
  if (process.getuid && process.getuid() === 0 && !fs.existsSync('/run/sshd')) {
    await fsp.mkdir('/run/sshd', { mode: 0o755, recursive: true });
  }
  const hostKey = path.join(tmp, 'ssh_host_ed25519_key');
  await run(SSH_KEYGEN, ['-q', '-N', '', '-t', 'ed25519', '-C', 'tsagent-fixture-hostkey', '-f', hostKey], { env: env() });
  const authorized = path.join(tmp, 'authorized_keys');
  await fsp.writeFile(authorized, [K['ed25519'], K['rsa-2048']].map((k) => fs.readFileSync(`${k}.pub`, 'utf8').trim()).join('\n') + '\n', { mode: 0o600 });
  const conf = path.join(tmp, 'sshd_config');
  await fsp.writeFile(conf, [
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${authorized}`,
    'StrictModes no',
    'UsePAM no',
    `PidFile ${path.join(tmp, 'sshd.pid')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'AllowAgentForwarding yes',
    'PrintMotd no',
    'UseDNS no',
    'LogLevel VERBOSE',
    '',
  ].join('\n'));
  const port = await freePort();
  await run(SSHD, ['-t', '-f', conf, '-p', String(port)], { env: { PATH: SAFE_PATH } });
  const sshd = track(spawn(SSHD, ['-D', '-e', '-f', conf, '-p', String(port)], { env: { PATH: SAFE_PATH }, stdio: ['ignore', 'ignore', 'pipe'] }), 'sshd');
  let sshdLog = '';
  sshd.stderr.on('data', (d) => { sshdLog += d; });
  await waitFor('sshd to listen on 127.0.0.1', () => {
    if (!alive(sshd)) throw new Error(`sshd exited:\n${sshdLog}`);
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
  });

  const sshArgs = (identity, extra, command) => [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', `UserKnownHostsFile=${path.join(tmp, 'known_hosts')}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'UpdateHostKeys=no',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
    '-o', 'LogLevel=ERROR',
    '-i', identity,
    '-p', String(port),
    ...extra,
    `${user}@127.0.0.1`,
    command,
  ];

  try {
    // Login 1: ed25519 key in the agent, agent forwarding, remote `ssh-add -l`.
    await run(SSH_ADD, [K['ed25519']], { env: env() });
    let { exs, res } = await capture(SSH, sshArgs(`${K['ed25519']}.pub`, ['-A'], 'ssh-add -l'), { timeoutMs: 30000, okCodes: null });
    if (res.code !== 0) throw new Error(`ssh login failed (exit ${res.code}):\n${res.stderr}\n--- sshd log ---\n${sshdLog}\n--- agent traffic ---\n${summarize(exs)}`);
    if (VERBOSE) console.error(summarize(exs));
    const scen = 'ssh -A -i <ed25519 key>.pub user@127.0.0.1 "ssh-add -l" against a private sshd';
    const byConn = new Map();
    for (const e of exs) { if (!byConn.has(e.conn)) byConn.set(e.conn, []); byConn.get(e.conn).push(e); }
    const conns = [...byConn.values()];
    if (conns.length !== 2) throw new Error(`expected two agent connections from ssh -A:\n${summarize(exs)}`);
    const [auth, fwd] = conns;
    const name = (base, e, list) => {
      const same = list.filter((x) => x.req[0] === e.req[0]);
      return same.length > 1 ? `${base}-${same.indexOf(e) + 1}` : base;
    };
    for (const e of auth) {
      const t = e.req[0];
      const base = t === 27 ? 'extension-session-bind' : t === 11 ? 'ssh-login-request-identities' : t === 13 ? 'ssh-login-sign-ed25519' : `ssh-login-msg${t}`;
      savePair(name(base, e, auth), e, scen, 'Sent by ssh on its own agent connection during user authentication.');
    }
    for (const e of fwd) {
      const t = e.req[0];
      const base = t === 27 ? 'extension-session-bind-forwarding' : t === 11 ? 'forwarded-request-identities' : `forwarded-msg${t}`;
      savePair(name(base, e, fwd), e, scen, 'Sent on the agent connection ssh opens for the forwarded agent channel (remote ssh-add -l).');
    }

    // Login 2: RSA key, to see which signature flags ssh asks for.
    await run(SSH_ADD, ['-D'], { env: env() });
    await run(SSH_ADD, [K['rsa-2048']], { env: env() });
    ({ exs, res } = await capture(SSH, sshArgs(`${K['rsa-2048']}.pub`, [], 'true'), { timeoutMs: 30000, okCodes: null }));
    if (res.code !== 0) throw new Error(`ssh login (rsa) failed (exit ${res.code}):\n${res.stderr}\n--- sshd log ---\n${sshdLog}`);
    if (VERBOSE) console.error(summarize(exs));
    const signs = exs.filter((e) => e.req[0] === 13);
    if (signs.length !== 1) throw new Error(`expected one sign request from ssh (rsa):\n${summarize(exs)}`);
    savePair('ssh-login-sign-rsa', signs[0], 'ssh -i <rsa key>.pub user@127.0.0.1 true against a private sshd',
      'The user-authentication signature ssh requests for an RSA key (data is the SSH2_MSG_USERAUTH_REQUEST to be signed).');
  } finally {
    await killChild(sshd);
  }
}

main().catch(async (err) => {
  console.error(`record-fixtures: ${err.stack || err}`);
  await killAll();
  process.exitCode = 1;
});
