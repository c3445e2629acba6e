/**
 * Records golden byte fixtures of real ssh-agent protocol traffic (test/fixtures/README.md).
 *
 * Starts OpenSSH's reference agent (clean environment), puts a recording relay in front of it
 * and drives the real ssh-add / ssh-keygen / ssh (and a few hand-built requests) through the
 * relay. Every request body and its reply body (without the 4-byte length, so the first byte
 * is the message type) is written to <out>/{req,resp}-<name>.bin, with <out>/manifest.json.
 *
 *     npm run record-fixtures [-- -v] [-- --no-sshd] [-- --out DIR]
 *     (= npm run build && node dist/test/tools/record-fixtures.js ...)
 *
 * Default <out> is test/fixtures/messages. All keys are throwaway keys generated fresh in a
 * temporary directory; no key material is printed. Every process is started through
 * test/helpers/proc.ts (tracked, killed by PID), every wait is bounded, only 127.0.0.1 is used.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeRequest } from '../../src/protocol/codec';
import type { Request } from '../../src/protocol/messages';
import { MSG } from '../../src/protocol/messages';
import { QUERY } from '../../src/protocol/query';
import { generateKey, parsePublicLine, readPublicLine, signUserCert } from '../helpers/keys';
import type { GeneratedKey, KeyType } from '../helpers/keys';
import { startOpenSSHAgent } from '../helpers/openssh-agent';
import type { OpenSSHAgent } from '../helpers/openssh-agent';
import { findPeer, findPeerOrFail } from '../helpers/peers';
import { cleanEnv, killAllChildren, run } from '../helpers/proc';
import type { RunResult } from '../helpers/proc';
import { startSshd } from '../helpers/sshd';
import { LEGACY_REQUEST_RSA_IDENTITIES, describeMessage } from './fixture-notes';
import type { Direction } from './fixture-notes';
import { RecordingRelay } from './recording-relay';
import type { Exchange } from './recording-relay';

const ROOT = resolve(__dirname, '../../..');
const { values: cli } = parseArgs({
  options: {
    out: { type: 'string' },
    verbose: { type: 'boolean', short: 'v', default: false },
    'no-sshd': { type: 'boolean', default: false },
  },
  strict: true,
});
const OUT_DIR = resolve(cli.out ?? join(ROOT, 'test/fixtures/messages'));
const VERBOSE = cli.verbose === true;
const SKIP_SSHD = cli['no-sshd'] === true;

const SSH_ADD = findPeerOrFail('ssh-add');
const SSH_KEYGEN = findPeerOrFail('ssh-keygen');
const SSH = findPeerOrFail('ssh');

// ---------------------------------------------------------------------------------------------
// fixture collection (in memory; written only when every scenario succeeded)

interface ManifestEntry {
  readonly file: string;
  readonly direction: Direction;
  readonly type: number;
  readonly scenario: string;
  readonly note: string;
}

const fixtures = new Map<string, Buffer>();
const manifest: ManifestEntry[] = [];

function addFile(file: string, body: Buffer, direction: Direction, scenario: string, note: string): void {
  if (fixtures.has(file)) throw new Error(`duplicate fixture name ${file}`);
  fixtures.set(file, body);
  const type = body[0] ?? -1;
  manifest.push({ file, direction, type, scenario, note: `${describeMessage(body, direction)}. ${note}`.trim() });
}

function savePair(name: string, ex: Exchange, scenario: string, note = ''): void {
  if (ex.resp === null) throw new Error(`${name}: no reply recorded`);
  addFile(`req-${name}.bin`, ex.req, 'request', scenario, note);
  addFile(`resp-${name}.bin`, ex.resp, 'response', scenario, note);
  console.log(`  ${name.padEnd(40)} ${describeMessage(ex.req, 'request')}  ->  ${describeMessage(ex.resp, 'response')}`);
}

function summarize(exs: readonly Exchange[]): string {
  return exs
    .map(
      (e) =>
        `[conn ${e.conn}] ${describeMessage(e.req, 'request')} -> ${e.resp ? describeMessage(e.resp, 'response') : 'no reply'}`,
    )
    .join('\n');
}

const typeOf = (e: Exchange): number => e.req[0] ?? -1;

function expectTypes(scenario: string, exs: readonly Exchange[], types: readonly number[]): void {
  const got = exs.map(typeOf);
  if (got.length !== types.length || got.some((t, i) => t !== types[i])) {
    throw new Error(
      `${scenario}: expected request types [${types.join(',')}] but recorded [${got.join(',')}]:\n${summarize(exs)}`,
    );
  }
}

/** The one exchange of a scenario that sent exactly one request. */
function only(scenario: string, exs: readonly Exchange[], type: number): Exchange {
  expectTypes(scenario, exs, [type]);
  const [e] = exs;
  if (e === undefined) throw new Error(`${scenario}: nothing recorded`);
  return e;
}

