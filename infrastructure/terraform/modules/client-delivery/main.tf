locals {
  targets = { for t in var.targets : t.targetId => t }

  client_base = "${var.name_prefix}-${var.client_id}"

  rule_names = {
    for id, t in local.targets : id => (
      length("${local.client_base}-${id}-https") <= 64
      ? "${local.client_base}-${id}-https"
      : "${substr("${local.client_base}-${id}-https", 0, 55)}-${substr(sha1("${local.client_base}-${id}-https"), 0, 8)}"
    )
  }

  # One Lambda invocation delivers to one target at a time, so the client's
  # rate limits bound useful concurrency; SQS event source mappings need >= 2.
  maximum_concurrency = min(1000, max(2, sum([for t in var.targets : t.invocationRateLimit])))

  client_tags = merge(var.tags, { ClientId = var.client_id, DeliveryLambda = var.delivery_lambda_function_name })
}

resource "aws_sqs_queue" "dlq" {
  name                              = var.dlq_name
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = var.dlq_message_retention_seconds
  tags                              = local.client_tags
}

resource "aws_sqs_queue" "this" {
  name                              = var.queue_name
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = local.client_tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

resource "aws_cloudwatch_event_rule" "target" {
  for_each = local.targets

  name           = local.rule_names[each.key]
  description    = "Callbacks for ${var.client_id}/${each.key} (https mode)"
  event_bus_name = var.callbacks_event_bus_name
  event_pattern = jsonencode({
    source        = [var.callbacks_event_source]
    "detail-type" = [var.callbacks_event_detail_type]
    detail = {
      clientId = [var.client_id]
      targetId = [each.key]
    }
  })
  tags = merge(local.client_tags, { TargetId = each.key })
}

resource "aws_cloudwatch_event_target" "queue" {
  for_each = local.targets

  rule           = aws_cloudwatch_event_rule.target[each.key].name
  event_bus_name = var.callbacks_event_bus_name
  target_id      = "client-queue"
  arn            = aws_sqs_queue.this.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "AllowOwnRules"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for r in aws_cloudwatch_event_rule.target : r.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.this.arn]

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

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "AllowOwnRulesDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for r in aws_cloudwatch_event_rule.target : r.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]

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

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = aws_sqs_queue.this.arn
  function_name                      = var.delivery_lambda_function_arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = local.maximum_concurrency
  }

  tags = local.client_tags
}
