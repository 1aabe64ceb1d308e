"""The Lambda Runtime API (2018-06-01) on loopback, and a real `bootstrap` served by it: what
Lambda does for a `provided.al2023` function, in the shape tests/runtime_support/mod.rs uses
for the Rust tests. The function's environment is the deployed function configuration's
`Environment.Variables` plus what Lambda itself sets (AWS_LAMBDA_*, region, credentials; here
the emulator's endpoint and the test CA).
"""

import json
import queue
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    def __init__(self, function_arn: str, timeout_s: int):
        self.function_arn, self.timeout_s = function_arn, timeout_s
        self._pending: queue.Queue = queue.Queue()
        self._outcomes: dict[str, queue.Queue] = {}
        self.init_error = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                request_id, payload = api._pending.get()
                deadline = int((time.time() + api.timeout_s) * 1000)
                self._reply(200, payload, {
                    "lambda-runtime-aws-request-id": request_id,
                    "lambda-runtime-deadline-ms": str(deadline),
                    "lambda-runtime-invoked-function-arn": api.function_arn,
                    "lambda-runtime-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                    "content-type": "application/json",
                })

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    outcome = api._outcomes.get(parts[1])
                    if outcome is not None:
                        outcome.put((parts[2], body))
                else:
                    return self._reply(404)
                self._reply(202)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, payload) -> tuple[str, bytes]:
        """One synchronous invocation: ("response" | "error", body)."""
        request_id = str(uuid.uuid4())
        outcome: queue.Queue = queue.Queue()
        self._outcomes[request_id] = outcome
        self._pending.put((request_id, json.dumps(payload).encode()))
        try:
            return outcome.get(timeout=self.timeout_s)
        finally:
            del self._outcomes[request_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Function:
    """A deployed function's bootstrap, started the way Lambda starts it."""

    def __init__(self, bootstrap: str, config: dict, emulator_env: dict, log_path):
        self.name, self.arn = config["FunctionName"], config["FunctionArn"]
        self.api = RuntimeApi(config["FunctionArn"], int(config.get("Timeout", 30)))
        env = dict(config.get("Environment", {}).get("Variables", {}))
        env.update(emulator_env)
        env.update({
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 128)),
            "AWS_LAMBDA_FUNCTION_VERSION": config.get("Version", "$LATEST"),
            "PATH": "/usr/bin:/bin",
        })
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([bootstrap], env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def invoke(self, payload) -> tuple[str, bytes]:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {self.log.name}")
        return self.api.invoke(payload)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.api.stop()
        self.log.close()
