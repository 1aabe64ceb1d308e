locals {
  queue_name = "${var.name_prefix}-callback-events"

  # Events on the Shared Event Bus are EventBridge envelopes whose `detail` is the
  # CloudEvent, so the CloudEvent `type` is matched as `detail.type`.
  shared_bus_event_pattern = jsonencode({
    detail = {
      type = var.event_types
    }
  })
}

# The queue, its DLQ and their policies: only this rule may send to them.
module "queue" {
  source = "../sqs-queue"

  name                       = local.queue_name
  kms_key_arn                = var.kms_key_arn
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds

  dead_letter_queue = {
    name                      = "${local.queue_name}-dlq"
    message_retention_seconds = var.dlq_message_retention_seconds
    max_receive_count         = var.max_receive_count
  }

  eventbridge_senders = {
    source_arns = [aws_cloudwatch_event_rule.shared_bus.arn]
    sid         = "AllowOnlyTheSharedBusRule"
    dlq_sid     = "AllowTheSharedBusRuleDeadLetters"
  }

  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "shared_bus" {
  name           = "${var.name_prefix}-status-events"
  description    = "Message and channel status CloudEvents for NHS Notify client callbacks."
  event_bus_name = var.shared_event_bus_name
  event_pattern  = local.shared_bus_event_pattern
  tags           = var.tags
}

resource "aws_cloudwatch_event_target" "queue" {
  rule           = aws_cloudwatch_event_rule.shared_bus.name
  event_bus_name = var.shared_event_bus_name
  target_id      = "callback-event-queue"
  arn            = module.queue.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = module.queue.dlq_arn
  }
}
