locals {
  targets = { for t in var.targets : t.targetId => t }

  # Resource names: readable when they fit in 64 characters, else cut and made
  # unique by a hash of the full name.
  client_base = "${var.name_prefix}-${var.client_id}"
  client_name = length(local.client_base) <= 50 ? local.client_base : "${substr(local.client_base, 0, 41)}-${substr(sha1(local.client_base), 0, 8)}"

  target_names = {
    for id, t in local.targets : id => (
      length("${local.client_base}-${id}") <= 64
      ? "${local.client_base}-${id}"
      : "${substr("${local.client_base}-${id}", 0, 55)}-${substr(sha1("${local.client_base}-${id}"), 0, 8)}"
    )
  }

  client_tags = merge(var.tags, { ClientId = var.client_id })
}

# The client's DLQ: callbacks EventBridge gave up on. Only the client's rules may send to it.
module "dlq" {
  source = "../sqs-queue"

  name                      = "${local.client_name}-apidest-dlq"
  kms_key_arn               = var.kms_key_arn
  message_retention_seconds = var.dlq_message_retention_seconds

  eventbridge_senders = {
    source_arns = [for r in aws_cloudwatch_event_rule.target : r.arn]
    sid         = "AllowOwnRulesDeadLetters"
  }

  tags = local.client_tags
}

resource "aws_cloudwatch_event_connection" "this" {
  for_each = local.targets

  name               = local.target_names[each.key]
  description        = "API key auth for ${var.client_id}/${each.key}"
  authorization_type = "API_KEY"
  kms_key_identifier = var.kms_key_arn

  auth_parameters {
    api_key {
      key   = each.value.apiKey.headerName
      value = lookup(var.client_api_keys, "${var.client_id}/${each.key}", "")
    }
  }
}

resource "aws_cloudwatch_event_api_destination" "this" {
  for_each = local.targets

  name                             = local.target_names[each.key]
  description                      = "Callbacks of ${var.client_id}/${each.key}"
  connection_arn                   = aws_cloudwatch_event_connection.this[each.key].arn
  invocation_endpoint              = each.value.invocationEndpoint
  http_method                      = upper(each.value.invocationMethod)
  invocation_rate_limit_per_second = each.value.invocationRateLimit
}

resource "aws_cloudwatch_event_rule" "target" {
  for_each = local.targets

  name           = local.target_names[each.key]
  description    = "Callbacks for ${var.client_id}/${each.key} (api-destination mode)"
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

data "aws_iam_policy_document" "invoke_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "invoke" {
  name               = "${local.client_name}-apidest"
  assume_role_policy = data.aws_iam_policy_document.invoke_assume.json
  tags               = local.client_tags
}

data "aws_iam_policy_document" "invoke" {
  statement {
    sid       = "InvokeOwnApiDestinations"
    actions   = ["events:InvokeApiDestination"]
    resources = [for d in aws_cloudwatch_event_api_destination.this : d.arn]
  }
}

resource "aws_iam_role_policy" "invoke" {
  name   = "invoke-api-destinations"
  role   = aws_iam_role.invoke.id
  policy = data.aws_iam_policy_document.invoke.json
}

resource "aws_cloudwatch_event_target" "target" {
  for_each = local.targets

  rule           = aws_cloudwatch_event_rule.target[each.key].name
  event_bus_name = var.callbacks_event_bus_name
  target_id      = "api-destination"
  arn            = aws_cloudwatch_event_api_destination.this[each.key].arn
  role_arn       = aws_iam_role.invoke.arn

  # The client receives the callback body; the signature travels as a header.
  input_path = "$.detail.payload"

  http_target {
    header_parameters = {
      "x-hmac-sha256-signature" = "$.detail.signature"
      "content-type"            = "application/vnd.api+json"
    }
  }

  retry_policy {
    maximum_event_age_in_seconds = min(86400, max(60, coalesce(try(each.value.delivery.maxRetryDurationSeconds, null), var.maximum_event_age_in_seconds)))
    maximum_retry_attempts       = var.maximum_retry_attempts
  }

  dead_letter_config {
    arn = module.dlq.arn
  }
}
