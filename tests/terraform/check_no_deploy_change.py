#!/usr/bin/env python3
"""Check that a Terraform refactor changes nothing that is deployed (manual, not run by CI).

    python3 tests/terraform/check_no_deploy_change.py [BASE_REV]      (default: HEAD)

Applies infrastructure/terraform/components/callbacks at BASE_REV with
examples/two-clients.tfvars to a local moto server, then plans and applies the
working tree over that state, and fails unless

* the plan creates and destroys nothing (a resource moved into a module without a
  `moved` block would be destroyed and created again), and
* after the apply every resource has the same attributes as after applying
  BASE_REV again, matched through the plan's moves.

moto is not AWS: a few attributes never settle (the same ones change on every plan
of BASE_REV too), so the check compares against a second apply of BASE_REV rather
than expecting an empty plan.

Needs terraform >= 1.5, the AWS provider in a local plugin directory
(TF_PLUGIN_DIR, default /opt/tf-plugins) and moto[server] (scripts/test.sh
installs it). Nothing is written to the repository; the work happens in a
temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPONENT = Path("infrastructure/terraform/components/callbacks")
PLUGIN_DIR = os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins")
SHARED_BUS = "nhs-notify-dev-shared-event-bus"  # examples/two-clients.tfvars
API_KEYS = {"client-a/target-1": "key-a-1", "client-b/primary": "key-b-primary", "client-b/high-volume": "key-b-high-volume"}

# moto 5 does not return an SQS queue's RedriveAllowPolicy, drops the queue's policy when
# another attribute is set, and ignores the aws:SecureTransport condition of the config
# bucket's deny statement (it runs over TLS here, but cannot tell). Patched for this check only.
MOTO_SERVER = textwrap.dedent(
    """
    import sys
    from moto.sqs.models import Queue
    from moto.s3.models import FakeBucket
    from moto.iam.access_control import PermissionResult

    Queue.BASE_ATTRIBUTES.append("RedriveAllowPolicy")
    Queue.redrive_allow_policy = None
    _set_attributes = Queue._set_attributes

    def set_attributes(self, attributes, now=None):
        policy = getattr(self, "policy", None)
        _set_attributes(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy

    Queue._set_attributes = set_attributes
    FakeBucket.get_permission = lambda self, action, resource: PermissionResult.NEUTRAL

    from moto.server import main
    main(sys.argv[1:])
    """
)

SERVICES = ["sqs", "kms", "iam", "sts", "lambda", "logs", "events", "pipes", "s3", "cloudwatch", "dynamodb"]


def provider_override(port: int) -> str:
    endpoints = "\n".join(f'    {s:<10} = "https://localhost:{port}"' for s in SERVICES)
    return textwrap.dedent(
        """
        terraform {{
          backend "local" {{}}
        }}

        provider "aws" {{
          access_key                  = "test"
          secret_key                  = "test"
          skip_credentials_validation = true
          skip_requesting_account_id  = true
          skip_metadata_api_check     = true
          s3_use_path_style           = true
          insecure                    = true

          endpoints {{
        {endpoints}
          }}
        }}
        """
    ).format(endpoints=endpoints)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tree:
    """A copy of infrastructure/terraform (+ the fixture) pointed at moto."""

    def __init__(self, root: Path, port: int, base_rev: str | None, zip_path: Path):
        self.root = root
        root.mkdir(parents=True)
        if base_rev:
            archive = subprocess.run(["git", "-C", str(REPO), "archive", base_rev, "infrastructure", "tests/fixtures"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        else:
            shutil.copytree(REPO / "infrastructure", root / "infrastructure",
                            ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
            shutil.copytree(REPO / "tests" / "fixtures", root / "tests" / "fixtures")
        self.dir = root / COMPONENT
        (self.dir / "zz_moto_override.tf").write_text(provider_override(port))
        (root / "keys.tfvars.json").write_text(json.dumps({"client_api_keys": API_KEYS}))
        self.vars = ["-var-file=examples/two-clients.tfvars", f"-var-file={root / 'keys.tfvars.json'}",
                     f"-var=transform_filter_lambda_zip={zip_path}", f"-var=delivery_lambda_zip={zip_path}"]
        self.env = dict(os.environ, TF_DATA_DIR=str(root / ".terraform-data"), TF_IN_AUTOMATION="1",
                        CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE="/dev/null")
        self.tf("init", "-input=false", f"-plugin-dir={PLUGIN_DIR}")

    def tf(self, *args: str) -> str:
        proc = subprocess.run(["terraform", *args, "-no-color"], cwd=self.dir, env=self.env, capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0:
            sys.exit(f"terraform {' '.join(args)} failed in {self.dir}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc.stdout

    def apply(self) -> None:
        self.tf("apply", "-auto-approve", "-input=false", *self.vars)

    def state(self) -> dict[str, dict]:
        values = json.loads(self.tf("show", "-json"))["values"]["root_module"]
        out: dict[str, dict] = {}

        def walk(module: dict) -> None:
            for r in module.get("resources", []):
                if r["mode"] == "managed":
                    out[r["address"]] = r["values"]
            for child in module.get("child_modules", []):
                walk(child)

        walk(values)
        return out


def main() -> int:
    base_rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tf-no-deploy-change-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "moto_server.py").write_text(MOTO_SERVER)
        zip_path = tmp_path / "bootstrap.zip"  # one zip for both trees: its hash is an argument
        with zipfile.ZipFile(zip_path, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        moto = subprocess.Popen([sys.executable, str(tmp_path / "moto_server.py"), "-p", str(port), "--ssl"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import boto3  # moto depends on it
            import urllib3

            urllib3.disable_warnings()
            events = boto3.client("events", endpoint_url=f"https://localhost:{port}", region_name="eu-west-2",
                                  aws_access_key_id="test", aws_secret_access_key="test", verify=False)
            for _ in range(50):
                try:
                    events.create_event_bus(Name=SHARED_BUS)
                    break
                except Exception:  # moto still starting
                    time.sleep(0.2)
            else:
                sys.exit("moto server did not start")

            base = Tree(tmp_path / "base", port, base_rev, zip_path)
            print(f"applying {base_rev} to moto ...", flush=True)
            base.apply()
            base.apply()  # settle what moto reports differently from what was sent
            before = base.state()

            work = Tree(tmp_path / "work", port, None, zip_path)
            shutil.copy(base.dir / "terraform.tfstate", work.dir / "terraform.tfstate")
            print("planning the working tree over that state ...", flush=True)
            work.tf("plan", "-input=false", "-out=work.tfplan", *work.vars)
            plan = json.loads(work.tf("show", "-json", "work.tfplan"))
            moves = {}
            problems = []
            for rc in plan.get("resource_changes", []):
                if rc.get("previous_address"):
                    moves[rc["address"]] = rc["previous_address"]
                if rc["mode"] == "managed" and set(rc["change"]["actions"]) & {"create", "delete"}:
                    problems.append(f"{rc['address']}: {'/'.join(rc['change']['actions'])}")
            if problems:
                print("the plan creates or destroys resources:\n  " + "\n  ".join(problems))
                return 1
            work.tf("apply", "-input=false", "work.tfplan")
            after = {moves.get(k, k): v for k, v in work.state().items()}
        finally:
            moto.terminate()
            moto.wait()

    for address in sorted(set(before) ^ set(after)):
        problems.append(f"{address}: only {'before' if address in before else 'after'}")
    for address in sorted(set(before) & set(after)):
        for attr in sorted(set(before[address]) | set(after[address])):
            if before[address].get(attr) != after[address].get(attr):
                problems.append(f"{address}.{attr}: {before[address].get(attr)!r} -> {after[address].get(attr)!r}")
    print(f"{len(before)} resources, {len(moves)} moved by moved blocks")
    if problems:
        print("differences:\n  " + "\n  ".join(problems))
        return 1
    print("no deployed change: every resource keeps its attributes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
