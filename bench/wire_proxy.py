"""Counts the bytes that cross a PostgreSQL connection: listens on 127.0.0.1:PORT, forwards every
connection to the server's Unix socket, and writes `to_server from_server` (bytes) to OUT when it
gets SIGTERM. Usage: python3 bench/wire_proxy.py PORT SOCKET OUT"""
import signal
import socket
import sys
import threading

port, target, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
counts = {"to_server": 0, "from_server": 0}
lock = threading.Lock()


def pump(src, dst, key):
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            with lock:
                counts[key] += len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def stop(*_):
    with open(out, "w") as f:
        f.write(f"{counts['to_server']} {counts['from_server']}\n")
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen()
while True:
    client, _ = listener.accept()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.connect(target)
    threading.Thread(target=pump, args=(client, server, "to_server"), daemon=True).start()
    threading.Thread(target=pump, args=(server, client, "from_server"), daemon=True).start()
