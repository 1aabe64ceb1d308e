locals {
  name_prefix = "${var.project}-${var.environment}-${var.component}"

  default_tags = merge(var.default_tags, {
    Project     = var.project
    Environment = var.environment
    Component   = var.component
  })

  # The Callbacks Event Bus contract (docs/CONTRACTS.md,
  # tests/fixtures/eventbridge-routing.json): the Pipe puts every transform
  # output element with this source and detail-type; every per-target rule
  # matches them plus detail.clientId and detail.targetId.
  callbacks_event_source      = "uk.nhs.notify.client-callbacks"
  callbacks_event_detail_type = "ClientCallback"

  # The four accepted CloudEvent types, matched as detail.type on the Shared Event Bus.
  accepted_event_types = [
    "uk.nhs.notify.message.status.PUBLISHED.v1",
    "uk.nhs.notify.channel.status.PUBLISHED.v1",
    "uk.nhs.notify.client-callbacks.message.status.PUBLISHED.v1",
    "uk.nhs.notify.client-callbacks.channel.status.PUBLISHED.v1",
  ]

  # Targets by delivery mode, per client. A target without delivery.mode is an
  # API destination target.
  api_destination_targets = {
    for client_id, c in var.clients : client_id => [
      for t in c.targets : t if coalesce(try(t.delivery.mode, null), "api-destination") == "api-destination"
    ]
  }
  https_targets = {
    for client_id, c in var.clients : client_id => [
      for t in c.targets : t if coalesce(try(t.delivery.mode, null), "api-destination") == "https"
    ]
  }

  # Clients (keyed by clientId) that have at least one target of each mode.
  api_destination_clients = { for client_id, c in var.clients : client_id => c if length(local.api_destination_targets[client_id]) > 0 }
  https_clients           = { for client_id, c in var.clients : client_id => c if length(local.https_targets[client_id]) > 0 }

  # Names of the per-client https delivery queues. Chosen here, not in the
  # client-delivery module, so that the delivery Lambda's role can name the
  # queue ARNs while the event source mappings depend on that role (no cycle).
  https_client_names = {
    for client_id, c in local.https_clients : client_id => (
      length("${local.name_prefix}-${client_id}") <= 50
      ? "${local.name_prefix}-${client_id}"
      : "${substr("${local.name_prefix}-${client_id}", 0, 41)}-${substr(sha1("${local.name_prefix}-${client_id}"), 0, 8)}"
    )
  }
  https_queue_names = { for client_id, n in local.https_client_names : client_id => "${n}-https" }
  https_dlq_names   = { for client_id, n in local.https_client_names : client_id => "${n}-https-dlq" }
  sqs_arn_prefix    = "arn:${data.aws_partition.current.partition}:sqs:${var.region}:${data.aws_caller_identity.current.account_id}"

  repo_root                   = "${path.module}/../../../.."
  transform_filter_lambda_zip = coalesce(var.transform_filter_lambda_zip, "${local.repo_root}/target/lambda/transform-filter/bootstrap.zip")
  delivery_lambda_zip         = coalesce(var.delivery_lambda_zip, "${local.repo_root}/target/lambda/delivery/bootstrap.zip")
}
