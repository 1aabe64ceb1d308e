module "callback_event_queue" {
  source = "../../modules/callback-event-queue"

  name_prefix           = local.name_prefix
  kms_key_arn           = aws_kms_key.main.arn
  shared_event_bus_name = var.shared_event_bus_name
  event_types           = local.accepted_event_types
}