/** Saves the exchanges of one scenario; names numbered -1, -2 when there are several. */
function saveAll(name: string, exs: readonly Exchange[], scenario: string, note = ''): void {
  const [first] = exs;
  if (exs.length === 1 && first !== undefined) savePair(name, first, scenario, note);
  else
    exs.forEach((e, i) =>
      savePair(`${name}-${i + 1}`, e, scenario, `${note} Request ${i + 1} of ${exs.length} sent by this scenario.`),
    );
}

/** Saves the requests a command sent besides its SIGN_REQUEST, named `<base>-request-identities` etc. */
function saveAuxiliary(base: string, exs: readonly Exchange[], scenario: string, note: string): void {
  const others = exs.filter((e) => typeOf(e) !== MSG.SIGN_REQUEST);
  others.forEach((e, i) => {
    const kind = typeOf(e) === MSG.REQUEST_IDENTITIES ? 'request-identities' : `msg${typeOf(e)}`;
    savePair(`${base}-${kind}${others.length > 1 ? `-${i + 1}` : ''}`, e, scenario, note);
  });
}

/** The single SIGN_REQUEST a command sent. */
function theSign(scenario: string, exs: readonly Exchange[]): Exchange {
  const signs = exs.filter((e) => typeOf(e) === MSG.SIGN_REQUEST);
  const [sign] = signs;
  if (signs.length !== 1 || sign === undefined) throw new Error(`${scenario}: expected one sign request:\n${summarize(exs)}`);
  return sign;
}

// ---------------------------------------------------------------------------------------------
// commands

interface CaptureOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Exit codes that count as success; null accepts any. Default [0]. */
  readonly okCodes?: readonly number[] | null;
  readonly timeoutMs?: number;
}

/** proc.run (bounded, no shell), then fail unless the exit code is one of `okCodes`. */
async function runChecked(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  opts: CaptureOptions = {},
): Promise<RunResult> {
  const res = await run(cmd, args, { env, timeoutMs: opts.timeoutMs ?? 30_000 });
  if (VERBOSE) console.error(`  $ ${cmd} ${args.join(' ')} -> ${res.code ?? res.signal}`);
  const ok = opts.okCodes === undefined ? [0] : opts.okCodes;
  if (ok !== null && (res.code === null || !ok.includes(res.code))) {
    throw new Error(`${cmd} ${args.join(' ')}: exit ${res.code ?? res.signal}\n${res.stdout}${res.stderr}`);
  }
  return res;
}

