"""Client endpoints for the end-to-end test: HTTPS servers on loopback (certificate from the test
CA) that check the API key and the HMAC signature over the exact bytes received, answer as the
callback's `messageReference` asks, and record every request.

`messageReference` values the receivers understand:
  "answer-500-then-200": 500 to the first request for that messageId, 200 afterwards;
  "answer-400":          always 400;
  anything else:         200.
"""

import hashlib
import hmac
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


class Receiver:
    """One client target's endpoint. `url`, `requests` (dicts with status, verdicts, body)."""

    def __init__(self, name: str, cert, key, api_key_header: str, api_key: str, application_id: str):
        self.name, self.api_key_header, self.api_key = name, api_key_header.lower(), api_key
        self.hmac_key = f"{application_id}.{api_key}".encode()
        self.requests: list[dict] = []
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(min(length, MAX_BODY))
                status = receiver._answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_port}/callbacks/{name}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, path: str, headers: dict, body: bytes) -> int:
        expected = hmac.new(self.hmac_key, body, hashlib.sha256).hexdigest()
        record = {
            "path": path,
            "api_key_ok": hmac.compare_digest(headers.get(self.api_key_header, ""), self.api_key),
            "signature_ok": hmac.compare_digest(headers.get("x-hmac-sha256-signature", ""), expected),
            "content_type": headers.get("content-type"),
            "body": body,
        }
        try:
            doc = json.loads(body)
            attributes = doc["data"][0]["attributes"]
            message_id, reference = attributes["messageId"], attributes["messageReference"]
        except (ValueError, KeyError, IndexError, TypeError):
            record["status"] = 400
            self._record(record)
            return 400
        record["message_id"], record["reference"] = message_id, reference
        if not (record["api_key_ok"] and record["signature_ok"]):
            status = 401
        elif reference == "answer-400":
            status = 400
        elif reference == "answer-500-then-200":
            with self._lock:
                self._seen[message_id] = self._seen.get(message_id, 0) + 1
                status = 500 if self._seen[message_id] == 1 else 200
        else:
            status = 200
        record["status"] = status
        self._record(record)
        return status

    def _record(self, record: dict) -> None:
        with self._lock:
            self.requests.append(record)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
