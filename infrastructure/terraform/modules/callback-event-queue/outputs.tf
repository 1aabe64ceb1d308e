output "queue_arn" {
  description = "ARN of the callback event queue (the Pipe's source)."
  value       = module.queue.arn
}

output "queue_url" {
  description = "URL of the callback event queue."
  value       = module.queue.url
}

output "queue_name" {
  description = "Name of the callback event queue."
  value       = module.queue.name
}

output "dlq_arn" {
  description = "ARN of the callback event queue's DLQ."
  value       = module.queue.dlq_arn
}

output "dlq_url" {
  description = "URL of the callback event queue's DLQ."
  value       = module.queue.dlq_url
}

output "dlq_name" {
  description = "Name of the callback event queue's DLQ."
  value       = module.queue.dlq_name
}

output "rule_arn" {
  description = "ARN of the rule on the Shared Event Bus."
  value       = aws_cloudwatch_event_rule.shared_bus.arn
}

output "rule_name" {
  description = "Name of the rule on the Shared Event Bus."
  value       = aws_cloudwatch_event_rule.shared_bus.name
}

output "event_pattern" {
  description = "The rendered event pattern of the Shared Event Bus rule (JSON)."
  value       = local.shared_bus_event_pattern
}
