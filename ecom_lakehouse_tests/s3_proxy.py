"""A proxy in front of the moto server that kills a process (SIGKILL) when it is about to write
a Delta log entry: the crash that falls inside a commit, after the data files are uploaded and
before the log says they exist. Everything else is forwarded as it is."""

import http.client
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

# A commit of table version >= 1 (version 0 creates the table) under processed/<table>/.
COMMIT = re.compile(r"/processed/(?P<table>[^/]+)/_delta_log/(?P<version>\d{20})\.json$")


class CommitKiller:
    def __init__(self, upstream: str, table: str) -> None:
        self.upstream = urlparse(upstream)
        self.table = table
        self.victim: int | None = None
        self.killed = threading.Event()

    def should_kill(self, method: str, path: str) -> bool:
        match = COMMIT.search(urlparse(path).path)
        return bool(
            method == "PUT"
            and match
            and match["table"] == self.table
            and int(match["version"]) >= 1
            and self.victim is not None
            and not self.killed.is_set()
        )


def _handler(killer: CommitKiller) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if killer.should_kill(self.command, self.path):
                assert killer.victim is not None
                os.kill(killer.victim, signal.SIGKILL)
                killer.killed.set()
                self.close_connection = True
                return
            upstream = http.client.HTTPConnection(
                killer.upstream.hostname, killer.upstream.port, timeout=60
            )
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            headers["Host"] = killer.upstream.netloc
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    return Forward


@contextmanager
def commit_killer(upstream: str, table: str) -> Iterator[tuple[str, CommitKiller]]:
    """(the proxy's endpoint URL, the killer whose ``victim`` is the pid to kill)."""
    killer = CommitKiller(upstream, table)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(killer))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", killer
    finally:
        server.shutdown()
        server.server_close()
