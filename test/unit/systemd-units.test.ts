/**
 * The pure part of `tsagent service install`: quoting paths for ExecStart= per
 * systemd.syntax(7), filling the templates, recognising files tsagent wrote, and where the
 * files go (XDG_CONFIG_HOME / HOME). That systemd itself parses the result the same way is
 * proven with systemd-analyze in test/interop/systemd.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ServiceError } from '../../src/errors';
import { GENERATED_MARKER, isGenerated, renderTemplate, systemdPathWord } from '../../src/cli/systemd-units';
import { configHome, enableLink, serviceDirs, serviceFiles } from '../../src/cli/service-locations';

const ROOT = resolve(__dirname, '../../..');
const SERVICE_TEMPLATE = readFileSync(join(ROOT, 'systemd', 'tsagent.service'), 'utf8');
const SOCKET_TEMPLATE = readFileSync(join(ROOT, 'systemd', 'tsagent.socket'), 'utf8');

describe('systemdPathWord', () => {
  test('a plain absolute path is used as is', () => {
    assert.equal(systemdPathWord('/usr/bin/node', 'node'), '/usr/bin/node');
    assert.equal(systemdPathWord('/opt/node-v20.1/bin/node', 'node'), '/opt/node-v20.1/bin/node');
  });

  test('a space makes it a double-quoted word; % is doubled (specifiers apply inside quotes)', () => {
    assert.equal(systemdPathWord('/home/a b/node', 'node'), '"/home/a b/node"');
    assert.equal(systemdPathWord('/opt/50%/node', 'node'), '/opt/50%%/node');
    assert.equal(systemdPathWord('/opt/a b%c/node', 'node'), '"/opt/a b%%c/node"');
  });

  test('the path is normalised', () => {
    assert.equal(systemdPathWord('/usr//bin/./node', 'node'), '/usr/bin/node');
  });

  test('relative paths and characters systemd would misparse are refused with a ServiceError', () => {
    for (const bad of ['node', './node', '/a\nb', '/a\tb', '/a"b', "/a'b", '/a\\b', '/a$b', '/a${X}b', '/a\u007fb', '/a\u0000b']) {
      assert.throws(() => systemdPathWord(bad, 'node'), ServiceError, JSON.stringify(bad));
    }
  });
});

describe('renderTemplate', () => {
  const paths = { node: '/usr/bin/node', script: '/opt/tsagent/bin/tsagent.js' };

  test('fills ExecStart= and prepends the marker', () => {
    const out = renderTemplate(SERVICE_TEMPLATE, paths);
    assert.ok(out.startsWith(`${GENERATED_MARKER}\n`));
    assert.ok(isGenerated(out));
    const exec = out.split('\n').filter((l) => l.startsWith('ExecStart='));
    assert.deepEqual(exec, ['ExecStart=/usr/bin/node /opt/tsagent/bin/tsagent.js start -D -a %t/tsagent/agent.sock']);
  });

  test('no placeholder is left on a setting line; comment lines stay as written', () => {
    const out = renderTemplate(SERVICE_TEMPLATE, { node: '/x y/node', script: '/s/tsagent.js' });
    for (const line of out.split('\n')) {
      if (!line.startsWith('#')) assert.doesNotMatch(line, /@[A-Z_]+@/);
    }
    assert.match(out, /^ExecStart="\/x y\/node" \/s\/tsagent\.js start -D/m);
    assert.match(out, /^# {3}@NODE@ {8}the absolute path/m);
  });

  test('the socket template has no placeholder and is copied verbatim after the marker', () => {
    assert.equal(renderTemplate(SOCKET_TEMPLATE, paths), `${GENERATED_MARKER}\n${SOCKET_TEMPLATE}`);
  });

  test('an unknown placeholder or an unsafe path fails before anything is produced', () => {
    assert.throws(() => renderTemplate('[Service]\nExecStart=@NODE@ @OTHER@\n', paths), ServiceError);
    assert.throws(() => renderTemplate(SERVICE_TEMPLATE, { ...paths, node: '/a"b/node' }), ServiceError);
  });

  test('a file without the marker on its first line is not ours', () => {
    assert.equal(isGenerated('[Unit]\n'), false);
    assert.equal(isGenerated(`# my own\n${GENERATED_MARKER}\n`), false);
  });

  test('the service template keeps MemoryDenyWriteExecute off and the asked-for sandboxing on', () => {
    const settings = SERVICE_TEMPLATE.split('\n').filter((l) => /^[A-Za-z]/.test(l));
    assert.ok(!settings.some((l) => l.startsWith('MemoryDenyWriteExecute=')));
    for (const s of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=read-only',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'RestrictAddressFamilies=AF_UNIX',
      'LockPersonality=yes',
      'CapabilityBoundingSet=',
      'RestrictNamespaces=yes',
      'RestrictRealtime=yes',
      'RestrictSUIDSGID=yes',
      'SystemCallArchitectures=native',
      'ProtectKernelTunables=yes',
      'ProtectKernelModules=yes',
      'ProtectKernelLogs=yes',
      'ProtectControlGroups=yes',
      'ProtectClock=yes',
      'ProtectHostname=yes',
      'UMask=0077',
      'KillSignal=SIGTERM',
    ]) {
      assert.ok(settings.includes(s), s);
    }
    for (const s of ['ListenStream=%t/tsagent/agent.sock', 'SocketMode=0600', 'DirectoryMode=0700', 'Service=tsagent.service', 'WantedBy=sockets.target']) {
      assert.ok(SOCKET_TEMPLATE.split('\n').includes(s), s);
    }
  });
});

describe('service locations', () => {
  test('XDG_CONFIG_HOME wins when absolute; otherwise HOME/.config; neither is a ServiceError', () => {
    assert.equal(configHome({ XDG_CONFIG_HOME: '/cfg', HOME: '/home/u' }), '/cfg');
    assert.equal(configHome({ XDG_CONFIG_HOME: 'relative', HOME: '/home/u' }), '/home/u/.config');
    assert.equal(configHome({ HOME: '/home/u' }), '/home/u/.config');
    assert.throws(() => configHome({}), ServiceError);
  });

  test('default directories and the three targets', () => {
    const dirs = serviceDirs({}, { HOME: '/home/u' });
    assert.deepEqual(dirs, {
      unitDir: '/home/u/.config/systemd/user',
      envDir: '/home/u/.config/environment.d',
      defaultUnitDir: '/home/u/.config/systemd/user',
    });
    assert.deepEqual(
      serviceFiles(dirs).map((f) => f.target),
      ['/home/u/.config/systemd/user/tsagent.socket', '/home/u/.config/systemd/user/tsagent.service', '/home/u/.config/environment.d/tsagent.conf'],
    );
    assert.equal(enableLink(dirs), '/home/u/.config/systemd/user/sockets.target.wants/tsagent.socket');
  });

  test('--dir and --env-dir need no HOME', () => {
    const dirs = serviceDirs({ dir: '/t/u', envDir: '/t/e' }, {});
    assert.deepEqual(dirs, { unitDir: '/t/u', envDir: '/t/e', defaultUnitDir: undefined });
    assert.throws(() => serviceDirs({ dir: '/t/u' }, {}), ServiceError);
  });
});
