module "client_config_storage" {
  source = "../../modules/client-config-storage"

  name_prefix            = local.name_prefix
  kms_key_arn            = aws_kms_key.main.arn
  clients                = var.clients
  client_api_keys        = var.client_api_keys
  config_prefix          = var.config_prefix
  application_id_map     = var.application_id_map
  application_id_map_key = var.application_id_map_key
}
