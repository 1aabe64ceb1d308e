locals {
  has_dlq    = var.dead_letter_queue != null
  has_policy = var.eventbridge_senders != null

  # The policy of each queue that EventBridge rules send to: the queue itself
  # (the rules' target) and its DLQ (the rules' dead-letter config).
  send_policies = local.has_policy ? merge(
    { this = { sid = var.eventbridge_senders.sid, queue_arn = aws_sqs_queue.this.arn } },
    { for q in aws_sqs_queue.dlq : "dlq" => { sid = coalesce(var.eventbridge_senders.dlq_sid, "${var.eventbridge_senders.sid}DeadLetters"), queue_arn = q.arn } },
  ) : {}
}

resource "aws_sqs_queue" "dlq" {
  count = local.has_dlq ? 1 : 0

  name                              = var.dead_letter_queue.name
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = var.dead_letter_queue.message_retention_seconds
  tags                              = var.tags
}

resource "aws_sqs_queue" "this" {
  name                              = var.name
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds

  redrive_policy = !local.has_dlq ? null : jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[0].arn
    maxReceiveCount     = var.dead_letter_queue.max_receive_count
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  count = local.has_dlq ? 1 : 0

  queue_url = aws_sqs_queue.dlq[0].id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

data "aws_iam_policy_document" "send" {
  for_each = local.send_policies

  statement {
    sid       = each.value.sid
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [each.value.queue_arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = var.eventbridge_senders.source_arns
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.queue_arn]

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
  count = local.has_policy ? 1 : 0

  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.send["this"].json
}

resource "aws_sqs_queue_policy" "dlq" {
  count = local.has_policy && local.has_dlq ? 1 : 0

  queue_url = aws_sqs_queue.dlq[0].id
  policy    = data.aws_iam_policy_document.send["dlq"].json
}
