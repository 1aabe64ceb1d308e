output "bucket_name" {
  description = "Name of the client configuration bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the client configuration bucket."
  value       = aws_s3_bucket.this.arn
}

output "config_prefix" {
  description = "Key prefix of the client configuration objects."
  value       = var.config_prefix
}

output "object_keys" {
  description = "Key of each client's configuration object, by clientId."
  value       = { for k, o in aws_s3_object.client_config : k => o.key }
}

output "application_id_map_key" {
  description = "Key of the application id map object, or null."
  value       = var.application_id_map_key
}

output "documents" {
  description = "The rendered client configuration documents, by clientId (sensitive: they hold the API keys)."
  value       = local.documents
  sensitive   = true
}
