data "aws_caller_identity" "current" {}

locals {
  bucket_name = "${var.name_prefix}-client-config-${data.aws_caller_identity.current.account_id}"

  # The documents of docs/CONTRACTS.md, with the optional attributes that are
  # null in var.clients left out, and the API key taken from client_api_keys.
  documents = {
    for client_id, c in var.clients : client_id => merge(
      { clientId = c.clientId },
      try(c.applicationId, null) == null ? {} : { applicationId = c.applicationId },
      {
        subscriptions = [
          for s in c.subscriptions : { for k, v in s : k => v if v != null }
        ]
        targets = [
          for t in c.targets : merge(
            { for k, v in t : k => v if v != null && !contains(["apiKey", "delivery"], k) },
            {
              apiKey = {
                headerName  = t.apiKey.headerName
                headerValue = lookup(var.client_api_keys, "${client_id}/${t.targetId}", try(t.apiKey.headerValue, null))
              }
            },
            try(t.delivery, null) == null ? {} : {
              delivery = merge(
                { for k, v in t.delivery : k => v if v != null && !contains(["circuitBreaker", "mtls"], k) },
                try(t.delivery.circuitBreaker, null) == null ? {} : {
                  circuitBreaker = { for k, v in t.delivery.circuitBreaker : k => v if v != null }
                },
                try(t.delivery.mtls, null) == null ? {} : { mtls = { for k, v in t.delivery.mtls : k => v if v != null } },
              )
            },
          )
        ]
      },
    )
  }
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logging needs an account-level log bucket that this component does not own; CloudTrail data events cover reads of the config objects.
  #checkov:skip=CKV_AWS_144:The configuration is rendered from Terraform and can be recreated in any region; cross-region replication adds nothing.
  #checkov:skip=CKV2_AWS_62:Nothing consumes change notifications; the Lambdas re-read objects after CONFIG_CACHE_TTL_SECONDS.
  bucket = local.bucket_name
  tags   = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-superseded-config"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_object" "client_config" {
  for_each = var.clients

  bucket                 = aws_s3_bucket.this.id
  key                    = "${var.config_prefix}${each.key}.json"
  content                = jsonencode(local.documents[each.key])
  content_type           = "application/json"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn
  bucket_key_enabled     = true
  tags                   = merge(var.tags, { ClientId = each.key })

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.this]
}

resource "aws_s3_object" "application_id_map" {
  count = var.application_id_map_key == null ? 0 : 1

  bucket                 = aws_s3_bucket.this.id
  key                    = var.application_id_map_key
  content                = jsonencode(var.application_id_map)
  content_type           = "application/json"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn
  bucket_key_enabled     = true
  tags                   = var.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.this]
}
