output "function_name" {
  description = "Name of the transform-filter Lambda."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the transform-filter Lambda."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the Lambda's execution role."
  value       = aws_iam_role.lambda.arn
}

output "log_group_name" {
  description = "Log group of the Lambda."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "pipe_name" {
  description = "Name of the EventBridge Pipe."
  value       = aws_pipes_pipe.this.name
}

output "pipe_arn" {
  description = "ARN of the EventBridge Pipe."
  value       = aws_pipes_pipe.this.arn
}

output "rejected_events_queue_url" {
  description = "URL of the rejected-events queue (REJECTED_EVENTS_QUEUE_URL)."
  value       = module.rejected_events_queue.url
}

output "rejected_events_queue_arn" {
  description = "ARN of the rejected-events queue."
  value       = module.rejected_events_queue.arn
}

output "rejected_events_queue_name" {
  description = "Name of the rejected-events queue."
  value       = module.rejected_events_queue.name
}