/** What every scenario needs: the relay, the clients' environment, the keys. */
interface Session {
  readonly tmp: string;
  readonly relay: RecordingRelay;
  readonly relayPath: string;
  readonly askpass: string;
  /** Client environment: PATH, HOME, LANG=C, SSH_AUTH_SOCK=relay, extras. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  readonly keys: Keys;
}

interface Captured {
  readonly exs: Exchange[];
  readonly res: RunResult;
}

/** Runs a command through the relay; the exchanges it produced. */
async function capture(s: Session, cmd: string, args: readonly string[], opts: CaptureOptions = {}): Promise<Captured> {
  const mark = s.relay.seq;
  const res = await runChecked(cmd, args, s.env(opts.env), opts);
  await s.relay.settle(mark);
  const silent = s.relay.silentSince(mark);
  if (VERBOSE && silent.length > 0) console.error(`  (connections without any request: ${silent.join(', ')})`);
  return { exs: s.relay.since(mark), res };
}

/** Sends hand-built requests (encoded by the project's codec, via AgentClient) through the relay. */
async function captureHand(s: Session, requests: readonly Request[]): Promise<Exchange[]> {
  const mark = s.relay.seq;
  await s.relay.sendThrough(s.relayPath, requests);
  await s.relay.settle(mark);
  return s.relay.since(mark);
}

// ---------------------------------------------------------------------------------------------
// throwaway keys

const PLAIN = ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048'] as const satisfies readonly KeyType[];
const CERTIFIED = ['ed25519', 'ecdsa-256', 'rsa'] as const;
type CertName = (typeof CERTIFIED)[number];

interface Keys {
  readonly plain: Readonly<Record<(typeof PLAIN)[number], GeneratedKey>>;
  readonly constrained: { readonly ed25519: GeneratedKey; readonly rsa: GeneratedKey };
  readonly ca: GeneratedKey;
  /** Keys with `<key>-cert.pub` (signed by `ca`, principal root) next to them. */
  readonly certified: Readonly<Record<CertName, GeneratedKey>>;
}

async function makeKeys(dir: string): Promise<Keys> {
  const gen = (name: string, type: KeyType): Promise<GeneratedKey> => generateKey(dir, type, `tsagent-fixture-${name}`, { name });
  const plain = {} as Record<(typeof PLAIN)[number], GeneratedKey>;
  for (const t of PLAIN) plain[t] = await gen(t, t);
  const constrained = { ed25519: await gen('constrained-ed25519', 'ed25519'), rsa: await gen('constrained-rsa', 'rsa-2048') };
  const ca = await gen('ca', 'ed25519');
  const certified = {} as Record<CertName, GeneratedKey>;
  for (const t of CERTIFIED) {
    const k = await gen(`cert-${t}`, t === 'rsa' ? 'rsa-2048' : t);
    await signUserCert(ca, k.publicPath, { principals: ['root'], identity: `tsagent-fixture-cert-${t}` });
    certified[t] = k;
  }
  return { plain, constrained, ca, certified };
}

// ---------------------------------------------------------------------------------------------
// scenarios

async function listAddAndCertificates(s: Session): Promise<void> {
  const { plain, constrained, certified } = s.keys;
  let { exs } = await capture(s, SSH_ADD, ['-l'], { okCodes: [1] });
  savePair(
    'identities-empty',
    only('identities-empty', exs, MSG.REQUEST_IDENTITIES),
    'ssh-add -l on an empty agent',
    'Reply is the empty identity list (n = 0).',
  );

  for (const name of PLAIN) {
    ({ exs } = await capture(s, SSH_ADD, [plain[name].privatePath]));
    savePair(`add-${name}`, only(`add-${name}`, exs, MSG.ADD_IDENTITY), `ssh-add <${name} key>`);
  }

  for (const name of ['ed25519', 'rsa'] as const) {
    ({ exs } = await capture(s, SSH_ADD, ['-c', '-t', '60', constrained[name].privatePath]));
    const scenario = `add-constrained-${name}`;
    savePair(
      scenario,
      only(scenario, exs, MSG.ADD_ID_CONSTRAINED),
      `ssh-add -c -t 60 <${name} key>`,
      'Constraints as ssh-add orders them.',
    );
  }

  for (const name of CERTIFIED) {
    ({ exs } = await capture(s, SSH_ADD, [certified[name].privatePath]));
    expectTypes(`add-cert-${name}`, exs, [MSG.ADD_IDENTITY, MSG.ADD_IDENTITY]);
    saveAll(
      `add-cert-${name}`,
      exs,
      `ssh-add <${name} key> with <key>-cert.pub next to it`,
      'ssh-add sends the plain key first, then the certificate (cert blob + private parts only).',
    );
  }

  ({ exs } = await capture(s, SSH_ADD, ['-l']));
  savePair(
    'request-identities',
    only('request-identities', exs, MSG.REQUEST_IDENTITIES),
    'ssh-add -l with plain keys, constrained keys and certificates loaded',
    'Identities in insertion order; a certificate and its plain key are separate identities.',
  );
}

/** `ssh-add -T`, hand-built RSA flags, a certificate and an unknown key; the -T flags seen. */
async function signatures(s: Session): Promise<Record<string, number>> {
  const { plain, certified, ca } = s.keys;
  const signFlags: Record<string, number> = {};
  for (const [name, key] of [
    ['ed25519', plain.ed25519],
    ['ecdsa-256', plain['ecdsa-256']],
    ['rsa', plain['rsa-2048']],
  ] as const) {
    const scenario = `ssh-add -T <${name} key>.pub`;
    const { exs } = await capture(s, SSH_ADD, ['-T', key.publicPath]);
    const sign = theSign(`sign-${name}`, exs);
    const decoded = decodeRequest(sign.req);
    const flags = decoded.type === 'sign' ? decoded.flags : -1;
    signFlags[name] = flags;
    savePair(`sign-${name}`, sign, scenario, `ssh-add -T signs 1024 random bytes with flags ${flags}.`);
    saveAuxiliary(`sign-${name}`, exs, scenario, 'Auxiliary request sent by ssh-add -T.');
  }

  const data = Buffer.from('tsagent fixture: data to be signed\n');
  const signReq = (keyBlob: Buffer, flags: number): Request => ({ type: 'sign', keyBlob, data, flags });
  for (const [name, flags] of [
    ['sign-rsa-sha1', 0],
    ['sign-rsa-sha2-256', 2],
    ['sign-rsa-sha2-512', 4],
    ['sign-rsa-flags-6', 6],
  ] as const) {
    const exs = await captureHand(s, [signReq(plain['rsa-2048'].blob, flags)]);
    savePair(
      name,
      only(name, exs, MSG.SIGN_REQUEST),
      `hand-built SIGN_REQUEST, RSA key, flags ${flags}`,
      flags === 6 ? 'Both SHA-2 flags set.' : '',
    );
  }
  const certBlob = parsePublicLine(await readPublicLine(`${certified.rsa.privatePath}-cert.pub`)).blob;
  let exs = await captureHand(s, [signReq(certBlob, 4)]);
  savePair(
    'sign-rsa-cert-sha2-512',
    only('sign-rsa-cert-sha2-512', exs, MSG.SIGN_REQUEST),
    'hand-built SIGN_REQUEST, RSA certificate identity, flags 4',
  );
  exs = await captureHand(s, [signReq(ca.blob, 0)]);
  savePair(
    'sign-unknown-key',
    only('sign-unknown-key', exs, MSG.SIGN_REQUEST),
    'hand-built SIGN_REQUEST for a key the agent does not hold (the CA key)',
  );
  return signFlags;
}

async function gitStyleSigning(s: Session): Promise<void> {
  const msgFile = join(s.tmp, 'message.txt');
  await writeFile(msgFile, 'tsagent fixture: a commit to sign\n');
  const scenario = 'ssh-keygen -Y sign -f <ed25519 key>.pub -n git <file>';
  const { exs } = await capture(s, SSH_KEYGEN, ['-Y', 'sign', '-f', s.keys.plain.ed25519.publicPath, '-n', 'git', msgFile]);
  const sign = theSign('sshsig-sign-ed25519', exs);
  if (!existsSync(`${msgFile}.sig`)) throw new Error('ssh-keygen -Y sign did not write a signature');
  savePair(
    'sshsig-sign-ed25519',
    sign,
    scenario,
    'Data is the SSHSIG to-be-signed blob ("SSHSIG", namespace "git", hash sha512 of the file).',
  );
  saveAuxiliary('sshsig-sign-ed25519', exs, scenario, 'Sent by ssh-keygen to check that the agent holds the key.');
}

async function removals(s: Session): Promise<void> {
  const key = s.keys.plain['ecdsa-384'].privatePath;
  let { exs } = await capture(s, SSH_ADD, ['-d', key]);
  savePair('remove-identity', only('remove-identity', exs, MSG.REMOVE_IDENTITY), 'ssh-add -d <ecdsa-384 key>');
  ({ exs } = await capture(s, SSH_ADD, ['-d', key], { okCodes: [1] }));
  savePair(
    'failure',
    only('failure', exs, MSG.REMOVE_IDENTITY),
    'ssh-add -d <ecdsa-384 key> again (key no longer in the agent)',
    'The request is a REMOVE_IDENTITY for an absent key; the reply is FAILURE.',
  );
  exs = await captureHand(s, [{ type: 'unsupported', messageType: LEGACY_REQUEST_RSA_IDENTITIES, body: Buffer.alloc(0) }]);
  savePair(
    'unknown-type',
    only('unknown-type', exs, LEGACY_REQUEST_RSA_IDENTITIES),
    'hand-built legacy SSH1 REQUEST_RSA_IDENTITIES (type 1, empty body)',
  );
}

async function lockAndUnlock(s: Session): Promise<void> {
  const ask = (pass: string): NodeJS.ProcessEnv => ({
    SSH_ASKPASS: s.askpass,
    SSH_ASKPASS_REQUIRE: 'force',
    DISPLAY: ':0',
    FIXTURE_PASS: pass,
  });
  let { exs } = await capture(s, SSH_ADD, ['-x'], { env: ask('fixture-lock-passphrase') });
  savePair(
    'lock',
    only('lock', exs, MSG.LOCK),
    'ssh-add -x (passphrase "fixture-lock-passphrase" from SSH_ASKPASS, asked twice)',
  );
  ({ exs } = await capture(s, SSH_ADD, ['-l'], { okCodes: [1] }));
  savePair(
    'identities-locked',
    only('identities-locked', exs, MSG.REQUEST_IDENTITIES),
    'ssh-add -l while locked',
    'A locked agent lists no keys.',
  );
  ({ exs } = await capture(s, SSH_ADD, ['-X'], { env: ask('wrong-passphrase'), okCodes: [1] }));
  savePair('unlock-wrong', only('unlock-wrong', exs, MSG.UNLOCK), 'ssh-add -X with a wrong passphrase ("wrong-passphrase")');
  ({ exs } = await capture(s, SSH_ADD, ['-X'], { env: ask('fixture-lock-passphrase') }));
  savePair('unlock', only('unlock', exs, MSG.UNLOCK), 'ssh-add -X with the right passphrase');
}

async function removeAll(s: Session): Promise<void> {
  const { exs } = await capture(s, SSH_ADD, ['-D']);
  // OpenSSH 9.2's ssh-add -D sends 19 first, then the legacy 9, on the same connection.
  const v2 = exs.find((e) => typeOf(e) === MSG.REMOVE_ALL_IDENTITIES);
  const v1 = exs.find((e) => typeOf(e) === MSG.REMOVE_ALL_RSA_IDENTITIES);
  if (exs.length !== 2 || v1 === undefined || v2 === undefined)
    throw new Error(`remove-all: expected one 19 and one 9:\n${summarize(exs)}`);
  const order = exs[0] === v2 ? 'sent first, before the legacy 9' : 'sent second, after the legacy 9';
  savePair('remove-all', v2, 'ssh-add -D', `SSH2 REMOVE_ALL_IDENTITIES, ${order}.`);
  savePair(
    'remove-all-v1',
    v1,
    'ssh-add -D',
    `Legacy SSH1 REMOVE_ALL_RSA_IDENTITIES, request ${exs.indexOf(v1) + 1} of 2 on the same connection.`,
  );
}

async function extensions(s: Session): Promise<void> {
  let exs = await captureHand(s, [{ type: 'extension', name: QUERY, contents: Buffer.alloc(0) }]);
  savePair('query', only('query', exs, MSG.EXTENSION), 'hand-built EXTENSION "query"', 'Whatever this OpenSSH agent answers.');
  exs = await captureHand(s, [{ type: 'extension', name: 'no-such-extension@tsagent.invalid', contents: Buffer.alloc(0) }]);
  savePair('extension-unknown', only('extension-unknown', exs, MSG.EXTENSION), 'hand-built EXTENSION with an unknown name');
}

/** Fixture name for the n-th request of its type on a connection (numbered when repeated). */
function numbered(base: string, e: Exchange, list: readonly Exchange[]): string {
  const same = list.filter((x) => typeOf(x) === typeOf(e));
  return same.length > 1 ? `${base}-${same.indexOf(e) + 1}` : base;
}

/** Logins through a private sshd (test/helpers/sshd.ts): session-bind and real login signatures. */
async function sshLogins(s: Session): Promise<void> {
  const { ed25519, 'rsa-2048': rsa } = s.keys.plain;
  const sshd = await startSshd({ authorizedKeys: [ed25519.publicLine, rsa.publicLine], allowAgentForwarding: true });
  // `-i key.pub` + IdentitiesOnly: ssh signs with exactly that agent key (given first, so it
  // overrides the helper's defaults: ssh keeps the first value of an option).
  const sshArgs = (key: GeneratedKey, extra: readonly string[], command: string): string[] =>
    sshd.sshArgs([...extra, '-o', 'IdentitiesOnly=yes', '-i', key.publicPath], [command]);
  try {
    // Login 1: ed25519 key in the agent, agent forwarding, remote `ssh-add -l`.
    await runChecked(SSH_ADD, [ed25519.privatePath], s.env());
    let { exs, res } = await capture(s, SSH, sshArgs(ed25519, ['-A'], 'ssh-add -l'), { okCodes: null });
    if (res.code !== 0) {
      throw new Error(
        `ssh login failed (exit ${res.code}):\n${res.stderr}\n--- sshd log ---\n${sshd.log()}\n--- agent traffic ---\n${summarize(exs)}`,
      );
    }
    if (VERBOSE) console.error(summarize(exs));
    const scenario = 'ssh -A -i <ed25519 key>.pub user@127.0.0.1 "ssh-add -l" against a private sshd';
    const byConn = new Map<number, Exchange[]>();
    for (const e of exs) byConn.set(e.conn, [...(byConn.get(e.conn) ?? []), e]);
    const [auth, fwd, ...more] = byConn.values();
    if (auth === undefined || fwd === undefined || more.length > 0) {
      throw new Error(`expected two agent connections from ssh -A:\n${summarize(exs)}`);
    }
    for (const e of auth) {
      const t = typeOf(e);
      const base =
        t === MSG.EXTENSION
          ? 'extension-session-bind'
          : t === MSG.REQUEST_IDENTITIES
            ? 'ssh-login-request-identities'
            : t === MSG.SIGN_REQUEST
              ? 'ssh-login-sign-ed25519'
              : `ssh-login-msg${t}`;
      savePair(numbered(base, e, auth), e, scenario, 'Sent by ssh on its own agent connection during user authentication.');
    }
    for (const e of fwd) {
      const t = typeOf(e);
      const base =
        t === MSG.EXTENSION
          ? 'extension-session-bind-forwarding'
          : t === MSG.REQUEST_IDENTITIES
            ? 'forwarded-request-identities'
            : `forwarded-msg${t}`;
      savePair(
        numbered(base, e, fwd),
        e,
        scenario,
        'Sent on the agent connection ssh opens for the forwarded agent channel (remote ssh-add -l).',
      );
    }

    // Login 2: RSA key, to see which signature flags ssh asks for.
    await runChecked(SSH_ADD, ['-D'], s.env());
    await runChecked(SSH_ADD, [rsa.privatePath], s.env());
    ({ exs, res } = await capture(s, SSH, sshArgs(rsa, [], 'true'), { okCodes: null }));
    if (res.code !== 0)
      throw new Error(`ssh login (rsa) failed (exit ${res.code}):\n${res.stderr}\n--- sshd log ---\n${sshd.log()}`);
    if (VERBOSE) console.error(summarize(exs));
    savePair(
      'ssh-login-sign-rsa',
      theSign('ssh-login-sign-rsa', exs),
      'ssh -i <rsa key>.pub user@127.0.0.1 true against a private sshd',
      'The user-authentication signature ssh requests for an RSA key (data is the SSH2_MSG_USERAUTH_REQUEST to be signed).',
    );
  } finally {
    await sshd.stop();
  }
}

// ---------------------------------------------------------------------------------------------

async function writeFixtures(): Promise<void> {
  await mkdir(OUT_DIR, { recursive: true });
  for (const f of await readdir(OUT_DIR)) {
    if (/^(req|resp)-.*\.bin$/.test(f) || f === 'manifest.json') await rm(join(OUT_DIR, f));
  }
  for (const [file, body] of fixtures) await writeFile(join(OUT_DIR, file), body);
  await writeFile(join(OUT_DIR, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`Wrote ${fixtures.size} fixture files and manifest.json to ${relative(process.cwd(), OUT_DIR) || OUT_DIR}`);
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'tsagent-fixtures-'));
  const home = join(tmp, 'home');
  const keysDir = join(tmp, 'keys');
  await mkdir(home, { mode: 0o700 });
  await mkdir(keysDir, { mode: 0o700 });
  let agent: OpenSSHAgent | undefined;
  let relay: RecordingRelay | undefined;

