output "callback_event_queue_url" {
  description = "URL of the callback event queue (Shared Event Bus -> Pipe)."
  value       = module.callback_event_queue.queue_url
}

output "callback_event_dlq_arn" {
  description = "ARN of the callback event queue's DLQ."
  value       = module.callback_event_queue.dlq_arn
}

output "rejected_events_queue_url" {
  description = "URL of the rejected-events queue."
  value       = module.transform_filter_lambda.rejected_events_queue_url
}

output "shared_bus_rule_name" {
  description = "Name of the rule on the Shared Event Bus."
  value       = module.callback_event_queue.rule_name
}

output "shared_bus_event_pattern" {
  description = "Event pattern of the rule on the Shared Event Bus (JSON)."
  value       = module.callback_event_queue.event_pattern
}

output "callbacks_event_bus_name" {
  description = "Name of the Callbacks Event Bus."
  value       = module.callbacks_event_bus.bus_name
}

output "callbacks_event_bus_archive_name" {
  description = "Name of the Callbacks Event Bus archive (for replays)."
  value       = module.callbacks_event_bus.archive_name
}

output "shared_event_bus_name" {
  description = "Name of the Shared Event Bus the pipeline reads from."
  value       = var.shared_event_bus_name
}

output "config_bucket_name" {
  description = "Name of the client configuration bucket."
  value       = module.client_config_storage.bucket_name
}

output "client_config_object_keys" {
  description = "Key of each client's configuration object, by clientId."
  value       = module.client_config_storage.object_keys

  precondition {
    condition = nonsensitive(alltrue(flatten([
      for client_id, c in var.clients : [for t in c.targets : lookup(var.client_api_keys, "${client_id}/${t.targetId}", "") != ""]
    ])))
    error_message = "client_api_keys needs a non-empty value for every \"<clientId>/<targetId>\" of clients."
  }
}

output "transform_filter_function_name" {
  description = "Name of the transform-filter Lambda."
  value       = module.transform_filter_lambda.function_name
}

output "pipe_name" {
  description = "Name of the EventBridge Pipe."
  value       = module.transform_filter_lambda.pipe_name
}

output "api_destination_dlq_arns" {
  description = "ARN of each client's API destination DLQ, by clientId."
  value       = { for client_id, m in module.api_destinations : client_id => m.dlq_arn }
}

output "api_destination_rule_names" {
  description = "Per-target rule names of the API destination targets, by clientId then targetId."
  value       = { for client_id, m in module.api_destinations : client_id => m.rule_names }
}

output "https_delivery_queue_urls" {
  description = "URL of each client's https delivery queue, by clientId."
  value       = { for client_id, m in module.client_delivery : client_id => m.queue_url }
}

output "https_delivery_dlq_arns" {
  description = "ARN of each client's https delivery DLQ, by clientId."
  value       = { for client_id, m in module.client_delivery : client_id => m.dlq_arn }
}

output "delivery_function_name" {
  description = "Name of the delivery Lambda, or null when no target uses https mode."
  value       = one([for m in module.delivery_lambda : m.function_name])
}

output "dlq_arns" {
  description = "Every DLQ ARN of the pipeline: callback-event-queue, api-destination/<clientId>, https/<clientId>."
  value = merge(
    { "callback-event-queue" = module.callback_event_queue.dlq_arn },
    { for client_id, m in module.api_destinations : "api-destination/${client_id}" => m.dlq_arn },
    { for client_id, m in module.client_delivery : "https/${client_id}" => m.dlq_arn },
  )
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

output "target_event_patterns" {
  description = "Rendered event pattern (JSON) of every per-target rule on the Callbacks bus, keyed \"<clientId>/<targetId>\"."
  value = merge(
    merge([for client_id, m in module.api_destinations : { for target_id, p in m.event_patterns : "${client_id}/${target_id}" => p }]...),
    merge([for client_id, m in module.client_delivery : { for target_id, p in m.event_patterns : "${client_id}/${target_id}" => p }]...),
  )
}
