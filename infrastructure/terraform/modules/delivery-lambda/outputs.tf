output "function_name" {
  description = "Name of the delivery Lambda."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the delivery Lambda. Depends on the role policy, so event source mappings created from it find their SQS permissions in place."
  value       = aws_lambda_function.this.arn
  depends_on  = [aws_iam_role_policy.this]
}

output "role_arn" {
  description = "ARN of the delivery Lambda's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Log group of the delivery Lambda."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "state_table_name" {
  description = "DynamoDB table of the shared delivery state (circuit breakers, attempt histories)."
  value       = aws_dynamodb_table.state.name
}
