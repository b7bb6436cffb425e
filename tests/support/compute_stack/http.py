"""A small threaded HTTP server that hands each JSON request to a route function."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["JsonServer"]

Route = Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]


class JsonServer:
    """Serve ``route(method, path, headers, body) -> (status, document)`` on ``host:port``."""

    def __init__(self, route: Route, *, host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, doc = route(self.command, self.path, headers, body)
                except Exception as exc:  # a stand-in bug shows as a 500 with its text
                    status, doc = 500, {"code": "STANDIN_ERROR", "message": repr(exc)}
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server names)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the route functions keep their own request log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://localhost:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"standin-http-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
