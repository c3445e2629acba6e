/**
 * Agent forwarding end to end, with tsagent as the agent on the client's side.
 *
 * Server side (exposeForwardedAgent): an ssh2 Server in the test; a session that asked for
 * auth-agent gets a local socket whose connections are `auth-agent@openssh.com` channels
 * back to the client. Through it the real `ssh-add -L` lists the keys, and a second ssh2
 * login authenticates. The clients on the other end: ssh2's Client (which relays the
 * channel to the agent socket by itself), ssh2's Client relaying through
 * forwardAgentChannel, and OpenSSH's own `ssh -A`.
 *
 * Client side (forwardAgentChannel): ssh2's Client hands every agent stream — its own
 * identities/sign requests and each forwarded channel — to the agent object's getStream().
 * It relays incoming auth-agent channels itself (`channel.pipe(stream).pipe(channel)`), so
 * forwardAgentChannel is plugged in there: getStream returns one end of a duplex pair and
 * forwardAgentChannel relays the other end to tsagent. Against the real sshd, `ssh-add -L`
 * and a second `ssh` hop on the far side then run through it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { Client, OpenSSHAgent } from 'ssh2';
import type { ConnectConfig } from 'ssh2';
import { AgentClient } from '../../src/client/agent-client';
import { forwardAgentChannel } from '../../src/client/forwarding';
import { exposeForwardedAgent } from '../../src/client/forwarding-server';
import type { AgentRelay } from '../../src/client/frame-relay';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { duplexPair } from '../helpers/duplex-pair';
import { generateKey } from '../helpers/keys';
import type { GeneratedKey } from '../helpers/keys';
import { requirePeers } from '../helpers/peers';
import { cleanEnv, removeDir, run, runOk, tempDir } from '../helpers/proc';
import { openAuthAgentChannel, startSsh2Server } from '../helpers/ssh2-server';
import type { ExecRequest, Ssh2TestServer } from '../helpers/ssh2-server';
import { sshClientArgs, startSshd } from '../helpers/sshd';

const USER = 'tester';

/** ssh2's OpenSSHAgent, except that every agent stream goes through forwardAgentChannel. */
class RelayingAgent extends OpenSSHAgent {
  readonly relays: AgentRelay[] = [];
  constructor(private readonly agentSocket: string) {
    super(agentSocket);
  }
  override getStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    const [ssh2End, ourEnd] = duplexPair();
    this.relays.push(forwardAgentChannel(ourEnd, { socketPath: this.agentSocket }));
    cb(undefined, ssh2End);
  }
}

