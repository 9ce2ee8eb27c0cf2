"""A stand-in for an Interlock service in devstack tests: /healthz and /readyz on its port.

Run as ``python standin_service.py``; reads ``INTERLOCK_HTTP_PORT`` like a real service.
"""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        known = self.path in ("/healthz", "/readyz")
        body = b'{"status":"ok"}' if known else b'{"status":404}'
        self.send_response(200 if known else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{os.environ.get('INTERLOCK_SERVICE_NAME')} {format % args}\n")


def main() -> None:
    port = int(os.environ["INTERLOCK_HTTP_PORT"])
    server = http.server.ThreadingHTTPServer((os.environ["INTERLOCK_HTTP_HOST"], port), _Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    sys.stdout.write(f"stand-in {os.environ['INTERLOCK_SERVICE_NAME']} on {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
