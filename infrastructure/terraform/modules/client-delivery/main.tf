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

  # One execution environment per 10 requests/s of the client's summed rate
  # limits (rounded up): each gets rate / concurrency of every target, so a batch
  # of 10 takes about a second rather than idling for tokens. The delivery Lambda
  # computes the same number (ConcurrencyCap::Terraform, RATE_PER_ENVIRONMENT).
  # SQS event source mappings need >= 2.
  maximum_concurrency = min(1000, max(2, ceil(sum([for t in var.targets : t.invocationRateLimit]) / 10)))

  # The queue keeps a callback for the client's longest retry budget plus an hour: the Lambda
  # dead-letters before the retention runs out, so a shorter retention would silently shorten
  # maxRetryDurationSeconds (default 2 hours, as in the delivery engine).
  longest_retry_budget_seconds = max(0, [for t in var.targets : coalesce(try(t.delivery.maxRetryDurationSeconds, null), 7200)]...)
  message_retention_seconds    = min(1209600, max(var.message_retention_seconds, local.longest_retry_budget_seconds + 3600))

  client_tags = merge(var.tags, { ClientId = var.client_id, DeliveryLambda = var.delivery_lambda_function_name })
}

# The client's queue, its DLQ and their policies: only the client's rules may send to them.
module "queue" {
  source = "../sqs-queue"

  name                       = var.queue_name
  kms_key_arn                = var.kms_key_arn
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = local.message_retention_seconds

  dead_letter_queue = {
    name                      = var.dlq_name
    message_retention_seconds = var.dlq_message_retention_seconds
    max_receive_count         = var.max_receive_count
  }

  eventbridge_senders = {
    source_arns = [for r in aws_cloudwatch_event_rule.target : r.arn]
    sid         = "AllowOwnRules"
    dlq_sid     = "AllowOwnRulesDeadLetters"
  }

  tags = local.client_tags
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
  arn            = module.queue.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = module.queue.dlq_arn
  }
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = module.queue.arn
  function_name                      = var.delivery_lambda_function_arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = local.maximum_concurrency
  }

  tags = local.client_tags
}
