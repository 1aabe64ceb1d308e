terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80.0, < 7.0.0"
    }
  }

  # Partial configuration: pass bucket, key, region and dynamodb_table/use_lockfile
  # with -backend-config at `terraform init` (see infrastructure/terraform/README.md).
  backend "s3" {}
}
