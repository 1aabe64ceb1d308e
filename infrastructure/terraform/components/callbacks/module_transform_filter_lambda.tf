module "transform_filter_lambda" {
  source = "../../modules/transform-filter-lambda"

  name_prefix     = local.name_prefix
  kms_key_arn     = aws_kms_key.main.arn
  lambda_zip_path = local.transform_filter_lambda_zip
  architecture    = var.lambda_architecture

  log_retention_in_days    = var.log_retention_in_days
  rust_log                 = var.rust_log
  metrics_namespace        = var.metrics_namespace
  config_bucket_name       = module.client_config_storage.bucket_name
  config_bucket_arn        = module.client_config_storage.bucket_arn
  config_prefix            = module.client_config_storage.config_prefix
  application_id_map_key   = var.application_id_map_key
  config_cache_ttl_seconds = var.config_cache_ttl_seconds
  message_link_base_url    = var.message_link_base_url

  source_queue_arn                   = module.callback_event_queue.queue_arn
  batch_size                         = var.pipe_batch_size
  maximum_batching_window_in_seconds = var.pipe_maximum_batching_window_in_seconds

  callbacks_event_bus_arn     = module.callbacks_event_bus.bus_arn
  callbacks_event_source      = local.callbacks_event_source
  callbacks_event_detail_type = local.callbacks_event_detail_type
}
