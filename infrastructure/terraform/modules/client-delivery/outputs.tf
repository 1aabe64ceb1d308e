output "client_id" {
  description = "The client of this instance."
  value       = var.client_id
}

output "queue_arn" {
  description = "ARN of the client's delivery queue."
  value       = module.queue.arn
}

output "queue_url" {
  description = "URL of the client's delivery queue."
  value       = module.queue.url
}

output "queue_name" {
  description = "Name of the client's delivery queue."
  value       = module.queue.name
}

output "message_retention_seconds" {
  description = "Retention of the client's delivery queue: at least its longest retry budget plus an hour."
  value       = local.message_retention_seconds
}

output "dlq_arn" {
  description = "ARN of the client's delivery DLQ."
  value       = module.queue.dlq_arn
}

output "dlq_url" {
  description = "URL of the client's delivery DLQ."
  value       = module.queue.dlq_url
}

output "dlq_name" {
  description = "Name of the client's delivery DLQ."
  value       = module.queue.dlq_name
}

output "rule_names" {
  description = "Per-target rule names on the Callbacks bus, by targetId."
  value       = { for k, r in aws_cloudwatch_event_rule.target : k => r.name }
}

output "event_patterns" {
  description = "Rendered per-target event patterns (JSON), by targetId."
  value       = { for k, r in aws_cloudwatch_event_rule.target : k => r.event_pattern }
}

output "maximum_concurrency" {
  description = "maximum_concurrency of the event source mapping."
  value       = local.maximum_concurrency
}