  const cleanup = async (): Promise<void> => {
    await relay?.close();
    await agent?.stop();
    killAllChildren();
    await rm(tmp, { recursive: true, force: true });
  };
  // test/helpers/proc.ts kills our children on a signal; this handler removes the temp dir.
  const onSignal = (sig: NodeJS.Signals): void => {
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const v = await run(SSH, ['-V'], { env: cleanEnv(), timeoutMs: 10_000 });
    console.log(`Recording with ${`${v.stdout}${v.stderr}`.trim()}`);

    agent = await startOpenSSHAgent(undefined, { env: { LANG: 'C' } });
    const relayPath = join(tmp, 'relay.sock');
    relay = new RecordingRelay(agent.socketPath);
    await relay.listen(relayPath);

    const askpass = join(tmp, 'askpass.sh');
    await writeFile(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$FIXTURE_PASS"\n', { mode: 0o700 });
    const s: Session = {
      tmp,
      relay,
      relayPath,
      askpass,
      env: (extra = {}) => cleanEnv({ HOME: home, LANG: 'C', SSH_AUTH_SOCK: relayPath, ...extra }),
      keys: await makeKeys(keysDir),
    };

    console.log('Scenarios:');
    await listAddAndCertificates(s);
    const signFlags = await signatures(s);
    await gitStyleSigning(s);
    await removals(s);
    await lockAndUnlock(s);
    await removeAll(s);
    await extensions(s);
    if (SKIP_SSHD || findPeer('sshd') === undefined) {
      console.log(`  (skipping the sshd scenarios: ${SKIP_SSHD ? '--no-sshd' : 'no sshd'})`);
    } else {
      await sshLogins(s);
    }

    await writeFixtures();
    console.log(`ssh-add -T flags: ${JSON.stringify(signFlags)}`);
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().catch((err: unknown) => {
  console.error(`record-fixtures: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  killAllChildren();
  process.exitCode = 1;
});
