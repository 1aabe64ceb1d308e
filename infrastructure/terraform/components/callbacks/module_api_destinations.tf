# One instance per client with api-destination targets, keyed by clientId.
module "api_destinations" {
  source   = "../../modules/api-destinations"
  for_each = local.api_destination_clients

  name_prefix     = local.name_prefix
  client_id       = each.key
  targets         = local.api_destination_targets[each.key]
  client_api_keys = var.client_api_keys
  max_rate        = var.api_destination_max_rate
  kms_key_arn     = aws_kms_key.main.arn

  callbacks_event_bus_name    = module.callbacks_event_bus.bus_name
  callbacks_event_source      = local.callbacks_event_source
  callbacks_event_detail_type = local.callbacks_event_detail_type

  maximum_event_age_in_seconds = var.api_destination_maximum_event_age_in_seconds
  maximum_retry_attempts       = var.api_destination_maximum_retry_attempts
}
