output "bus_name" {
  description = "Name of the Callbacks Event Bus."
  value       = aws_cloudwatch_event_bus.this.name
}

output "bus_arn" {
  description = "ARN of the Callbacks Event Bus."
  value       = aws_cloudwatch_event_bus.this.arn
}

output "archive_name" {
  description = "Name of the archive of the Callbacks Event Bus (use it to start a replay)."
  value       = aws_cloudwatch_event_archive.this.name
}

output "archive_arn" {
  description = "ARN of the archive of the Callbacks Event Bus."
  value       = aws_cloudwatch_event_archive.this.arn
}
