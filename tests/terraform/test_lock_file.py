"""The component's provider lock file is committed (Terraform's recommendation): it pins the AWS
provider version inside the component's constraint, with a package hash that `terraform init
-lockfile=readonly` checks (scripts/aws-e2e.sh does, against the local provider mirror)."""

import re
from pathlib import Path

COMPONENT = Path(__file__).resolve().parents[2] / "infrastructure" / "terraform" / "components" / "callbacks"


def test_lock_file_pins_the_aws_provider():
    lock = (COMPONENT / ".terraform.lock.hcl").read_text()
    block = re.search(r'provider "registry.terraform.io/hashicorp/aws" \{(.*?)\n\}', lock, re.S)
    assert block, lock
    version = re.search(r'version\s*=\s*"([0-9.]+)"', block.group(1)).group(1)
    constraints = re.search(r'constraints\s*=\s*"([^"]+)"', block.group(1)).group(1)
    required = re.search(r'aws\s*=\s*\{[^}]*version\s*=\s*"([^"]+)"', (COMPONENT / "versions.tf").read_text(), re.S)
    assert constraints == required.group(1), (constraints, required.group(1))
    assert version, lock
    assert re.search(r'"h1:[A-Za-z0-9+/=]+"', block.group(1)), "no package hash"
