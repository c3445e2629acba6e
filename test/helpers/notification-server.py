#!/usr/bin/python3
"""
A small org.freedesktop.Notifications server for tests (Desktop Notifications Specification
1.2), registered with libdbus (python3-dbus) on the bus that DBUS_SESSION_BUS_ADDRESS names.

Usage: notification-server.py [--no-actions]
  --no-actions   GetCapabilities omits "actions" (a server that cannot take answers)

It reports on stdout and takes orders on stdin, one JSON object a line:
  stdout  {"event":"ready"}                 the bus name is owned
          {"event":"capabilities"}          GetCapabilities was called
          {"event":"notify","id":N,"app":..,"replaces":..,"icon":..,"summary":..,"body":..,
           "actions":[..],"hints":{..},"timeout":..}
          {"event":"close","id":N}          CloseNotification was called (NotificationClosed 3)
  stdin   {"cmd":"invoke","id":N,"action":"allow"}   ActionInvoked, then NotificationClosed(N, 2)
          {"cmd":"dismiss","id":N}                   NotificationClosed(N, 2)
          {"cmd":"expire","id":N}                    NotificationClosed(N, 1)
"""
import json
import os
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"

# NotificationClosed reasons (spec: 1 expired, 2 dismissed by the user, 3 CloseNotification).
EXPIRED, DISMISSED, CLOSED_BY_CALL = 1, 2, 3


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def plain(value):
    """dbus types -> JSON-able values (hints are a{sv})."""
    if isinstance(value, (dbus.Boolean,)):
        return bool(value)
    if isinstance(value, (dbus.String, dbus.ObjectPath, dbus.Signature)):
        return str(value)
    if isinstance(value, (dbus.Byte, dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64)):
        return int(value)
    if isinstance(value, dbus.Double):
        return float(value)
    if isinstance(value, (dbus.Array, list, tuple, dbus.Struct)):
        return [plain(v) for v in value]
    if isinstance(value, (dbus.Dictionary, dict)):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


class Notifications(dbus.service.Object):
    def __init__(self, bus, with_actions):
        super().__init__(bus, PATH)
        self.with_actions = with_actions
        self.next_id = 1
        self.open = set()

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self):
        emit({"event": "capabilities"})
        caps = ["body"]
        if self.with_actions:
            caps.append("actions")
        return caps

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        nid = int(replaces) if int(replaces) in self.open else self.next_id
        if nid == self.next_id:
            self.next_id += 1
        self.open.add(nid)
        emit({
            "event": "notify", "id": nid, "app": str(app), "replaces": int(replaces), "icon": str(icon),
            "summary": str(summary), "body": str(body), "actions": [str(a) for a in actions],
            "hints": plain(hints), "timeout": int(timeout),
        })
        return dbus.UInt32(nid)

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        emit({"event": "close", "id": int(nid)})
        self.finish(int(nid), CLOSED_BY_CALL)

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("tsagent-test", "tsagent", "1", "1.2")

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, action):
        pass

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    def finish(self, nid, reason):
        if nid in self.open:
            self.open.discard(nid)
            self.NotificationClosed(dbus.UInt32(nid), dbus.UInt32(reason))

    def order(self, cmd):
        nid = int(cmd.get("id", 0))
        what = cmd.get("cmd")
        if what == "invoke":
            if nid in self.open:
                self.ActionInvoked(dbus.UInt32(nid), str(cmd.get("action", "")))
            self.finish(nid, DISMISSED)
        elif what == "dismiss":
            self.finish(nid, DISMISSED)
        elif what == "expire":
            self.finish(nid, EXPIRED)


def main():
    with_actions = "--no-actions" not in sys.argv[1:]
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    server = Notifications(bus, with_actions)
    name = dbus.service.BusName(IFACE, bus, do_not_queue=True)
    loop = GLib.MainLoop()
    pending = [b""]

    def on_stdin(fd, condition):
        chunk = os.read(fd, 65536)
        if not chunk:
            loop.quit()
            return False
        pending[0] += chunk
        while b"\n" in pending[0]:
            line, pending[0] = pending[0].split(b"\n", 1)
            if line.strip():
                server.order(json.loads(line))
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, on_stdin)
    emit({"event": "ready", "name": str(name.get_name())})
    loop.run()


if __name__ == "__main__":
    main()
