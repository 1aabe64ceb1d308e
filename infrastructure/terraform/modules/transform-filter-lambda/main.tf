locals {
  function_name = "${var.name_prefix}-transform-filter"
  pipe_name     = "${var.name_prefix}-callbacks"

  lambda_environment = merge(
    {
      CLIENT_CONFIG_BUCKET      = var.config_bucket_name
      CLIENT_CONFIG_PREFIX      = var.config_prefix
      REJECTED_EVENTS_QUEUE_URL = module.rejected_events_queue.url
      CONFIG_CACHE_TTL_SECONDS  = tostring(var.config_cache_ttl_seconds)
      MESSAGE_LINK_BASE_URL     = var.message_link_base_url
      RUST_LOG                  = var.rust_log
      METRICS_NAMESPACE         = var.metrics_namespace
    },
    var.application_id_map_key == null ? {} : { APPLICATION_ID_MAP_KEY = var.application_id_map_key },
  )

  config_object_arns = concat(
    ["${var.config_bucket_arn}/${var.config_prefix}*"],
    var.application_id_map_key == null ? [] : ["${var.config_bucket_arn}/${var.application_id_map_key}"],
  )
}

# Events the Lambda rejects (invalid CloudEvents, unknown types); kept for investigation.
module "rejected_events_queue" {
  source = "../sqs-queue"

  name                      = "${var.name_prefix}-rejected-events"
  kms_key_arn               = var.kms_key_arn
  message_retention_seconds = 1209600
  tags                      = var.tags
}

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${local.function_name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "lambda" {
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

  statement {
    sid       = "ListClientConfig"
    actions   = ["s3:ListBucket"]
    resources = [var.config_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.config_prefix}*"]
    }
  }

  statement {
    sid       = "SendRejectedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [module.rejected_events_queue.arn]
  }

  statement {
    sid       = "PutCallbackEvents"
    actions   = ["events:PutEvents"]
    resources = [var.callbacks_event_bus_arn]
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

resource "aws_iam_role_policy" "lambda" {
  name   = "least-privilege"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by the EventBridge Pipe as enrichment; failed batches stay on the source queue and go to its DLQ, so a Lambda DLQ would never be used.
  #checkov:skip=CKV_AWS_117:The function only calls regional AWS APIs (S3, SQS, EventBridge); no VPC resources to reach.
  #checkov:skip=CKV_AWS_272:The zip is built and checked in CI (scripts/build-lambda.sh); no AWS Signer profile is provisioned for this pipeline.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded by the Pipe's SQS poller; var.reserved_concurrent_executions reserves it where an account needs that.
  function_name                  = local.function_name
  description                    = "Validates, filters and transforms status CloudEvents into signed client callbacks (Pipe enrichment)."
  role                           = aws_iam_role.lambda.arn
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

  depends_on = [aws_iam_role_policy.lambda]
}

resource "aws_cloudwatch_log_group" "pipe" {
  name              = "/aws/vendedlogs/pipes/${local.pipe_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "pipe_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["pipes.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_caller_identity" "current" {}

resource "aws_iam_role" "pipe" {
  name               = "${local.pipe_name}-pipe"
  assume_role_policy = data.aws_iam_policy_document.pipe_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "pipe" {
  statement {
    sid       = "ReadSourceQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [var.source_queue_arn]
  }

  statement {
    sid       = "InvokeEnrichment"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn]
  }

  statement {
    sid       = "PutToCallbacksBus"
    actions   = ["events:PutEvents"]
    resources = [var.callbacks_event_bus_arn]
  }

  statement {
    sid       = "UsePipelineKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "WritePipeLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.pipe.arn}:*"]
  }
}

resource "aws_iam_role_policy" "pipe" {
  name   = "least-privilege"
  role   = aws_iam_role.pipe.id
  policy = data.aws_iam_policy_document.pipe.json
}

resource "aws_pipes_pipe" "this" {
  name               = local.pipe_name
  description        = "Callback event queue -> transform-filter Lambda -> Callbacks Event Bus."
  role_arn           = aws_iam_role.pipe.arn
  desired_state      = "RUNNING"
  source             = var.source_queue_arn
  enrichment         = aws_lambda_function.this.arn
  target             = var.callbacks_event_bus_arn
  kms_key_identifier = var.kms_key_arn

  source_parameters {
    sqs_queue_parameters {
      batch_size                         = var.batch_size
      maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
    }
  }

  # Each element of the Lambda's output array becomes one event on the Callbacks
  # bus, with the element as its `detail`.
  target_parameters {
    eventbridge_event_bus_parameters {
      source      = var.callbacks_event_source
      detail_type = var.callbacks_event_detail_type
    }
  }

  log_configuration {
    level = var.pipe_log_level

    cloudwatch_logs_log_destination {
      log_group_arn = aws_cloudwatch_log_group.pipe.arn
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.pipe]
}
