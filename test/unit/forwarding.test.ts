/**
 * The forwarding pieces in process: exposeForwardedAgent over channels served by the real
 * keyring, and the bounds of the frame relay (in-flight cap, reply timeout, framing, one
 * reply per request, half-close). The interop file drives the same code through ssh2,
 * sshd, ssh and ssh-add.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/agent/keyring';
import { AgentSession } from '../../src/agent/session';
import { AgentClient } from '../../src/client/agent-client';
import { forwardAgentChannel } from '../../src/client/forwarding';
import { exposeForwardedAgent } from '../../src/client/forwarding-server';
import { relayFrames } from '../../src/client/frame-relay';
import { AgentNotPresentError, AgentProtocolError, AgentTimeoutError, ConnectionClosedError } from '../../src/errors';
import { decodeRequest, decodeResponse, encodeRequestFrame, encodeResponseFrame } from '../../src/protocol/codec';
import { FrameDecoder } from '../../src/protocol/frame';
import { privateKeyBodyFromKeyObject } from '../../src/keys/key-file';
import { serveConnection } from '../../src/server/connection';
import { duplexPair } from '../helpers/duplex-pair';
import { waitFor } from '../helpers/proc';

const LIST = encodeRequestFrame({ type: 'request-identities' });

/** Collects the complete frames arriving on `stream`. */
function frames(stream: Duplex): Buffer[] {
  const out: Buffer[] = [];
  const dec = new FrameDecoder();
  stream.on('data', (chunk: Buffer) => {
    for (const body of dec.push(chunk)) out.push(Buffer.from(body));
  });
  return out;
}

/** A channel opener whose channels are served by `keyring` in process. */
function keyringChannels(keyring: Keyring): { open: () => Promise<Duplex>; opened: () => number } {
  let n = 0;
  return {
    open: () => {
      const [ours, theirs] = duplexPair();
      void serveConnection(keyring, theirs, { session: new AgentSession({ connectionId: ++n }) });
      return Promise.resolve(ours);
    },
    opened: () => n,
  };
}

describe('exposeForwardedAgent', () => {
  it('a 0600 socket in a fresh 0700 directory; each connection gets its own channel; close removes both', async () => {
    const keyring = new Keyring();
    const channels = keyringChannels(keyring);
    const fwd = await exposeForwardedAgent(channels.open);
    assert.equal(fwd.env.SSH_AUTH_SOCK, fwd.socketPath);
    const sock = statSync(fwd.socketPath);
    assert.ok(sock.isSocket());
    assert.equal(sock.mode & 0o777, 0o600);
    const dir = fwd.socketPath.slice(0, fwd.socketPath.lastIndexOf('/'));
    assert.equal(statSync(dir).mode & 0o777, 0o700);

    const a = new AgentClient({ socketPath: fwd.socketPath, timeoutMs: 5000 });
    const b = new AgentClient({ socketPath: fwd.socketPath, timeoutMs: 5000 });
    const [key] = await a.addKey(generateKeyPairSync('ed25519').privateKey, { comment: 'through the forward' });
    const [seen] = await b.getKeys();
    assert.equal(seen?.comment, 'through the forward');
    assert.ok(seen.verify(Buffer.from('x'), await seen.sign(Buffer.from('x'))));
    assert.ok(key.blob.equals(seen.blob));
    assert.equal(channels.opened(), 2);

    const raw = connect(fwd.socketPath);
    const rawClosed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    await fwd.close();
    await rawClosed; // open connections are dropped
    assert.ok(!existsSync(fwd.socketPath) && !existsSync(dir), 'socket and directory removed');
    await assert.rejects(a.list(), AgentNotPresentError);
    a.close();
    b.close();
  });

  it('a channel that cannot be opened closes that connection only', async () => {
    const fwd = await exposeForwardedAgent(() => Promise.reject(new Error('client refused the channel')));
    try {
      await assert.rejects(new AgentClient({ socketPath: fwd.socketPath, timeoutMs: 5000 }).list(), ConnectionClosedError);
    } finally {
      await fwd.close();
    }
  });

  it('a channel that never opens is given up after openTimeoutMs', async () => {
    const fwd = await exposeForwardedAgent(() => new Promise<Duplex>(() => undefined), { openTimeoutMs: 200 });
    try {
      const started = Date.now();
      await assert.rejects(new AgentClient({ socketPath: fwd.socketPath, timeoutMs: 5000 }).list(), ConnectionClosedError);
      assert.ok(Date.now() - started < 3000);
    } finally {
      await fwd.close();
    }
  });
});

