#!/usr/bin/python3
"""An SMTP server for the mail tests, built on Debian's aiosmtpd.

Run with /usr/bin/python3 (Debian's python3-aiosmtpd). It listens on
127.0.0.1 on a free port (or --port), writes that port to --port-file once it accepts
connections, and stores every message it accepts as OUT/N.eml (N counts
from 1; the file's mtime is when it arrived), with OUT/N.session naming the
session (client address and port) that carried it. With --cert and --key it
offers STARTTLS, requires it before MAIL, and offers AUTH PLAIN and LOGIN
only over TLS (--only-auth: just one of them), accepting exactly --user
and --password (anything else gets 535). It runs until SIGTERM or SIGINT,
or until its parent exits. SMTP_TEST_LOG=INFO (or DEBUG) in the environment
logs the sessions.
"""
import argparse
import logging
import os
import signal
import socket
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    """Saves each accepted message as OUT/N.eml, written whole then renamed."""

    def __init__(self, out):
        self.out = out
        # A restarted server numbers on after the messages already stored.
        self.count = len([n for n in os.listdir(out) if n.endswith(".eml")])
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            path = os.path.join(self.out, "%d.eml" % self.count)
        # Which session carried it (the client's address and port), written
        # before the message appears.
        with open(path[:-len(".eml")] + ".session", "w") as f:
            f.write("%s:%s\n" % tuple(session.peer[:2]))
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK stored"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False)  # handled defaults to True
    return check


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user", required=False)
    ap.add_argument("--password", required=False)
    ap.add_argument("--port", type=int, default=0,
                    help="listen here (a restart keeps its port); 0: a free one")
    ap.add_argument("--only-auth", choices=["PLAIN", "LOGIN"],
                    help="offer this AUTH mechanism alone")
    args = ap.parse_args()
    logging.basicConfig(level=os.environ.get("SMTP_TEST_LOG", "WARNING"))

    kwargs = {}
    if args.cert:
        if not args.user or not args.password:
            ap.error("--cert needs --user and --password")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kwargs = dict(tls_context=ctx, require_starttls=True,
                      authenticator=authenticator(args.user, args.password),
                      auth_require_tls=True, auth_required=True)
        if args.only_auth:
            other = "LOGIN" if args.only_auth == "PLAIN" else "PLAIN"
            kwargs["auth_exclude_mechanism"] = [other]
    port = args.port or free_port()
    controller = Controller(Store(args.out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(args.port_file + ".tmp", args.port_file)

    # Stop on a signal, or when the test that started us is gone (a failed
    # assertion ends its process before it can stop us).
    parent = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5) and os.getppid() == parent:
        pass
    controller.stop()


if __name__ == "__main__":
    main()
