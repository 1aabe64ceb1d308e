module "callbacks_event_bus" {
  source = "../../modules/callbacks-event-bus"

  name_prefix            = local.name_prefix
  kms_key_arn            = aws_kms_key.main.arn
  archive_retention_days = var.archive_retention_days
}
