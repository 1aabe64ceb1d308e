# What an operator role needs for `callbacks dlq list|replay --sqs-queue-url` and
# `callbacks replay` (README, "Replaying callbacks on AWS"). Rendered as a policy
# document (output operator_policy_json) for the role the team manages; this
# component creates no IAM principal for people.
locals {
  operator_sqs_arn_prefix = "arn:${data.aws_partition.current.partition}:sqs:${var.region}:${data.aws_caller_identity.current.account_id}"
  operator_events_prefix  = "arn:${data.aws_partition.current.partition}:events:${var.region}:${data.aws_caller_identity.current.account_id}"

  # Every client DLQ: API destination (back on the bus) and https mode (back to the client queue).
  operator_dlq_arns = concat(
    [for client_id, m in module.api_destinations : m.dlq_arn],
    [for client_id, name in local.https_dlq_names : "${local.operator_sqs_arn_prefix}:${name}"],
  )
  operator_client_queue_arns = [for client_id, name in local.https_queue_names : "${local.operator_sqs_arn_prefix}:${name}"]

  operator_config_object_arns = concat(
    ["${module.client_config_storage.bucket_arn}/${var.config_prefix}*"],
    var.application_id_map_key == null ? [] : ["${module.client_config_storage.bucket_arn}/${var.application_id_map_key}"],
  )
}

data "aws_iam_policy_document" "operator" {
  statement {
    sid       = "PutDeadLettersBackOnTheBus"
    actions   = ["events:PutEvents", "events:DescribeEventBus"]
    resources = [module.callbacks_event_bus.bus_arn]
  }

  # ListRules finds the client's per-target rules (the replay's FilterArns). It is a
  # List action without resource types: IAM accepts only "*" for it, and it reads names
  # and patterns, nothing of the callbacks.
  statement {
    sid       = "FindClientRules"
    actions   = ["events:ListRules"]
    resources = ["*"]
  }

  statement {
    sid       = "ReplayTheArchive"
    actions   = ["events:StartReplay", "events:DescribeArchive"]
    resources = [module.callbacks_event_bus.archive_arn]
  }

  # Replays started by `callbacks replay` are named callbacks-<client>-<time>.
  statement {
    sid       = "FollowReplays"
    actions   = ["events:DescribeReplay"]
    resources = ["${local.operator_events_prefix}:replay/callbacks-*"]
  }

  statement {
    sid = "ReadAndRemoveDeadLetters"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
    ]
    resources = local.operator_dlq_arns
  }

  dynamic "statement" {
    for_each = length(local.operator_client_queue_arns) > 0 ? [1] : []

    content {
      sid       = "RequeueHttpsDeadLetters"
      actions   = ["sqs:SendMessage"]
      resources = local.operator_client_queue_arns
    }
  }

  # Re-signing needs the API keys in force; the replay check reads LastModified (HeadObject).
  statement {
    sid       = "ReadClientConfig"
    actions   = ["s3:GetObject"]
    resources = local.operator_config_object_arns
  }

  # The DLQs, the bus and the configuration objects are encrypted with the pipeline key.
  statement {
    sid       = "UsePipelineKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

output "operator_policy_json" {
  description = "IAM policy document (JSON) for the operator role that runs `callbacks dlq list|replay --sqs-queue-url` and `callbacks replay`: PutEvents on the Callbacks bus, StartReplay/DescribeReplay on its archive, the DLQ messages, the client configuration objects and the pipeline key."
  value       = data.aws_iam_policy_document.operator.json
}
