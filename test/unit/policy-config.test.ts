/**
 * The config file (POLICY.md §2): strict validation where every error names file, line and
 * key; bounded, non-blocking reads (directory, FIFO, 100 MB file); `~` expansion; and a fuzz
 * test holding the parse path to throwing nothing but ConfigError.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'smol-toml';
import { ConfigError } from '../../src/errors';
import { CONFIG_MAX_BYTES, defaultConfigPath, loadConfig, parseConfig } from '../../src/policy/config';
import { parseDuration, parseSize } from '../../src/policy/units';
import { removeDir, tempDir } from '../helpers/proc';

const ENV = { HOME: '/home/u' };
const FILE = '/etc/tsagent-test/config.toml';

function configError(source: string): ConfigError {
  try {
    parseConfig(source, FILE, ENV);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`no error for:\n${source}`);
}

test('a full example parses into typed settings', () => {
  const c = parseConfig(
    `[agent]
offer = "all"
max-offered = 5
known-hosts = ["~/.ssh/work_known_hosts"]
prompt = ["askpass", "terminal"]
prompt-timeout = "60s"
remember = "15m"
lifetime = "0"

[audit]
enabled = false
file = "~/audit.jsonl"
max-size = "10MB"
list = false

[[key]]
file = "~/.ssh/id_ed25519_github"
name = "github"
hosts = ["github.com", "*.github.com"]
unlock-for = "8h"
confirm = true

[[key]]
fingerprint = "SHA256:${'A'.repeat(43)}"
name = "added"

[[rule]]
keys = ["github", "SHA256:*"]
hosts = ["*.prod.example.com", "!db.prod.example.com"]
processes = ["/usr/bin/ssh", "git"]
parents = ["git"]
purposes = ["login", "sign:*"]
forwarded = true
action = "confirm"

[[rule]]
action = "deny"
`,
    FILE,
    ENV,
  );
  assert.equal(c.file, FILE);
  assert.equal(c.agent.offer, 'all');
  assert.equal(c.agent.maxOffered, 5);
  assert.deepEqual(c.agent.knownHosts, ['/home/u/.ssh/work_known_hosts']);
  assert.deepEqual(c.agent.prompt, ['askpass', 'terminal']);
  assert.equal(c.agent.promptTimeoutSeconds, 60);
  assert.equal(c.agent.rememberSeconds, 900);
  assert.equal(c.agent.lifetimeSeconds, 0);
  assert.deepEqual(c.audit, { enabled: false, file: '/home/u/audit.jsonl', maxSizeBytes: 10_000_000, list: false });
  assert.equal(c.keys.length, 2);
  assert.equal(c.keys[0].file, '/home/u/.ssh/id_ed25519_github');
  assert.equal(c.keys[0].unlockForSeconds, 8 * 3600);
  assert.equal(c.keys[0].confirm, true);
  assert.equal(c.keys[0].line, 16);
  assert.deepEqual(c.keys[0].hosts?.source, ['github.com', '*.github.com']);
  assert.equal(c.keys[1].fingerprint, `SHA256:${'A'.repeat(43)}`);
  assert.equal(c.rules.length, 2);
  assert.equal(c.rules[0].number, 1);
  assert.equal(c.rules[0].action, 'confirm');
  assert.equal(c.rules[0].forwarded, true);
  assert.equal(c.rules[1].number, 2);
  assert.equal(c.rules[1].keys, null);
});

test('an empty file means the defaults', () => {
  const c = parseConfig('', FILE, { HOME: '/home/u' });
  assert.equal(c.agent.offer, 'matching-first');
  assert.equal(c.agent.maxOffered, null);
  assert.equal(c.audit.enabled, true);
  assert.equal(c.audit.file, '/home/u/.local/state/tsagent/audit.jsonl');
  assert.deepEqual(c.keys, []);
  assert.deepEqual(c.rules, []);
});

test('every kind of error names the file, the line and the key', () => {
  const cases: Array<[string, number | null, string | null, RegExp]> = [
    ['a = 1\nb = [\n', 3, null, /invalid TOML/],
    ['[agent]\nofer = "all"\n', 2, 'agent.ofer', /unknown key/],
    ['[agnet]\n', 1, 'agnet', /unknown table/],
    ['[agent]\noffer = 3\n', 2, 'agent.offer', /must be a string/],
    ['[agent]\noffer = "some"\n', 2, 'agent.offer', /must be one of/],
    ['[agent]\nmax-offered = 0\n', 2, 'agent.max-offered', /at least 1/],
    ['[agent]\nremember = "15 minutes"\n', 2, 'agent.remember', /bad duration/],
    ['[agent]\nprompt-timeout = "0"\n', 2, 'agent.prompt-timeout', /longer than 0/],
    ['[agent]\nlifetime = "-1"\n', 2, 'agent.lifetime', /bad duration/],
    ['[agent]\nprompt = ["askpass", "carrier-pigeon"]\n', 2, 'agent.prompt[1]', /must be one of/],
    ['[audit]\nmax-size = "10 parsecs"\n', 2, 'audit.max-size', /bad size/],
    ['[audit]\nenabled = "yes"\n', 2, 'audit.enabled', /true or false/],
    ['\n\n[[key]]\nname = "x"\n', 3, 'key[1]', /exactly one of "file" and "fingerprint"/],
    ['[[key]]\nfile = "a"\nfingerprint = "SHA256:x"\n', 1, 'key[1]', /exactly one/],
    ['[[key]]\nfingerprint = "MD5:aa"\n', 2, 'key[1].fingerprint', /SHA256 fingerprint/],
    ['[[key]]\nfile = "a"\nhosts = ["ok", "bad host"]\n', 3, 'key[1].hosts', /blank/],
    ['[[key]]\nfile = "a"\nhosts = ["!only.neg"]\n', 3, 'key[1].hosts', /only negated/],
    ['[[key]]\nfile = "a"\nhosts = ["[h]:99999"]\n', 3, 'key[1].hosts', /\[NAME\]:PORT/],
    ['[[key]]\nfile = "a"\nunlock-for = "8 hours"\n', 3, 'key[1].unlock-for', /bad duration/],
    ['[[key]]\nfile = "a"\nshield = true\n', 3, 'key[1].shield', /unknown key/],
    [
      '[[key]]\nfile = "a"\nname = "x"\n[[key]]\nfile = "b"\nname = "x"\n',
      6,
      'key[2].name',
      /duplicate key name "x" \(also in key\[1\]\)/,
    ],
    ['[[key]]\nfile = "~/a"\n[[key]]\nfile = "~/a"\n', 4, 'key[2].file', /duplicate key file/],
    ['[[rule]]\nkeys = ["x"]\n', 1, 'rule[1]', /needs an "action"/],
    ['[[rule]]\naction = "allow"\n[[rule]]\naction = "maybe"\n', 4, 'rule[2].action', /must be one of/],
    ['[[rule]]\naction = "deny"\npurposes = ["sign:*", ""]\n', 3, 'rule[1].purposes', /empty pattern/],
    ['[[rule]]\naction = "deny"\nforwarded = "yes"\n', 3, 'rule[1].forwarded', /true or false/],
    ['[[rule]]\naction = "deny"\nprocesses = "git"\n', 3, 'rule[1].processes', /array of strings/],
    ['[[rule]]\naction = "deny"\nwhen = "always"\n', 3, 'rule[1].when', /unknown key/],
    ['[agent]\n[agent.sub]\n', 2, 'agent.sub', /unknown key/],
    ['agent = "x"\n', 1, 'agent', /must be a table/],
    ['[rule]\naction = "deny"\n', 1, 'rule', /array of tables/],
  ];
  for (const [source, line, key, detail] of cases) {
    const e = configError(source);
    assert.equal(e.file, FILE, source);
    assert.equal(e.line, line, `line for ${JSON.stringify(source)}: ${e.message}`);
    assert.equal(e.key, key, `key for ${JSON.stringify(source)}: ${e.message}`);
    assert.match(e.detail, detail, source);
    assert.ok(e.message.startsWith(`${FILE}${line === null ? '' : `:${line}`}: `), e.message);
    if (key !== null) assert.ok(e.message.includes(`${key}: `), e.message);
  }
});

test('durations and sizes', () => {
  assert.equal(parseDuration('60s'), 60);
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('8h'), 28800);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('90'), 90);
  for (const bad of ['', 'h', '1.5h', '-1', '1H', '1 h', '99999999999999999999'])
    assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(parseSize('10MB'), 10_000_000);
  assert.equal(parseSize('512KiB'), 524288);
  assert.equal(parseSize('100'), 100);
  for (const bad of ['', '0', '10mb', '1.5MB', 'MB', '-1MB']) assert.equal(parseSize(bad), undefined, bad);
});

test('the file: default path, missing, directory, FIFO, too large, ~ expansion', async (t) => {
  const dir = await tempDir('tsagent-cfg-');
  t.after(() => removeDir(dir));
  assert.equal(defaultConfigPath({ HOME: '/home/u' }), '/home/u/.config/tsagent/config.toml');
  assert.equal(defaultConfigPath({ HOME: '/home/u', XDG_CONFIG_HOME: '/x' }), '/x/tsagent/config.toml');

  // No file at the default path: the defaults. An explicit --config that is missing: an error.
  assert.equal(loadConfig(undefined, { HOME: dir }).file, null);
  assert.throws(
    () => loadConfig(join(dir, 'nope.toml'), { HOME: dir }),
    (e: unknown) => e instanceof ConfigError && /nope\.toml: no such file/.test(e.message),
  );

  mkdirSync(join(dir, 'adir'));
  assert.throws(
    () => loadConfig(join(dir, 'adir'), { HOME: dir }),
    (e: unknown) => e instanceof ConfigError && /is a directory/.test(e.message),
  );

  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // Must return at once (non-blocking open), not wait for a writer.
  assert.throws(
    () => loadConfig(fifo, { HOME: dir }),
    (e: unknown) => e instanceof ConfigError && /is a FIFO/.test(e.message),
  );

  assert.throws(
    () => loadConfig('/dev/zero', { HOME: dir }),
    (e: unknown) => e instanceof ConfigError && /is a device/.test(e.message),
  );

  const big = join(dir, 'big.toml');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 100 * 1024 * 1024);
  closeSync(fd);
  assert.throws(
    () => loadConfig(big, { HOME: dir }),
    (e: unknown) => e instanceof ConfigError && new RegExp(`larger than ${CONFIG_MAX_BYTES}`).test(e.message),
  );

  mkdirSync(join(dir, '.config', 'tsagent'), { recursive: true });
  writeFileSync(
    join(dir, '.config', 'tsagent', 'config.toml'),
    '[audit]\nfile = "~/log/a.jsonl"\n[agent]\nknown-hosts = ["kh"]\n',
  );
  const c = loadConfig(undefined, { HOME: dir });
  assert.equal(c.audit.file, join(dir, 'log', 'a.jsonl'));
  // Relative paths are relative to the config's own directory.
  assert.deepEqual(c.agent.knownHosts, [join(dir, '.config', 'tsagent', 'kh')]);

  writeFileSync(join(dir, 'bin.toml'), Buffer.from([0x61, 0x3d, 0x22, 0xff, 0xfe, 0x22, 0x0a]));
  assert.throws(
    () => loadConfig(join(dir, 'bin.toml'), { HOME: dir }),
    (e: unknown) => e instanceof ConfigError && /UTF-8/.test(e.message),
  );
});

test('fuzz: random TOML documents never raise anything but ConfigError', () => {
  const word = fc.constantFrom(
    'agent',
    'audit',
    'key',
    'rule',
    'offer',
    'max-offered',
    'hosts',
    'file',
    'name',
    'action',
    'purposes',
    'x',
    'unlock-for',
    'forwarded',
  );
  const scalar = fc.oneof(
    fc.string(),
    fc.constantFrom(
      'allow',
      'deny',
      'confirm',
      '60s',
      '0',
      '10MB',
      '*',
      '!x',
      '[h]:22',
      'SHA256:x',
      '~/a',
      'all',
      'matching-first',
    ),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.date({ noInvalidDate: true }),
  );
  const value = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      scalar,
      fc.array(tie('v'), { maxLength: 4 }),
      fc.dictionary(word, tie('v'), { maxKeys: 4 }),
    ),
  })).v;
  const doc = fc.dictionary(word, fc.oneof(value, fc.array(fc.dictionary(word, value, { maxKeys: 5 }), { maxLength: 3 })), {
    maxKeys: 5,
  });
  fc.assert(
    fc.property(doc, (d) => {
      let text: string;
      try {
        text = stringify(d);
      } catch {
        return; // not representable in TOML
      }
      try {
        parseConfig(text, FILE, ENV);
      } catch (err) {
        assert.ok(err instanceof ConfigError, `threw ${String(err)} for:\n${text}`);
      }
    }),
    { numRuns: 500 },
  );
  // And raw text: arbitrary strings, and mutations of a valid document.
  const valid = '[agent]\noffer = "all"\n[[key]]\nfile = "a"\nhosts = ["x"]\n[[rule]]\naction = "deny"\n';
  const mutated = fc
    .tuple(fc.nat(valid.length), fc.nat(8), fc.string({ maxLength: 8 }))
    .map(([at, del, ins]) => valid.slice(0, at) + ins + valid.slice(at + del));
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary' }), mutated), (text) => {
      try {
        parseConfig(text, FILE, ENV);
      } catch (err) {
        assert.ok(err instanceof ConfigError, `threw ${String(err)} for:\n${text}`);
      }
    }),
    { numRuns: 2000 },
  );
  // Absurd nesting is refused as a config error, not a crash.
  assert.throws(() => parseConfig(`a = ${'['.repeat(200_000)}`, FILE, ENV), ConfigError);
});
