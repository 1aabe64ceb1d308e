"""Terraform against the emulator: the callbacks component, unchanged, in a temporary copy.

What only the test writes is `e2e_override.tf` in that copy (Terraform merges `*_override.tf`
over the component): a local backend in the temporary directory, the AWS provider's endpoints
pointing at the emulator, its test credentials and the test CA. Providers come from the local
mirror (TF_PLUGIN_DIR, default /opt/tf-plugins) through a CLI config with a
`filesystem_mirror`; nothing is downloaded, and `terraform init` checks the mirror's package
against the component's committed `.terraform.lock.hcl`.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TF_ROOT = REPO / "infrastructure" / "terraform"
COMPONENT = Path("components") / "callbacks"
# Every AWS service the component's resources and data sources use.
SERVICES = ("cloudwatch", "dynamodb", "events", "iam", "kms", "lambda", "logs", "pipes", "s3", "sqs", "sts")


def plugin_dir() -> Path:
    return Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))


def terraform_bin() -> str:
    found = os.environ.get("TERRAFORM_BIN") or shutil.which("terraform")
    if not found:
        raise RuntimeError("no terraform binary on PATH (set TERRAFORM_BIN)")
    return found


class Deployment:
    """`apply(tfvars)` / `outputs()` / `destroy()` of the component in `work`."""

    def __init__(self, work: Path, endpoint: str, ca_pem: Path, log):
        self.work, self.log = Path(work), log
        shutil.copytree(TF_ROOT, self.work / "infrastructure" / "terraform",
                        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "terraform.tfvars*"))
        self.dir = self.work / "infrastructure" / "terraform" / COMPONENT
        endpoints = "\n".join(f'    {s} = "{endpoint}"' for s in SERVICES)
        (self.dir / "e2e_override.tf").write_text(f'''# Written by tests/e2e/deploy.py: the emulator, never a real account.
terraform {{
  backend "local" {{
    path = "{self.work / "terraform.tfstate"}"
  }}
}}

provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  custom_ca_bundle            = "{ca_pem}"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = false

  endpoints {{
{endpoints}
  }}
}}
''')
        cli_config = self.work / "terraform.rc"
        cli_config.write_text(f'''provider_installation {{
  filesystem_mirror {{
    path    = "{plugin_dir()}"
    include = ["registry.terraform.io/hashicorp/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/*/*"]
  }}
}}
''')
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=str(cli_config), TF_DATA_DIR=str(self.work / ".terraform"),
                        TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0")
        for k in [k for k in self.env if k.startswith("AWS_")]:
            del self.env[k]  # only the override's settings reach the provider
        self.initialised = False

    def _run(self, *args: str, timeout: int = 900) -> str:
        """Runs terraform: stdout is returned (and, like stderr, appended to terraform.log in the
        work directory; terraform.out holds the running command's stdout as it comes)."""
        cmd = [terraform_bin(), *args, "-no-color"]
        self.log(f"$ terraform {' '.join(args)}")
        out_path = self.work / "terraform.out"
        with open(out_path, "w") as out, open(self.work / "terraform.log", "a") as err:
            err.write(f"\n$ terraform {' '.join(args)}\n")
            err.flush()
            proc = subprocess.run(cmd, cwd=self.dir, env=self.env, stdout=out, stderr=err, timeout=timeout)
        text = out_path.read_text()
        with open(self.work / "terraform.log", "a") as err:
            err.write(text)
        if proc.returncode != 0:
            errors = (self.work / "terraform.log").read_text()[-8000:]
            raise RuntimeError(f"terraform {args[0]} failed ({proc.returncode}); the end of terraform.log:\n{errors}")
        return text

    def init(self) -> None:
        if not self.initialised:
            # -lockfile=readonly: the mirror's provider must match the committed lock file.
            self._run("init", "-input=false", "-lockfile=readonly")
            self.initialised = True

    def apply(self, tfvars: dict, api_keys: dict) -> dict:
        """`terraform apply` with `tfvars` (written as e2e.tfvars.json) and the API keys through
        TF_VAR_client_api_keys (the sensitive variable, as a deploy job passes it)."""
        self.init()
        (self.dir / "e2e.tfvars.json").write_text(json.dumps(tfvars, indent=2))
        self.env["TF_VAR_client_api_keys"] = json.dumps(api_keys)
        out = self._run("apply", "-auto-approve", "-input=false", "-var-file=e2e.tfvars.json")
        self.log(next((line for line in out.splitlines() if line.startswith("Apply complete")), "apply: no summary"))
        return self.outputs()

    def outputs(self) -> dict:
        raw = json.loads(self._run("output", "-json"))
        return {k: v["value"] for k, v in raw.items()}

    def resources(self) -> list[str]:
        out = self._run("state", "list")
        return [line for line in out.splitlines() if line.strip()]

    def destroy(self) -> str:
        out = self._run("destroy", "-auto-approve", "-input=false", "-var-file=e2e.tfvars.json")
        self.log(next((line for line in out.splitlines() if line.startswith("Destroy complete")), "destroy: no summary"))
        return out
