#!/usr/bin/python3
"""notify_listen.py SOCKET STATUS_DIR OUT — a stand-in for systemd's end of
the sd_notify protocol: binds a datagram socket (a path, or "@name" for the
abstract namespace) and writes one JSON line per datagram to OUT, with the
status files present in STATUS_DIR at the moment it arrived. Exits after
STOPPING=1 (or when killed). Prints "listening" once bound."""
import json, os, socket, sys, time

addr, status_dir, out = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
print("listening", flush=True)
with open(out, "a") as f:
    while True:
        msg = s.recv(4096).decode()
        try:
            files = sorted(n for n in os.listdir(status_dir) if n.endswith(".status.json"))
        except FileNotFoundError:
            files = []
        f.write(json.dumps({"t": time.monotonic(), "msg": msg, "status_files": files}) + "\n")
        f.flush()
        if "STOPPING=1" in msg.split("\n"):
            break
