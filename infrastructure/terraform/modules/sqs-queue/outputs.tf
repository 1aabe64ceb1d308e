output "arn" {
  description = "ARN of the queue."
  value       = aws_sqs_queue.this.arn
}

output "url" {
  description = "URL of the queue."
  value       = aws_sqs_queue.this.id
}

output "name" {
  description = "Name of the queue."
  value       = aws_sqs_queue.this.name
}

output "dlq_arn" {
  description = "ARN of the queue's DLQ, or null without one."
  value       = one(aws_sqs_queue.dlq[*].arn)
}

output "dlq_url" {
  description = "URL of the queue's DLQ, or null without one."
  value       = one(aws_sqs_queue.dlq[*].id)
}

output "dlq_name" {
  description = "Name of the queue's DLQ, or null without one."
  value       = one(aws_sqs_queue.dlq[*].name)
}
