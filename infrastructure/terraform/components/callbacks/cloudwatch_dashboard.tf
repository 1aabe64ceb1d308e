locals {
  # Metrics the Lambdas emit in Embedded Metric Format (see
  # infrastructure/terraform/README.md, "Metrics"), plus the AWS metrics of the
  # queues and the Callbacks bus rules. The transform-filter Lambda emits its
  # counts with the dimension FunctionName.
  ns = var.metrics_namespace
  tf = ["FunctionName", module.transform_filter_lambda.function_name]

  # Every widget is a 6-high time series of 5-minute periods in var.region; the
  # list below gives each one's place, width and other properties.
  dashboard_widgets = [
    for w in local.dashboard_widget_layout : {
      type       = "metric"
      x          = w.x
      y          = w.y
      width      = w.width
      height     = 6
      properties = merge({ region = var.region, view = "timeSeries", stacked = false, period = 300 }, w.properties)
    }
  ]

  dashboard_widget_layout = [
    {
      x = 0, y = 0, width = 12
      properties = {
        title = "Events in"
        stat  = "Sum"
        metrics = [
          concat([local.ns, "EventsIn"], local.tf, [{ label = "received by transform-filter" }]),
          ["AWS/SQS", "NumberOfMessagesSent", "QueueName", module.callback_event_queue.queue_name, { label = "put on the callback event queue" }],
        ]
      }
    },
    {
      x = 12, y = 0, width = 12
      properties = {
        title = "Callbacks out"
        metrics = [
          concat([local.ns, "CallbacksOut"], local.tf, [{ stat = "Sum", label = "generated (Pipe -> Callbacks bus)" }]),
          [{ expression = "SUM(SEARCH('{${local.ns},ClientId} MetricName=\"CallbacksDelivered\"', 'Sum', 300))", label = "delivered (https mode)", id = "https" }],
          [{ expression = "SUM(SEARCH('{AWS/Events,EventBusName,RuleName} EventBusName=\"${module.callbacks_event_bus.bus_name}\" MetricName=\"Invocations\"', 'Sum', 300))", label = "rule invocations (all targets)", id = "rules" }],
        ]
      }
    },
    {
      x = 0, y = 6, width = 12
      properties = {
        title = "Rejects and filtered"
        stat  = "Sum"
        metrics = [
          concat([local.ns, "EventsRejected"], local.tf, [{ label = "rejected (invalid events)" }]),
          concat([local.ns, "EventsFilteredOut"], local.tf, [{ label = "filtered out (no config / no subscription)" }]),
          ["AWS/SQS", "NumberOfMessagesSent", "QueueName", module.transform_filter_lambda.rejected_events_queue_name, { label = "rejected-events queue" }],
        ]
      }
    },
    {
      x = 12, y = 6, width = 12
      properties = {
        title = "DLQ depth per client"
        stat  = "Maximum"
        metrics = [
          for key, name in local.dlq_names : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name, { label = key }]
        ]
      }
    },
    {
      x = 0, y = 12, width = 24
      properties = {
        title = "Latency (ms, p99): transform-filter batch, https delivery per client"
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
