"""AWS end to end: the Terraform component deployed into the emulator, events carried from the
Shared Event Bus to client endpoints through what it created. Run by scripts/aws-e2e.sh:

    python3 tests/e2e/run_e2e.py WORK_DIR

WORK_DIR (empty, temporary) receives the test CA, the Terraform copy and state, the
function logs. Exits non-zero on the first failed assertion, after `terraform destroy` and
with every process it started stopped.
"""

import os
import signal
import sys
import time
import traceback
import zipfile
from pathlib import Path

import boto3
import botocore.config

sys.path.insert(0, str(Path(__file__).parent))
from deploy import REPO, Deployment  # noqa: E402
from emulator import Emulator  # noqa: E402
from lambda_runtime import Function  # noqa: E402
from scenario import Scenario  # noqa: E402
from testca import TestCa  # noqa: E402

REGION = "eu-west-2"
SHARED_BUS = "nhs-notify-e2e-shared-event-bus"
# What scripts/build-lambda.sh packages (E2E_LAMBDA_DIR: another directory of the same layout).
LAMBDA_DIR = Path(os.environ.get("E2E_LAMBDA_DIR", REPO / "target" / "lambda"))
ZIPS = {name: LAMBDA_DIR / name / "bootstrap.zip" for name in ("transform-filter", "delivery")}


def log(line: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {line}", flush=True)


def aws_clients(endpoint: str, ca_pem: Path) -> dict:
    config = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
    return {s: boto3.client(s, endpoint_url=endpoint, region_name=REGION, verify=str(ca_pem), config=config,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
            for s in ("events", "sqs", "s3", "pipes", "lambda", "iam", "dynamodb", "kms", "logs",
                      "cloudwatch", "secretsmanager")}


def unpack(zip_path: Path, into: Path) -> Path:
    """The `bootstrap` of a deployed zip, as Lambda unpacks it."""
    with zipfile.ZipFile(zip_path) as z:
        z.extract("bootstrap", into)
    path = into / "bootstrap"
    path.chmod(0o755)
    return path


def main(work: Path) -> int:
    for name, z in ZIPS.items():
        if not z.is_file():
            log(f"missing {z}: run ARCH=x86_64 scripts/build-lambda.sh first")
            return 2
    ca = TestCa(work / "pki")
    started: list = []
    deployment = None
    failed = False
    with Emulator(ca) as emu:
        log(f"emulator at {emu.endpoint}")
        aws = aws_clients(emu.endpoint, ca.ca_pem)
        # The only thing outside the component: the Shared Event Bus.
        aws["events"].create_event_bus(Name=SHARED_BUS)
        try:
            scenario = Scenario(aws, ca, log, started)
            deployment = Deployment(work / "tf", emu.endpoint, ca.ca_pem, log)
            outputs = deployment.apply(scenario.tfvars(SHARED_BUS, ZIPS), scenario.api_keys)
            log(f"applied: {len(deployment.resources())} resources in the state")
            functions = {}
            for key, out in (("transform-filter", "transform_filter_function_name"), ("delivery", "delivery_function_name")):
                config = aws["lambda"].get_function_configuration(FunctionName=outputs[out])
                bootstrap = unpack(ZIPS[key], work / "lambda" / key)
                functions[key] = Function(str(bootstrap), config, {
                    "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_ENDPOINT_URL": emu.endpoint, "SSL_CERT_FILE": str(ca.ca_pem),
                    # The client endpoints are on loopback: past the egress guard only with this.
                    "ALLOW_PRIVATE_EGRESS": "true",
                }, work / f"{key}.log")
                started.append(functions[key])
                scenario.check_code(config, ZIPS[key])
            scenario.run(deployment, outputs, functions, emu)
        except Exception:
            failed = True
            traceback.print_exc()
        finally:
            for thing in reversed(started):
                thing.stop()
            if deployment is not None and deployment.initialised:
                try:
                    deployment.destroy()
                    Scenario.assert_nothing_left(aws, SHARED_BUS, log)
                except Exception:
                    failed = True
                    traceback.print_exc()
    for f in sorted(work.glob("*.log")):
        if failed:
            log(f"--- {f.name} (last lines)")
            print("\n".join(f.read_text(errors="replace").splitlines()[-40:]))
    log("FAILED" if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    # SIGTERM (scripts/aws-e2e.sh's cleanup) unwinds like a failure: destroy, stop everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(Path(sys.argv[1])))