function connect(config: ConnectConfig & { hostKeyBlob: Buffer }): Promise<Client> {
  const { hostKeyBlob, ...rest } = config;
  return new Promise((resolve, reject) => {
    const client = new Client();
    const timer = setTimeout(() => {
      client.end();
      reject(new Error('ssh2 login timed out'));
    }, 20_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    client.connect({ host: '127.0.0.1', readyTimeout: 15_000, hostVerifier: (key: Buffer) => key.equals(hostKeyBlob), ...rest });
  });
}

/**
 * Runs `command` on `client` (which requests agent forwarding first when it was connected
 * with `agentForward: true`); resolves with its exit code and stdout (bounded). */
function exec(client: Client, command: string): Promise<{ code: number | undefined; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`exec ${command} timed out`)), 30_000);
    client.exec(command, (err, stream) => {
      if (err) {
        clearTimeout(timer);
        reject(err);
        return;
      }
      let stdout = '';
      let stderr = '';
      let code: number | undefined;
      stream.on('data', (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      stream.on('exit', (c: number) => (code = c));
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  });
}

function finish(req: ExecRequest, output: string, code = 0): void {
  req.stream.write(output);
  req.stream.exit(code);
  req.stream.end();
}

describe('agent forwarding', () => {
  let dir: string;
  let daemon: AgentDaemon;
  let key: GeneratedKey;
  let server: Ssh2TestServer;

  before(async () => {
    dir = await tempDir('tsagent-fwd-test-');
    daemon = await startAgentDaemon('tsagent');
    key = await generateKey(dir, 'ed25519', 'forwarded-key');
    const client = new AgentClient({ socketPath: daemon.socketPath });
    await client.addKey({ path: key.privatePath });
    client.close();
    server = await startSsh2Server(dir, [key.publicLine]);
  });
  after(async () => {
    await server?.close();
    await daemon?.stop();
    if (dir) await removeDir(dir);
  });

  /**
   * The far side of a forwarded session: expose the agent, list it with the real ssh-add,
   * log in again (second hop) with it, report to the client, and remove the socket.
   */
  async function farSide(t: TestContext): Promise<void> {
    const bin = requirePeers(t, ['ssh-add'] as const);
    if (bin === undefined) return;
    const session = await server.nextExec();
    assert.equal(session.command, 'use-forwarded-agent');
    assert.ok(session.agentForwarding, 'the client asked for agent forwarding');
    const fwd = await exposeForwardedAgent(() => openAuthAgentChannel(session.conn));
    try {
      const listed = await runOk(bin['ssh-add'], ['-L'], { env: cleanEnv(fwd.env) });
      const loginsBefore = server.logins.length;
      const hop = await connect({ port: server.port, username: USER, agent: fwd.socketPath, hostKeyBlob: server.hostKeyBlob });
      const hopDone = exec(hop, 'second-hop');
      const hopReq = await server.nextExec();
      assert.equal(hopReq.command, 'second-hop');
      finish(hopReq, 'hop-ok\n');
      const hopResult = await hopDone;
      hop.end();
      assert.equal(server.logins.length, loginsBefore + 1);
      assert.ok(server.logins.at(-1)!.equals(key.blob), 'the second login used the forwarded key');
      finish(session, `${listed.stdout}${hopResult.stdout}`);
    } finally {
      await fwd.close();
    }
  }

  function assertFarSideOutput(out: { code: number | undefined; stdout: string }): void {
    assert.equal(out.code, 0);
    const lines = out.stdout.trim().split('\n');
    assert.equal(lines.length, 2, out.stdout);
    assert.equal(lines[0].split(' ').slice(0, 2).join(' '), key.publicLine.split(' ').slice(0, 2).join(' '));
    assert.equal(lines[1], 'hop-ok');
  }

  it('ssh2 client (relaying by itself) → ssh2 server: exposeForwardedAgent serves ssh-add -L and a second login', async (t) => {
    if (requirePeers(t, ['ssh-add'] as const) === undefined) return;
    const client = await connect({
      port: server.port,
      username: USER,
      agent: daemon.socketPath,
      agentForward: true,
      hostKeyBlob: server.hostKeyBlob,
    });
    t.after(() => client.end());
    const out = exec(client, 'use-forwarded-agent');
    await farSide(t);
    assertFarSideOutput(await out);
  });

  it('ssh2 client relaying through forwardAgentChannel → ssh2 server', async (t) => {
    if (requirePeers(t, ['ssh-add'] as const) === undefined) return;
    const agent = new RelayingAgent(daemon.socketPath);
    const client = await connect({
      port: server.port,
      username: USER,
      agent,
      agentForward: true,
      hostKeyBlob: server.hostKeyBlob,
    });
    t.after(() => client.end());
    const forLogin = agent.relays.length;
    assert.ok(forLogin >= 1, 'the login itself went through forwardAgentChannel');
    const out = exec(client, 'use-forwarded-agent');
    await farSide(t);
    assertFarSideOutput(await out);
    assert.ok(agent.relays.length > forLogin, 'the forwarded channels went through forwardAgentChannel');
    const reasons = await Promise.all(agent.relays.map((r) => r.closed));
    assert.deepEqual(
      reasons.map((r) => r?.message),
      reasons.map(() => undefined),
      'every relay ended cleanly',
    );
  });

  it("OpenSSH's ssh -A → ssh2 server: exposeForwardedAgent against OpenSSH's client side", async (t) => {
    const bin = requirePeers(t, ['ssh', 'ssh-add'] as const);
    if (bin === undefined) return;
    const knownHosts = join(dir, 'known_hosts_ssh2');
    const [algo, b64] = server.hostKeyLine.split(/\s+/);
    writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${algo} ${b64}\n`);
    const home = await tempDir('tsagent-fwd-home-');
    t.after(() => removeDir(home));
    const args = sshClientArgs({
      port: server.port,
      knownHostsPath: knownHosts,
      user: USER,
      extra: ['-A'],
      command: ['use-forwarded-agent'],
    });
    const ssh = run(bin.ssh, args, { env: cleanEnv({ HOME: home, SSH_AUTH_SOCK: daemon.socketPath }), timeoutMs: 60_000 });
    await farSide(t);
    const r = await ssh;
    assertFarSideOutput({ code: r.code ?? undefined, stdout: r.stdout });
  });

  it('ssh2 client relaying through forwardAgentChannel → real sshd: ssh-add -L and a second ssh hop on the far side', async (t) => {
    const bin = requirePeers(t, ['ssh', 'sshd', 'ssh-add'] as const);
    if (bin === undefined) return;
    const sshd = await startSshd({ authorizedKeys: [key.publicLine] }, t);
    const agent = new RelayingAgent(daemon.socketPath);
    const hostKeyBlob = Buffer.from(sshd.hostKeyPublicLine.split(/\s+/)[1], 'base64');
    const client = await connect({ port: sshd.port, username: sshd.user, agent, agentForward: true, hostKeyBlob });
    t.after(() => client.end());
    const forLogin = agent.relays.length;

    const listed = await exec(client, 'ssh-add -L');
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(key.publicLine.split(' ')[1]), listed.stdout);
    assert.ok(agent.relays.length > forLogin, 'sshd reached the agent through forwardAgentChannel');

    const hop = sshd
      .sshArgs([], ['echo', 'second-hop'])
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    const r = await exec(client, `ssh ${hop}`);
    assert.equal(r.code, 0, `${r.stderr}\n--- sshd ---\n${sshd.log().slice(-2000)}`);
    assert.equal(r.stdout.trim(), 'second-hop');
    const fp = key.fingerprint.replace(/[+/]/g, '\\$&');
    assert.equal(
      sshd.log().match(new RegExp(`Accepted publickey for ${sshd.user} .* ${fp}`, 'g'))?.length,
      2,
      'both logins used the key',
    );
  });
});
