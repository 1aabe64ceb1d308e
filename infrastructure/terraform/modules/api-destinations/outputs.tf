output "client_id" {
  description = "The client of this instance."
  value       = var.client_id
}

output "dlq_arn" {
  description = "ARN of the client's DLQ (callbacks EventBridge gave up on)."
  value       = module.dlq.arn
}

output "dlq_url" {
  description = "URL of the client's DLQ."
  value       = module.dlq.url
}

output "dlq_name" {
  description = "Name of the client's DLQ."
  value       = module.dlq.name
}

output "rule_names" {
  description = "Per-target rule names on the Callbacks bus, by targetId."
  value       = { for k, r in aws_cloudwatch_event_rule.target : k => r.name }
}

output "event_patterns" {
  description = "Rendered per-target event patterns (JSON), by targetId."
  value       = { for k, r in aws_cloudwatch_event_rule.target : k => r.event_pattern }
}

output "api_destination_arns" {
  description = "API destination ARNs, by targetId."
  value       = { for k, d in aws_cloudwatch_event_api_destination.this : k => d.arn }
}

output "connection_arns" {
  description = "Connection ARNs (API key auth), by targetId."
  value       = { for k, c in aws_cloudwatch_event_connection.this : k => c.arn }
}
