locals {
  # Metrics the Lambdas emit in Embedded Metric Format (see
  # infrastructure/terraform/README.md, "Metrics"), plus the AWS metrics of the
  # queues and the Callbacks bus rules. The transform-filter Lambda emits its
  # counts with the dimension FunctionName.
  ns = var.metrics_namespace
  tf = ["FunctionName", module.transform_filter_lambda.function_name]

  dashboard_widgets = [
    {
      type   = "metric"
      x      = 0
      y      = 0
      width  = 12
      height = 6
      properties = {
        title   = "Events in"
        region  = var.region
        view    = "timeSeries"
        stacked = false
        stat    = "Sum"
        period  = 300
        metrics = [
          concat([local.ns, "EventsIn"], local.tf, [{ label = "received by transform-filter" }]),
          ["AWS/SQS", "NumberOfMessagesSent", "QueueName", module.callback_event_queue.queue_name, { label = "put on the callback event queue" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 0
      width  = 12
      height = 6
      properties = {
        title   = "Callbacks out"
        region  = var.region
        view    = "timeSeries"
        stacked = false
        period  = 300
        metrics = [
          concat([local.ns, "CallbacksOut"], local.tf, [{ stat = "Sum", label = "generated (Pipe -> Callbacks bus)" }]),
          [{ expression = "SUM(SEARCH('{${local.ns},ClientId} MetricName=\"CallbacksDelivered\"', 'Sum', 300))", label = "delivered (https mode)", id = "https" }],
          [{ expression = "SUM(SEARCH('{AWS/Events,EventBusName,RuleName} EventBusName=\"${module.callbacks_event_bus.bus_name}\" MetricName=\"Invocations\"', 'Sum', 300))", label = "rule invocations (all targets)", id = "rules" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 6
      width  = 12
      height = 6
      properties = {
        title   = "Rejects and filtered"
        region  = var.region
        view    = "timeSeries"
        stacked = false
        stat    = "Sum"
        period  = 300
        metrics = [
          concat([local.ns, "EventsRejected"], local.tf, [{ label = "rejected (invalid events)" }]),
          concat([local.ns, "EventsFilteredOut"], local.tf, [{ label = "filtered out (no config / no subscription)" }]),
          ["AWS/SQS", "NumberOfMessagesSent", "QueueName", module.transform_filter_lambda.rejected_events_queue_name, { label = "rejected-events queue" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 6
      width  = 12
      height = 6
      properties = {
        title   = "DLQ depth per client"
        region  = var.region
        view    = "timeSeries"
        stacked = false
        stat    = "Maximum"
        period  = 300
        metrics = [
          for key, name in local.dlq_names : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name, { label = key }]
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 12
      width  = 24
      height = 6
      properties = {
        title   = "Latency (ms, p99): transform-filter batch, https delivery per client"
        region  = var.region
        view    = "timeSeries"
        stacked = false
        period  = 300
        metrics = [
          concat([local.ns, "Duration"], local.tf, [{ stat = "p99", label = "transform-filter batch" }]),
          [{ expression = "SEARCH('{${local.ns},ClientId} MetricName=\"DeliveryLatencyMs\"', 'p99', 300)", label = "", id = "latency" }],
          [{ expression = "SEARCH('{${local.ns},ClientId} MetricName=\"DeliveryFailed\"', 'Sum', 300)", label = "", id = "failed", yAxis = "right" }],
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name_prefix
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
