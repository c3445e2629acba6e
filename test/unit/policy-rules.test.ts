/**
 * The PolicyPort of POLICY.md §2 (RulePolicy): list selection per destination and the sign
 * decision, with literal host names proven against a real known_hosts line for a host key
 * made by ssh-keygen (plain and `ssh-keygen -H` hashed).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { KeyView, SignQuestion } from '../../src/agent/ports';
import type { Destination, ProcessInfo, Purpose } from '../../src/context/types';
import { parseConfig } from '../../src/policy/config';
import type { HostKeyOracle } from '../../src/policy/host-patterns';
import { RulePolicy } from '../../src/policy/rules';
import { fingerprintOf, generateKey } from '../helpers/keys';
import { requirePeer } from '../helpers/peers';
import { removeDir, runOk, tempDir } from '../helpers/proc';

function view(name: string | null, comment: string, fp: string, confirm = false): KeyView {
  return {
    blob: Buffer.from(fp),
    fingerprint: fp,
    comment,
    type: 'ssh-ed25519',
    name,
    source: name === null ? 'added' : 'config',
    confirm,
  };
}

const FP = (c: string): string => `SHA256:${c.repeat(43)}`;
const GH = view('github', 'me@gh', FP('G'));
const WORK = view('work', 'me@work', FP('W'));
const PLAIN = view(null, 'plain@laptop', FP('P'));
const ASKED = view(null, 'asked@laptop', FP('C'), true);

function proc(exe: string | null, parents: string[] | null = []): ProcessInfo {
  return { pid: 1, uid: 1000, exe, argv: null, unit: null, parents };
}

function dest(names: string[], extra: Partial<Destination> = {}): Destination {
  return { hostKey: FP('H'), names, host: names[0] ?? null, port: null, user: 'git', forwarded: false, via: [], ...extra };
}

function policyFor(toml: string, oracle?: HostKeyOracle): RulePolicy {
  const config = parseConfig(toml, '/t/config.toml', { HOME: '/home/u' });
  // The [[key]] file= tables stand for the github and work keys above.
  const files = new Map<string, string>([
    ['/home/u/gh', GH.fingerprint],
    ['/home/u/work', WORK.fingerprint],
  ]);
  return RulePolicy.fromConfig(config, files, oracle);
}

function q(
  key: KeyView,
  purpose: Purpose,
  destination: Destination | null,
  process: ProcessInfo | null = proc('/usr/bin/ssh'),
): SignQuestion {
  return { key, purpose, destination, process };
}

const KEYS = `
[[key]]
file = "~/gh"
name = "github"
hosts = ["github.com", "*.github.com"]
[[key]]
file = "~/work"
name = "work"
hosts = ["*.corp.example"]
`;

test('unbound connections see every key, unchanged', () => {
  const p = policyFor(KEYS);
  const all = [PLAIN, GH, WORK];
  assert.equal(p.selectForList(all, null), all);
});

test('bound connections: hosts filter, matching-first order, max-offered', () => {
  const p = policyFor(`[agent]\nmax-offered = 2\n${KEYS}`);
  const all = [PLAIN, ASKED, WORK, GH];
  assert.deepEqual(p.selectForList(all, dest(['github.com'])), [GH, PLAIN]);
  assert.deepEqual(p.selectForList(all, dest(['api.github.com'])), [GH, PLAIN]);
  assert.deepEqual(p.selectForList(all, dest(['db.corp.example'])), [WORK, PLAIN]);
  assert.deepEqual(p.selectForList(all, dest([])), [PLAIN, ASKED]);
  const unlimited = policyFor(KEYS);
  assert.deepEqual(unlimited.selectForList(all, dest(['github.com'])), [GH, PLAIN, ASKED]);
  const openssh = policyFor(`[agent]\noffer = "all"\n${KEYS}`);
  assert.deepEqual(openssh.selectForList(all, dest(['github.com'])), [PLAIN, ASKED, GH]);
});

test('an equal selection is the same array again (cached replies stay valid), a different one is new', () => {
  const p = policyFor(KEYS);
  const all = [PLAIN, ASKED, WORK, GH];
  const first = p.selectForList(all, dest(['github.com']));
  assert.equal(p.selectForList(all, dest(['github.com'])), first, 'another connection to the same host');
  const work = p.selectForList(all, dest(['db.corp.example']));
  assert.notEqual(work, first);
  assert.deepEqual(work, [WORK, PLAIN, ASKED]);
  assert.deepEqual(p.selectForList(all, dest(['github.com'])), [GH, PLAIN, ASKED]);
  const plainOnly = [PLAIN, ASKED];
  assert.equal(p.selectForList(plainOnly, dest(['github.com'])), plainOnly, 'nothing reordered: the offered array itself');
});

test('a key with hosts signs a login only for a matching destination; SSHSIG is left to rules', () => {
  const p = policyFor(KEYS);
  assert.deepEqual(p.decideSign(q(GH, 'login', dest(['github.com']))), { action: 'allow', reason: 'default' });
  assert.deepEqual(p.decideSign(q(GH, 'login', dest(['gitlab.com']))), { action: 'deny', reason: 'hosts' });
  assert.deepEqual(p.decideSign(q(GH, 'login', null)), { action: 'deny', reason: 'hosts' });
  assert.deepEqual(p.decideSign(q(GH, 'sign:git', null)), { action: 'allow', reason: 'default' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', null)), { action: 'allow', reason: 'default' });
});

test('first matching rule wins, numbered from 1 in file order; each field must match', () => {
  const p = policyFor(`${KEYS}
[[rule]]
purposes = ["sign:git"]
parents = ["git"]
action = "allow"
[[rule]]
purposes = ["sign:git"]
action = "deny"
[[rule]]
keys = ["work"]
forwarded = true
action = "confirm"
[[rule]]
processes = ["/opt/evil/*"]
action = "deny"
[[rule]]
keys = ["plain@*"]
hosts = ["*.prod.example", "!db.prod.example"]
action = "deny"
[[rule]]
keys = ["${FP('P')}"]
processes = ["scp"]
action = "confirm"
`);
  const git = proc('/usr/bin/ssh-keygen', ['/usr/lib/git-core/git', '/usr/bin/bash']);
  assert.deepEqual(p.decideSign(q(PLAIN, 'sign:git', null, git)), { action: 'allow', reason: 'rule 1' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'sign:git', null, proc('/usr/bin/ssh-keygen', ['/usr/bin/bash']))), {
    action: 'deny',
    reason: 'rule 2',
  });
  assert.deepEqual(p.decideSign(q(PLAIN, 'sign:git', null, proc('/usr/bin/ssh-keygen', null))), {
    action: 'deny',
    reason: 'rule 2',
  });
  assert.deepEqual(p.decideSign(q(PLAIN, 'sign:file', null, git)), { action: 'allow', reason: 'default' });
  assert.deepEqual(p.decideSign(q(WORK, 'login', dest(['a.corp.example'], { forwarded: true }))), {
    action: 'confirm',
    reason: 'rule 3',
  });
  assert.deepEqual(p.decideSign(q(WORK, 'login', dest(['a.corp.example']))), { action: 'allow', reason: 'default' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', dest(['x']), proc('/opt/evil/bin/ssh'))), { action: 'deny', reason: 'rule 4' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', dest(['web.prod.example']))), { action: 'deny', reason: 'rule 5' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', dest(['db.prod.example']))), { action: 'allow', reason: 'default' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', dest(['x']), proc('/usr/bin/scp'))), { action: 'confirm', reason: 'rule 6' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', dest(['x']), proc(null))), { action: 'allow', reason: 'default' });
});

test('confirm keys (ssh-add -c, or confirm = true) are confirmed unless a rule denies', () => {
  const fpTable = `[[key]]\nfingerprint = "${PLAIN.fingerprint}"\nconfirm = true\n`;
  const p = policyFor(
    `${fpTable}[[rule]]\nprocesses = ["evil"]\naction = "deny"\n[[rule]]\nprocesses = ["ssh"]\naction = "allow"\n`,
  );
  assert.deepEqual(p.decideSign(q(ASKED, 'login', null)), { action: 'confirm', reason: 'key confirm' });
  assert.deepEqual(p.decideSign(q(ASKED, 'login', null, proc('/usr/bin/scp'))), { action: 'confirm', reason: 'key confirm' });
  assert.deepEqual(p.decideSign(q(ASKED, 'login', null, proc('/bin/evil'))), { action: 'deny', reason: 'rule 1' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', null)), { action: 'confirm', reason: 'key confirm' });
});

/** name -> keys over one known_hosts file, plain and hashed (|1|salt|hmac), as POLICY.md §1 describes. */
function knownHostsOracle(path: string): HostKeyOracle {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
  return {
    nameHasKey(name, port, hostKey) {
      const wanted = port === null ? name : `[${name}]:${port}`;
      return lines.some((l) => {
        const [hosts, , b64] = l.split(/\s+/);
        if (hosts === undefined || b64 === undefined || fingerprintOf(Buffer.from(b64, 'base64')) !== hostKey) return false;
        if (hosts.startsWith('|1|')) {
          const [, , salt, mac] = hosts.split('|');
          return createHmac('sha1', Buffer.from(salt, 'base64')).update(wanted).digest('base64') === mac;
        }
        return hosts.split(',').includes(wanted);
      });
    },
  };
}

