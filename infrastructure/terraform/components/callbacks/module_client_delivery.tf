# The delivery Lambda exists only when some target uses https delivery mode.
module "delivery_lambda" {
  source = "../../modules/delivery-lambda"
  count  = length(local.https_clients) > 0 ? 1 : 0

  name_prefix     = local.name_prefix
  kms_key_arn     = aws_kms_key.main.arn
  lambda_zip_path = local.delivery_lambda_zip
  architecture    = var.lambda_architecture

  log_retention_in_days    = var.log_retention_in_days
  rust_log                 = var.rust_log
  metrics_namespace        = var.metrics_namespace
  config_bucket_name       = module.client_config_storage.bucket_name
  config_bucket_arn        = module.client_config_storage.bucket_arn
  config_prefix            = module.client_config_storage.config_prefix
  application_id_map_key   = var.application_id_map_key
  config_cache_ttl_seconds = var.config_cache_ttl_seconds

  client_queue_arns = [for client_id, name in local.https_queue_names : "${local.sqs_arn_prefix}:${name}"]
  client_dlq_arns   = [for client_id, name in local.https_dlq_names : "${local.sqs_arn_prefix}:${name}"]
}

# One instance per client with https targets, keyed by clientId.
module "client_delivery" {
  source   = "../../modules/client-delivery"
  for_each = local.https_clients

  name_prefix = local.name_prefix
  client_id   = each.key
  targets     = local.https_targets[each.key]
  queue_name  = local.https_queue_names[each.key]
  dlq_name    = local.https_dlq_names[each.key]
  kms_key_arn = aws_kms_key.main.arn

  callbacks_event_bus_name    = module.callbacks_event_bus.bus_name
  callbacks_event_source      = local.callbacks_event_source
  callbacks_event_detail_type = local.callbacks_event_detail_type

  delivery_lambda_function_name = module.delivery_lambda[0].function_name
  delivery_lambda_function_arn  = module.delivery_lambda[0].function_arn
}
