"""The end-to-end test's own moto server, with exactly the patches the deployment needs.

    python3 emulator.py --cert C --key K --ready-file F [--http]

Serves moto on loopback over HTTPS (and, with --http, on a second plain-HTTP port sharing the
same backends, so a test can show what an insecure request gets). The chosen ports are written
to the ready file as JSON once both listeners accept connections. SIGTERM stops it.

Each patch closes one gap between moto 5.2.x and what AWS documents; each is named, applied
by `apply_patches()`, and tested in test_emulator.py. The component is never changed to suit
the emulator.

- `bucket_policy_secure_transport`: moto evaluates a bucket policy with no request context
  (`FakeBucket.get_permission(action, resource)`) and skips condition operators it does not
  know, so the component's `DenyInsecureTransport` statement (Deny when `aws:SecureTransport`
  is `false`) denies every request, TLS or not. AWS sets `aws:SecureTransport` on every
  request (true when it came over TLS) and `Bool` compares it case-insensitively
  (IAM User Guide, "Condition operators" / "AWS global condition context keys"); a
  statement whose condition does not hold does not apply. The patch adds the `Bool`
  operator, passes `aws:SecureTransport` from the listener the request came in on, and skips
  statements whose condition does not hold.
- `sqs_redrive_allow_policy`: moto stores `RedriveAllowPolicy` from `SetQueueAttributes` but
  never returns it from `GetQueueAttributes`, so `aws_sqs_queue_redrive_allow_policy` waits
  for it until it times out (and, on destroy, for its removal). The patch returns it (and
  accepts the attribute name), as the SQS API reference lists it; an empty value removes it.
- `sqs_event_source_mappings_left_to_driver`: moto invokes a Lambda (in Docker) for an SQS
  event source mapping inside `SendMessage`, receiving the messages first (which counts
  towards the redrive policy's maxReceiveCount). Lambdas do not run in this emulator; the
  test's driver plays the event source mapping, so the patch turns moto's in-line invocation
  off and leaves the messages on the queue.
- `events_api_destination_handed_to_driver`: moto does not call an API destination (or, with
  MOTO_EVENTS_INVOKE_HTTP, calls it with an empty body). The patch records each event a rule
  routed to an API destination target, with the target as deployed, for the driver to play
  the call; `GET /_e2e/api-destination-calls` hands the records over. The rule matching
  itself stays moto's.
"""

import argparse
import json
import os
import signal
import ssl
import sys
import threading

PATCHES = (
    "bucket_policy_secure_transport",
    "sqs_redrive_allow_policy",
    "sqs_event_source_mappings_left_to_driver",
    "events_api_destination_handed_to_driver",
)

# `GET` this path on the emulator: the events rules routed to API destination targets since
# the last call (JSON list of {"ruleArn", "target", "event"}), oldest first.
API_DESTINATION_CALLS_PATH = "/_e2e/api-destination-calls"
_api_destination_calls: list = []
_api_destination_lock = threading.Lock()

# The scheme of the request being served by this thread ("https" or "http").
_request = threading.local()


def _bool_operation(expected, actual) -> bool:
    """IAM `Bool`: true when the context value equals (one of) the expected value(s),
    compared case-insensitively ("true"/"false")."""
    wanted = expected if isinstance(expected, list) else [expected]
    return str(actual).lower() in {str(w).lower() for w in wanted}


def patch_bucket_policy_secure_transport() -> None:
    from moto.iam import policy_conditions
    from moto.s3.models import FakeBucket

    policy_conditions.CONDITION_OPERATIONS["Bool"] = _bool_operation

    def get_permission(self, action, resource):
        # IAM policy evaluation: a statement whose condition does not hold does not apply
        # (moto's statement check answers DENIED for it, right for a trust policy's Allow but
        # not for a Deny); an explicit Deny wins over an Allow.
        from moto.iam.access_control import IAMPolicyStatement, PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        secure = getattr(_request, "scheme", "https") == "https"
        context = {"aws:SecureTransport": "true" if secure else "false"}
        statements = json.loads(self.policy.decode())["Statement"]
        result = PermissionResult.NEUTRAL
        for statement in statements if isinstance(statements, list) else [statements]:
            if not IAMPolicyStatement(statement)._check_conditions(context):
                continue
            unconditional = {k: v for k, v in statement.items() if k != "Condition"}
            verdict = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
            if verdict == PermissionResult.DENIED:
                return verdict
            if verdict == PermissionResult.PERMITTED:
                result = verdict
        return result

    FakeBucket.get_permission = get_permission


