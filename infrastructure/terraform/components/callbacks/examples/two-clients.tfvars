# Example: two clients. Deploy with
#   terraform apply -var-file=examples/two-clients.tfvars -var-file=<secrets>.tfvars
# where <secrets>.tfvars (never committed) or TF_VAR_client_api_keys holds
#   client_api_keys = {
#     "client-a/target-1"       = "..."
#     "client-b/primary"        = "..."
#     "client-b/high-volume"    = "..."
#   }

environment           = "dev"
shared_event_bus_name = "nhs-notify-dev-shared-event-bus"

alarm_actions = ["arn:aws:sns:eu-west-2:123456789012:nhs-notify-dev-alerts"]

application_id_map_key = "application-ids.json"
application_id_map = {
  "client-b" = "app-client-b"
}

clients = {
  "client-a" = {
    clientId      = "client-a"
    applicationId = "app-client-a"
    subscriptions = [
      {
        subscriptionId   = "sub-1"
        subscriptionType = "MessageStatus"
        messageStatuses  = ["DELIVERED", "FAILED"]
        targetIds        = ["target-1"]
      },
      {
        subscriptionId   = "sub-2"
        subscriptionType = "ChannelStatus"
        channelType      = "NHSAPP"
        channelStatuses  = ["DELIVERED"]
        supplierStatuses = ["read"]
        targetIds        = ["target-1"]
      },
    ]
    targets = [
      {
        targetId            = "target-1"
        type                = "API"
        invocationEndpoint  = "https://client-a.example/callbacks"
        invocationMethod    = "POST"
        invocationRateLimit = 10
        apiKey              = { headerName = "x-api-key" }
        delivery = {
          mode                    = "api-destination"
          maxRetryDurationSeconds = 7200
        }
      },
    ]
  }

  # client-b has no applicationId: it comes from application_id_map.
  "client-b" = {
    clientId = "client-b"
    subscriptions = [
      {
        subscriptionId   = "all-message-statuses"
        subscriptionType = "MessageStatus"
        messageStatuses  = ["DELIVERED", "FAILED", "SENDING", "PENDING_ENRICHMENT", "ENRICHED", "CREATED", "CANCELLED"]
        targetIds        = ["primary", "high-volume"]
      },
    ]
    targets = [
      {
        targetId            = "primary"
        type                = "API"
        invocationEndpoint  = "https://callbacks.client-b.example/nhs-notify"
        invocationMethod    = "POST"
        invocationRateLimit = 5
        apiKey              = { headerName = "x-api-key" }
      },
      {
        targetId            = "high-volume"
        type                = "API"
        invocationEndpoint  = "https://bulk.client-b.example/nhs-notify"
        invocationMethod    = "POST"
        invocationRateLimit = 20
        apiKey              = { headerName = "x-api-key" }
        delivery = {
          mode                    = "https"
          maxRetryDurationSeconds = 7200
          initialBackoffMs        = 1000
          maxBackoffMs            = 60000
          timeoutMs               = 5000
          circuitBreaker = {
            enabled          = true
            failureThreshold = 5
            cooldownMs       = 30000
          }
        }
      },
    ]
  }
}
