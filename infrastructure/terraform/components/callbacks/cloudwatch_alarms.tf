locals {
  # Every DLQ of the pipeline, keyed "<kind>/<clientId>" for the per-client ones.
  dlq_names = merge(
    { "callback-event-queue" = module.callback_event_queue.dlq_name },
    { for client_id, m in module.api_destinations : "api-destination/${client_id}" => m.dlq_name },
    { for client_id, m in module.client_delivery : "https/${client_id}" => m.dlq_name },
  )

  lambda_function_names = merge(
    { "transform-filter" = module.transform_filter_lambda.function_name },
    { for m in module.delivery_lambda : "delivery" => m.function_name },
  )
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = local.dlq_names

  alarm_name          = "${local.name_prefix}-dlq-depth-${replace(each.key, "/", "-")}"
  alarm_description   = "Messages are waiting on the DLQ ${each.value} (${each.key}): callbacks or events that could not be processed or delivered."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dlq_age" {
  for_each = local.dlq_names

  alarm_name          = "${local.name_prefix}-dlq-age-${replace(each.key, "/", "-")}"
  alarm_description   = "The oldest message on the DLQ ${each.value} (${each.key}) is older than ${var.dlq_age_alarm_threshold_seconds} s: nobody has redriven or cleared it."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.dlq_age_alarm_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "callback_queue_age" {
  alarm_name          = "${local.name_prefix}-callback-queue-age"
  alarm_description   = "Status events wait on the callback event queue longer than ${var.callback_queue_age_alarm_threshold_seconds} s: the Pipe is stopped, failing or too slow."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = module.callback_event_queue.queue_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.callback_queue_age_alarm_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each = local.lambda_function_names

  alarm_name          = "${local.name_prefix}-lambda-errors-${each.key}"
  alarm_description   = "The ${each.key} Lambda (${each.value}) returned errors."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  for_each = local.lambda_function_names

  alarm_name          = "${local.name_prefix}-lambda-throttles-${each.key}"
  alarm_description   = "The ${each.key} Lambda (${each.value}) was throttled."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "pipe_failed" {
  alarm_name          = "${local.name_prefix}-pipe-execution-failed"
  alarm_description   = "Executions of the Pipe ${module.transform_filter_lambda.pipe_name} failed (enrichment or target stage); the batch returns to the callback event queue and, after max receives, its DLQ."
  namespace           = "AWS/EventBridge/Pipes"
  metric_name         = "ExecutionFailed"
  dimensions          = { PipeName = module.transform_filter_lambda.pipe_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
