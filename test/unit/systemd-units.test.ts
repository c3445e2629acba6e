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
const CONTROL_TEMPLATE = readFileSync(join(ROOT, 'systemd', 'tsagent-control.socket'), 'utf8');

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
    for (const bad of [
      'node',
      './node',
      '/a\nb',
      '/a\tb',
      '/a"b',
      "/a'b",
      '/a\\b',
      '/a$b',
      '/a${X}b',
      '/a\u007fb',
      '/a\u0000b',
    ]) {
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

  test("the service template: seccomp sandboxing on; no user namespace, so peers' /proc/PID/exe stays readable", () => {
    const settings = SERVICE_TEMPLATE.split('\n').filter((l) => /^[A-Za-z]/.test(l));
    assert.ok(!settings.some((l) => l.startsWith('MemoryDenyWriteExecute=')));
    // A user manager applies these only inside a user namespace, where the kernel refuses
    // /proc/PID/exe of every peer (measured: test/interop/systemd-user-manager.test.ts).
    for (const name of [
      'PrivateUsers',
      'ProtectSystem',
      'ProtectHome',
      'PrivateTmp',
      'PrivateDevices',
      'CapabilityBoundingSet',
      'ProtectProc',
    ]) {
      assert.ok(!settings.some((l) => l.startsWith(`${name}=`)), name);
    }
    for (const s of [
      'NoNewPrivileges=yes',
      'RestrictAddressFamilies=AF_UNIX',
      'LockPersonality=yes',
      'RestrictNamespaces=yes',
      'RestrictRealtime=yes',
      'RestrictSUIDSGID=yes',
      'SystemCallArchitectures=native',
      'SystemCallFilter=@system-service @pkey',
      'SystemCallFilter=~@privileged @resources',
      'SystemCallErrorNumber=EPERM',
      'KeyringMode=private',
      'UMask=0077',
      'KillSignal=SIGTERM',
      'PartOf=tsagent.socket',
    ]) {
      assert.ok(settings.includes(s), s);
    }
  });

  test('the socket units: agent and control sockets, named, removed on stop', () => {
    const lines = (t: string): string[] => t.split('\n');
    for (const s of [
      'ListenStream=%t/tsagent/agent.sock',
      'FileDescriptorName=agent',
      'SocketMode=0600',
      'DirectoryMode=0700',
      'RemoveOnStop=yes',
      'Service=tsagent.service',
      'Wants=tsagent-control.socket',
      'WantedBy=sockets.target',
    ]) {
      assert.ok(lines(SOCKET_TEMPLATE).includes(s), s);
    }
    for (const s of [
      'ListenStream=%t/tsagent/agent.sock.ctl',
      'FileDescriptorName=control',
      'SocketMode=0600',
      'DirectoryMode=0700',
      'RemoveOnStop=yes',
      'Service=tsagent.service',
      'PartOf=tsagent.socket',
    ]) {
      assert.ok(lines(CONTROL_TEMPLATE).includes(s), s);
    }
    assert.ok(!CONTROL_TEMPLATE.includes('[Install]'), 'the control socket comes with tsagent.socket, it is not enabled itself');
  });
});

describe('service locations', () => {
  test('XDG_CONFIG_HOME wins when absolute; otherwise HOME/.config; neither is a ServiceError', () => {
    assert.equal(configHome({ XDG_CONFIG_HOME: '/cfg', HOME: '/home/u' }), '/cfg');
    assert.equal(configHome({ XDG_CONFIG_HOME: 'relative', HOME: '/home/u' }), '/home/u/.config');
    assert.equal(configHome({ HOME: '/home/u' }), '/home/u/.config');
    assert.throws(() => configHome({}), ServiceError);
  });

  test('default directories and the four targets', () => {
    const dirs = serviceDirs({}, { HOME: '/home/u' });
    assert.deepEqual(dirs, {
      unitDir: '/home/u/.config/systemd/user',
      envDir: '/home/u/.config/environment.d',
      defaultUnitDir: '/home/u/.config/systemd/user',
    });
    assert.deepEqual(
      serviceFiles(dirs).map((f) => f.target),
      [
        '/home/u/.config/systemd/user/tsagent.socket',
        '/home/u/.config/systemd/user/tsagent-control.socket',
        '/home/u/.config/systemd/user/tsagent.service',
        '/home/u/.config/environment.d/tsagent.conf',
      ],
    );
    assert.equal(enableLink(dirs), '/home/u/.config/systemd/user/sockets.target.wants/tsagent.socket');
  });

  test('--dir and --env-dir need no HOME', () => {
    const dirs = serviceDirs({ dir: '/t/u', envDir: '/t/e' }, {});
    assert.deepEqual(dirs, { unitDir: '/t/u', envDir: '/t/e', defaultUnitDir: undefined });
    assert.throws(() => serviceDirs({ dir: '/t/u' }, {}), ServiceError);
  });
});
