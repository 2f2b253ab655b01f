"""Serve a WSGI app (the simulator) from a background thread: for tests and for `unionhub dev`."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server


class ThreadedServer:
    """A threaded werkzeug server on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self._server = make_server(host, port, app, threaded=True)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"server-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