def patch_sqs_redrive_allow_policy() -> None:
    from moto.sqs.models import Queue

    if "RedriveAllowPolicy" not in Queue.BASE_ATTRIBUTES:
        Queue.BASE_ATTRIBUTES = [*Queue.BASE_ATTRIBUTES, "RedriveAllowPolicy"]

    # Setting it to "" removes it (what the provider does on destroy, then waits for);
    # a queue without it answers without it (None is left out of the response).
    def get(self):
        return self.__dict__.get("_redrive_allow_policy")

    def set(self, value):
        self.__dict__["_redrive_allow_policy"] = value or None

    Queue.redrive_allow_policy = property(get, set)


def patch_sqs_event_source_mappings_left_to_driver() -> None:
    from moto.sqs.models import Queue

    original = Queue.add_message

    def add_message(self, message):
        mappings = self.lambda_event_source_mappings
        self.lambda_event_source_mappings = {}
        try:
            return original(self, message)
        finally:
            self.lambda_event_source_mappings = mappings

    Queue.add_message = add_message


def patch_events_api_destination_handed_to_driver() -> None:
    import copy

    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        if self.event_pattern.matches_event(original_event):
            for target in self.targets:
                if ":api-destination/" in target["Arn"]:
                    with _api_destination_lock:
                        _api_destination_calls.append(
                            {"ruleArn": self.arn, "target": copy.deepcopy(target), "event": copy.deepcopy(original_event)})
        return original(self, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def apply_patches() -> None:
    for name in PATCHES:
        globals()[f"patch_{name}"]()


class _SchemeMiddleware:
    """Records the request's scheme (`bucket_policy_secure_transport`) and serves
    API_DESTINATION_CALLS_PATH (`events_api_destination_handed_to_driver`)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        _request.scheme = environ.get("wsgi.url_scheme", "http")
        if environ.get("PATH_INFO") == API_DESTINATION_CALLS_PATH:
            with _api_destination_lock:
                body = json.dumps(_api_destination_calls, default=str).encode()
                _api_destination_calls.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


def make_servers(cert: str, key: str, plain_http: bool):
    """The HTTPS server (and optionally a plain-HTTP one) on 127.0.0.1, sharing moto's backends."""
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    apply_patches()
    app = _SchemeMiddleware(DomainDispatcherApplication(create_backend_app))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    servers = [make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler,
                           ssl_context=context)]
    if plain_http:
        servers.append(make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler))
    return servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--http", action="store_true", help="also serve plain HTTP")
    args = parser.parse_args()
    servers = make_servers(args.cert, args.key, args.http)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    ports = {"https": servers[0].server_port}
    if args.http:
        ports["http"] = servers[1].server_port
    with open(args.ready_file + ".tmp", "w") as f:
        json.dump(ports, f)
    os.replace(args.ready_file + ".tmp", args.ready_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    for s in servers:
        s.shutdown()
    return 0


def api_destination_calls(endpoint: str, ca_pem: str) -> list:
    """Drains the emulator's record of events routed to API destination targets."""
    import urllib.request

    context = ssl.create_default_context(cafile=ca_pem)
    with urllib.request.urlopen(endpoint + API_DESTINATION_CALLS_PATH, context=context, timeout=30) as r:
        return json.loads(r.read())


class Emulator:
    """The launcher as a child process (what the tests use): `with Emulator(ca) as emu:`
    gives `emu.endpoint` (HTTPS) and, with `plain_http=True`, `emu.http_endpoint`. Stopped on
    exit, even when the body raised."""

    def __init__(self, ca, plain_http: bool = False, timeout: float = 60.0):
        self.ca, self.plain_http, self.timeout = ca, plain_http, timeout
        self.proc = None

    def __enter__(self):
        import subprocess
        import time
        from pathlib import Path

        cert, key = self.ca.issue("emulator")
        ready = Path(self.ca.dir) / "emulator.ready.json"
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--cert", str(cert), "--key", str(key), "--ready-file", str(ready)]
        if self.plain_http:
            cmd.append("--http")
        self.log = open(Path(self.ca.dir) / "emulator.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the emulator did not start; see {self.log.name}")
            time.sleep(0.1)
        ports = json.loads(ready.read_text())
        self.endpoint = f"https://127.0.0.1:{ports['https']}"
        self.http_endpoint = f"http://127.0.0.1:{ports['http']}" if "http" in ports else None
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return False


if __name__ == "__main__":
    sys.exit(main())
