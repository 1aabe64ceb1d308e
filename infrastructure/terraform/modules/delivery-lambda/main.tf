locals {
  function_name = "${var.name_prefix}-delivery"

  lambda_environment = merge(
    {
      CLIENT_CONFIG_BUCKET     = var.config_bucket_name
      CLIENT_CONFIG_PREFIX     = var.config_prefix
      CONFIG_CACHE_TTL_SECONDS = tostring(var.config_cache_ttl_seconds)
      RUST_LOG                 = var.rust_log
      METRICS_NAMESPACE        = var.metrics_namespace
      DELIVERY_STATE_TABLE     = aws_dynamodb_table.state.name
    },
    var.application_id_map_key == null ? {} : { APPLICATION_ID_MAP_KEY = var.application_id_map_key },
    var.environment_variables,
  )

  config_object_arns = concat(
    ["${var.config_bucket_arn}/${var.config_prefix}*"],
    var.application_id_map_key == null ? [] : ["${var.config_bucket_arn}/${var.application_id_map_key}"],
  )
}

# Shared delivery state (src/aws/delivery/state/): one item per target's circuit breaker,
# changed only with conditional writes on its version, and one attempt-history item per SQS
# message being retried (removed on delivery or dead-lettering, expired by TTL otherwise).
resource "aws_dynamodb_table" "state" {
  name         = "${local.function_name}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${local.function_name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  statement {
    sid       = "ReadClientConfig"
    actions   = ["s3:GetObject"]
    resources = local.config_object_arns
  }

  dynamic "statement" {
    for_each = length(var.client_queue_arns) > 0 ? [1] : []

    content {
      sid = "ConsumeClientQueues"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
      ]
      resources = var.client_queue_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.client_dlq_arns) > 0 ? [1] : []

    content {
      sid       = "SendToClientDlqs"
      actions   = ["sqs:SendMessage"]
      resources = var.client_dlq_arns
    }
  }

  statement {
    sid       = "SharedDeliveryState"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.state.arn]
  }

  statement {
    sid       = "UsePipelineKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked by SQS event source mappings; failures stay on the client queue and its redrive policy moves them to the client DLQ, so a Lambda DLQ would never be used.
  #checkov:skip=CKV_AWS_117:Delivers to clients' public https endpoints and calls regional AWS APIs; a VPC would only add a NAT gateway.
  #checkov:skip=CKV_AWS_272:The zip is built and checked in CI (scripts/build-lambda.sh); no AWS Signer profile is provisioned for this pipeline.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded per client by the event source mappings' maximum_concurrency; var.reserved_concurrent_executions reserves it where an account needs that.
  function_name                  = local.function_name
  description                    = "Delivers signed callbacks to clients' https endpoints (https delivery mode)."
  role                           = aws_iam_role.this.arn
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.architecture]
  filename                       = var.lambda_zip_path
  source_code_hash               = filebase64sha256(var.lambda_zip_path)
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.lambda_environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda.name
  }

  tracing_config {
    mode = "Active"
  }

  tags = var.tags
}