describe('relayFrames bounds', () => {
  it('at most maxInFlight requests reach the agent until it answers', async () => {
    const [client, clientEnd] = duplexPair();
    const [agent, agentEnd] = duplexPair();
    const relay = relayFrames(clientEnd, agentEnd, { maxInFlight: 3 });
    const atAgent = frames(agent);
    const atClient = frames(client);
    client.write(Buffer.concat(Array.from({ length: 10 }, () => LIST)));
    await waitFor(() => atAgent.length === 3, { timeoutMs: 2000, what: '3 requests at the agent' });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(atAgent.length, 3, 'no fourth request before a reply');
    agent.write(encodeResponseFrame({ type: 'identities', identities: [] }));
    await waitFor(() => atClient.length === 1 && atAgent.length === 4, { timeoutMs: 2000, what: 'reply out, next request in' });
    assert.deepEqual(decodeResponse(atClient[0]), { type: 'identities', identities: [] });
    assert.deepEqual(decodeRequest(atAgent[3]), { type: 'request-identities' });
    relay.close();
    assert.ok((await relay.closed) instanceof ConnectionClosedError);
  });

  it('an agent that does not answer within replyTimeoutMs tears both sides down', async () => {
    const [client, clientEnd] = duplexPair();
    const [, agentEnd] = duplexPair();
    const relay = relayFrames(clientEnd, agentEnd, { replyTimeoutMs: 200 });
    client.write(LIST);
    const started = Date.now();
    assert.ok((await relay.closed) instanceof AgentTimeoutError);
    assert.ok(Date.now() - started < 3000);
    assert.ok(clientEnd.destroyed && agentEnd.destroyed);
  });

  it('a frame over 256 KiB from the client is never passed on', async () => {
    const [client, clientEnd] = duplexPair();
    const [agent, agentEnd] = duplexPair();
    const relay = relayFrames(clientEnd, agentEnd);
    const atAgent = frames(agent);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(256 * 1024 + 1);
    client.write(header);
    const reason = await relay.closed;
    assert.ok(reason instanceof AgentProtocolError && /exceeds/.test(reason.message));
    assert.equal(atAgent.length, 0);
    assert.ok(clientEnd.destroyed && agentEnd.destroyed);
  });

  it('a reply nobody asked for tears both sides down', async () => {
    const [, clientEnd] = duplexPair();
    const [agent, agentEnd] = duplexPair();
    const relay = relayFrames(clientEnd, agentEnd);
    agent.write(encodeResponseFrame({ type: 'success' }));
    assert.ok((await relay.closed) instanceof AgentProtocolError);
  });

  it('a client that half-closes after its request still gets the reply', async () => {
    const keyring = new Keyring();
    const { open } = keyringChannels(keyring);
    const [client, clientEnd] = duplexPair();
    const relay = relayFrames(clientEnd, await open());
    const atClient = frames(client);
    client.end(LIST);
    assert.equal(await relay.closed, undefined);
    await waitFor(() => atClient.length === 1, { timeoutMs: 2000, what: 'the reply' });
    assert.deepEqual(decodeResponse(atClient[0]), { type: 'identities', identities: [] });
  });
});

describe('forwardAgentChannel without a local agent', () => {
  it('destroys the channel and reports AgentNotPresentError', async () => {
    const [, channel] = duplexPair();
    const relay = forwardAgentChannel(channel, { socketPath: '/nonexistent/agent.sock' });
    assert.ok((await relay.closed) instanceof AgentNotPresentError);
    assert.ok(channel.destroyed);

    const saved = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    try {
      const [, other] = duplexPair();
      assert.ok((await forwardAgentChannel(other).closed) instanceof AgentNotPresentError);
      assert.ok(other.destroyed);
    } finally {
      if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
    }
  });
});

describe('relay back-pressure', () => {
  it('a client that does not read its replies stops being read: requests wait, none is lost', { timeout: 60_000 }, async () => {
    const keyring = new Keyring();
    // ~100 KB per list reply: every one the relay frames anew.
    for (let i = 0; i < 100; i++) {
      await keyring.add(
        { key: privateKeyBodyFromKeyObject(generateKeyPairSync('ed25519').privateKey), comment: `${i}-${'c'.repeat(900)}` },
        AgentSession.inProcess(),
      );
    }
    let reachedAgent = 0;
    const fwd = await exposeForwardedAgent(() => {
      const [ours, theirs] = duplexPair();
      theirs.on('data', (chunk: Buffer) => {
        reachedAgent += chunk.length / LIST.length; // only LIST frames are sent
      });
      void serveConnection(keyring, theirs, { session: new AgentSession({ connectionId: 1 }) });
      return Promise.resolve(ours);
    });
    const sock = connect(fwd.socketPath);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      sock.pause();
      const SENT = 2000;
      sock.write(Buffer.concat(Array.from({ length: SENT }, () => LIST)));
      // A bounded look: whatever the relay has passed on by now, it must have stopped.
      await waitFor(() => reachedAgent > 0, { timeoutMs: 5000, what: 'the first request at the agent' });
      await new Promise((r) => setTimeout(r, 500));
      const passed = reachedAgent;
      assert.ok(passed < SENT / 4, `the relay stopped reading: ${passed} of ${SENT} requests passed on`);
      // Now read: every request is answered, in full.
      const dec = new FrameDecoder();
      let replies = 0;
      sock.on('data', (chunk: Buffer) => {
        replies += dec.push(chunk).length;
      });
      sock.resume();
      await waitFor(() => replies === SENT, { timeoutMs: 50_000, what: 'all replies once the client reads' });
    } finally {
      sock.destroy();
      await fwd.close();
    }
  });
});
