/**
 * paramiko (the model of this client's API) and getKeys() read the same tsagent alike: same
 * keys, same order, same names, same MD5 fingerprints; paramiko's signatures through the
 * agent verify with AgentKey.verify.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AgentClient } from '../../src/client/agent-client';
import { getKeys } from '../../src/client/get-keys';
import { fingerprint } from '../../src/keys/fingerprint';
import { startAgentDaemon } from '../helpers/daemons';
import type { AgentDaemon } from '../helpers/daemons';
import { generateKey, makeCA, signUserCert } from '../helpers/keys';
import { requirePeer, requirePython } from '../helpers/peers';
import { cleanEnv, removeDir, runOk, tempDir } from '../helpers/proc';

const DATA = 'data paramiko signs through tsagent';

/** Lists the agent's keys with paramiko and signs DATA with each (rsa-sha2-512 for RSA). */
const SCRIPT = `
import json, paramiko
agent = paramiko.Agent()
out = []
for k in agent.get_keys():
    alg = "rsa-sha2-512" if k.get_name().startswith("ssh-rsa") else None
    out.append({
        "name": k.get_name(),
        "base64": k.get_base64(),
        "md5": k.get_fingerprint().hex(),
        "signature": k.sign_ssh_data(${JSON.stringify(DATA)}.encode(), alg).hex(),
    })
agent.close()
print(json.dumps(out))
`;

interface ParamikoKey {
  readonly name: string;
  readonly base64: string;
  readonly md5: string;
  readonly signature: string;
}

/** paramiko's get_fingerprint() is the raw MD5 digest; ssh-keygen prints it as MD5:aa:bb:… */
const md5Text = (hex: string): string => 'MD5:' + hex.replace(/(..)(?!$)/g, '$1:');

describe('paramiko and getKeys() agree', () => {
  let dir: string;
  let daemon: AgentDaemon;

  before(async () => {
    dir = await tempDir('tsagent-paramiko-');
    daemon = await startAgentDaemon('tsagent');
  });
  after(async () => {
    await daemon?.stop();
    if (dir) await removeDir(dir);
  });

  it('same keys, order, names and MD5 fingerprints; paramiko signatures verify', async (t) => {
    const python = requirePython(t, 'paramiko');
    if (python === undefined || requirePeer(t, 'ssh-keygen') === undefined) return;
    const client = new AgentClient({ socketPath: daemon.socketPath });
    t.after(() => client.close());
    const ca = await makeCA(dir);
    for (const type of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048'] as const) {
      const key = await generateKey(dir, type, `paramiko-${type}`);
      const certificate =
        type === 'ed25519' ? await signUserCert(ca, key.publicPath, { principals: ['tester'], identity: 'p' }) : undefined;
      await client.addKey({ path: key.privatePath }, certificate !== undefined ? { certificate } : {});
    }

    const r = await runOk(python, ['-c', SCRIPT], { env: cleanEnv({ SSH_AUTH_SOCK: daemon.socketPath }), timeoutMs: 60_000 });
    const theirs = JSON.parse(r.stdout) as ParamikoKey[];
    const ours = await getKeys({ socketPath: daemon.socketPath });
    assert.equal(theirs.length, 6);
    assert.deepEqual(
      theirs.map((k) => [k.name, k.base64]),
      ours.map((k) => [k.type, k.base64]),
    );
    for (const [i, key] of ours.entries()) {
      const p = theirs[i];
      if (key.type.endsWith('-cert-v01@openssh.com')) {
        // paramiko hashes the whole certificate blob; ssh-keygen (and AgentKey) the certified key.
        assert.equal(md5Text(p.md5), fingerprint(key.blob, 'md5'));
        assert.notEqual(md5Text(p.md5), key.fingerprint('md5'));
      } else {
        assert.equal(md5Text(p.md5), key.fingerprint('md5'), key.type);
      }
      assert.ok(key.verify(Buffer.from(DATA), Buffer.from(p.signature, 'hex')), `paramiko's ${key.type} signature verifies`);
    }
  });
});