test('literal host names are proven by a known_hosts line carrying the bound host key', async (t) => {
  const keygen = requirePeer(t, 'ssh-keygen');
  if (keygen === undefined) return;
  const dir = await tempDir('tsagent-rules-');
  t.after(() => removeDir(dir));
  const hostKey = await generateKey(dir, 'ed25519', 'host');
  const other = await generateKey(dir, 'ed25519', 'other');
  const kh = join(dir, 'known_hosts');
  const [algo, b64] = hostKey.publicLine.split(' ');
  await writeFile(kh, `github.com ${algo} ${b64}\n[git.example]:2222 ${algo} ${b64}\nhashed.example ${algo} ${b64}\n`);
  // Hash the file the way users do; the plain names go away, the proof stays.
  await runOk(keygen, ['-H', '-f', kh]);
  assert.doesNotMatch(readFileSync(kh, 'utf8'), /github\.com/);
  const oracle = knownHostsOracle(kh);
  const p = policyFor(`${KEYS}[[rule]]\nhosts = ["[git.example]:2222"]\naction = "confirm"\n`, oracle);
  // The destination proves no names (hashed file, no candidates): the literal pattern asks the oracle.
  const bound = dest([], { hostKey: hostKey.fingerprint });
  assert.deepEqual(p.selectForList([PLAIN, GH], bound), [GH, PLAIN]);
  // Its hosts match; then rule 1 matches too, since the same key serves [git.example]:2222.
  assert.deepEqual(p.decideSign(q(GH, 'login', bound)), { action: 'confirm', reason: 'rule 1' });
  const impostor = dest([], { hostKey: other.fingerprint });
  assert.deepEqual(p.selectForList([PLAIN, GH], impostor), [PLAIN]);
  assert.deepEqual(p.decideSign(q(GH, 'login', impostor)), { action: 'deny', reason: 'hosts' });
  // The port-specific literal: proven for the bound key, not for the other one.
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', bound)), { action: 'confirm', reason: 'rule 1' });
  assert.deepEqual(p.decideSign(q(PLAIN, 'login', impostor)), { action: 'allow', reason: 'default' });
});
