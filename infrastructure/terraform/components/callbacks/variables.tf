variable "project" {
  description = "Project name, the first part of every resource name."
  type        = string
  default     = "nhs-notify"

  validation {
    condition     = can(regex("^[a-z0-9-]{2,16}$", var.project))
    error_message = "project must be 2-16 lower-case letters, digits or hyphens."
  }
}

variable "environment" {
  description = "Environment name, e.g. dev, int, prod."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{2,12}$", var.environment))
    error_message = "environment must be 2-12 lower-case letters, digits or hyphens."
  }
}

variable "component" {
  description = "Component name, part of every resource name."
  type        = string
  default     = "callbacks"

  validation {
    condition     = can(regex("^[a-z0-9-]{2,12}$", var.component))
    error_message = "component must be 2-12 lower-case letters, digits or hyphens."
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-2."
  }
}

variable "default_tags" {
  description = "Extra tags for every resource (merged over Project/Environment/Component)."
  type        = map(string)
  default     = {}
}

variable "shared_event_bus_name" {
  description = "Name (or ARN) of the NHS Notify Shared Event Bus that carries the status CloudEvents."
  type        = string

  validation {
    condition     = length(var.shared_event_bus_name) > 0
    error_message = "shared_event_bus_name must not be empty."
  }
}

variable "clients" {
  description = "Client configuration documents (schemas/client-config.schema.json, docs/CONTRACTS.md; tests/terraform/test_clients_schema.py fails on any drift between this type and the schema) keyed by clientId: the one source of truth for the S3 config objects, the API destinations and the https delivery queues. API key values go in client_api_keys, never here."
  type = map(object({
    clientId      = string
    applicationId = optional(string)
    subscriptions = list(object({
      subscriptionId   = string
      subscriptionType = string
      messageStatuses  = optional(list(string))
      channelType      = optional(string)
      channelStatuses  = optional(list(string))
      supplierStatuses = optional(list(string))
      targetIds        = list(string)
    }))
    targets = list(object({
      targetId            = string
      type                = string
      invocationEndpoint  = string
      invocationMethod    = string
      invocationRateLimit = number
      apiKey = object({
        headerName  = string
        headerValue = optional(string)
      })
      delivery = optional(object({
        mode                    = optional(string)
        maxRetryDurationSeconds = optional(number)
        initialBackoffMs        = optional(number)
        maxBackoffMs            = optional(number)
        timeoutMs               = optional(number)
        circuitBreaker = optional(object({
          enabled          = bool
          failureThreshold = optional(number)
          cooldownMs       = optional(number)
        }))
        mtls = optional(object({
          certPemFile = string
          keyPemFile  = string
          caPemFile   = optional(string)
        }))
      }))
    }))
  }))

  validation {
    condition     = alltrue([for k, c in var.clients : k == c.clientId])
    error_message = "Every key of clients must equal its clientId."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : concat(
        [can(regex("^[A-Za-z0-9_-]{1,64}$", c.clientId))],
        [for t in c.targets : can(regex("^[A-Za-z0-9_-]{1,64}$", t.targetId))],
      )
    ]))
    error_message = "clientId and targetId must be 1-64 letters, digits, '_' or '-' (they become parts of AWS resource names)."
  }

  validation {
    condition     = alltrue([for k, c in var.clients : length(c.targets) > 0 && length(distinct([for t in c.targets : t.targetId])) == length(c.targets)])
    error_message = "Every client needs at least one target, and its targetIds must be unique."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : [
        for s in c.subscriptions : [
          for id in s.targetIds : contains([for t in c.targets : t.targetId], id)
        ]
      ]
    ]))
    error_message = "Every subscription targetId must name a target of the same client."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : [for s in c.subscriptions : contains(["MessageStatus", "ChannelStatus"], s.subscriptionType)]
    ]))
    error_message = "subscriptionType must be MessageStatus or ChannelStatus."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : [
        for t in c.targets : contains(["api-destination", "https"], coalesce(try(t.delivery.mode, null), "api-destination"))
      ]
    ]))
    error_message = "delivery.mode must be api-destination (the default) or https."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : [
        for t in c.targets : can(regex("^https://", t.invocationEndpoint)) && contains(["POST"], t.invocationMethod) && contains(["API"], t.type)
      ]
    ]))
    error_message = "invocationEndpoint must be an https URL, invocationMethod POST and type API (schemas/client-config.schema.json)."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : [for t in c.targets : t.invocationRateLimit >= 1 && t.invocationRateLimit <= 10000 && (
        coalesce(try(t.delivery.mode, null), "api-destination") == "https" || t.invocationRateLimit <= var.api_destination_max_rate
      )]
    ]))
    error_message = "invocationRateLimit must be 1-10000 per second, and at most api_destination_max_rate (the account's EventBridge API destination quota, 300 by default) for an api-destination target."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : [
        for t in c.targets : [
          try(t.delivery.maxRetryDurationSeconds >= 0 && t.delivery.maxRetryDurationSeconds <= 86400, true),
          try(t.delivery.initialBackoffMs >= 1 && t.delivery.initialBackoffMs <= 3600000, true),
          try(t.delivery.maxBackoffMs >= 1 && t.delivery.maxBackoffMs <= 43200000, true),
          try(t.delivery.timeoutMs >= 1 && t.delivery.timeoutMs <= 120000, true),
          try(t.delivery.circuitBreaker.failureThreshold >= 1 && t.delivery.circuitBreaker.failureThreshold <= 1000000, true),
          try(t.delivery.circuitBreaker.cooldownMs >= 1 && t.delivery.circuitBreaker.cooldownMs <= 3600000, true),
        ]
      ]
    ]))
    error_message = "delivery bounds (schemas/client-config.schema.json): maxRetryDurationSeconds 0-86400, initialBackoffMs 1-3600000, maxBackoffMs 1-43200000, timeoutMs 1-120000, circuitBreaker.failureThreshold 1-1000000 and cooldownMs 1-3600000."
  }

  validation {
    condition = alltrue(flatten([
      for k, c in var.clients : [for t in c.targets : t.apiKey.headerValue == null]
    ]))
    error_message = "Do not put apiKey.headerValue in clients: give the value in the sensitive client_api_keys map, keyed \"<clientId>/<targetId>\"."
  }
}

variable "client_api_keys" {
  description = "API key values, keyed \"<clientId>/<targetId>\". Sensitive: pass them with TF_VAR_client_api_keys or a -var-file kept out of git (e.g. read from Secrets Manager by the deploy job). They go to the EventBridge connections (stored by EventBridge in Secrets Manager) and into the KMS-encrypted S3 config objects (the Lambdas need them for the HMAC key)."
  type        = map(string)
  default     = {}
  sensitive   = true

  validation {
    condition     = alltrue([for k in keys(var.client_api_keys) : can(regex("^[A-Za-z0-9_-]+/[A-Za-z0-9_-]+$", k))])
    error_message = "client_api_keys keys must look like \"<clientId>/<targetId>\"."
  }
}

variable "application_id_map" {
  description = "clientId -> applicationId, for clients whose document has no applicationId. Written to application_id_map_key when that is set."
  type        = map(string)
  default     = {}
}

variable "application_id_map_key" {
  description = "Object key of the application id map in the config bucket (APPLICATION_ID_MAP_KEY); null when every client names its applicationId."
  type        = string
  default     = null
}

variable "config_prefix" {
  description = "Key prefix of the client configuration objects (CLIENT_CONFIG_PREFIX)."
  type        = string
  default     = "clients/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)*$", var.config_prefix))
    error_message = "config_prefix must be empty or end with '/'."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of both Lambda binaries (scripts/build-lambda.sh builds arm64 by default)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "transform_filter_lambda_zip" {
  description = "Path of the transform-filter Lambda zip; null = <repo>/target/lambda/transform-filter/bootstrap.zip."
  type        = string
  default     = null
}

variable "delivery_lambda_zip" {
  description = "Path of the delivery Lambda zip (needed only when a target uses https mode); null = <repo>/target/lambda/delivery/bootstrap.zip."
  type        = string
  default     = null
}

variable "pipe_batch_size" {
  description = "Messages the Pipe takes from the callback event queue per enrichment call."
  type        = number
  default     = 10

  validation {
    condition     = var.pipe_batch_size >= 1 && var.pipe_batch_size <= 2000
    error_message = "pipe_batch_size must be between 1 and 2000: the enrichment Lambda's response (about 1.2 KB per callback) must stay under the 6 MB synchronous response limit."
  }
}

variable "pipe_maximum_batching_window_in_seconds" {
  description = "How long the Pipe waits to fill a batch (must be > 0 when pipe_batch_size > 10)."
  type        = number
  default     = 0

  validation {
    condition     = var.pipe_maximum_batching_window_in_seconds >= 0 && var.pipe_maximum_batching_window_in_seconds <= 300
    error_message = "pipe_maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "api_destination_maximum_event_age_in_seconds" {
  description = "Default retry window of API destination targets (the documented 2 hours); delivery.maxRetryDurationSeconds overrides it per target."
  type        = number
  default     = 7200

  validation {
    condition     = var.api_destination_maximum_event_age_in_seconds >= 60 && var.api_destination_maximum_event_age_in_seconds <= 86400
    error_message = "api_destination_maximum_event_age_in_seconds must be between 60 and 86400."
  }
}

variable "api_destination_maximum_retry_attempts" {
  description = "Retry attempts of API destination targets within the retry window."
  type        = number
  default     = 185

  validation {
    condition     = var.api_destination_maximum_retry_attempts >= 0 && var.api_destination_maximum_retry_attempts <= 185
    error_message = "api_destination_maximum_retry_attempts must be between 0 and 185."
  }
}

variable "archive_retention_days" {
  description = "Replay window of the Callbacks bus archive in days."
  type        = number
  default     = 14

  validation {
    condition     = var.archive_retention_days >= 0
    error_message = "archive_retention_days must be 0 (for ever) or more."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the Lambda and Pipe log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a value CloudWatch Logs accepts."
  }
}

variable "rust_log" {
  description = "RUST_LOG of both Lambdas."
  type        = string
  default     = "info"
}

variable "config_cache_ttl_seconds" {
  description = "How long the Lambdas cache a client configuration (CONFIG_CACHE_TTL_SECONDS)."
  type        = number
  default     = 60

  validation {
    condition     = var.config_cache_ttl_seconds >= 0 && var.config_cache_ttl_seconds <= 3600
    error_message = "config_cache_ttl_seconds must be between 0 and 3600."
  }
}

variable "message_link_base_url" {
  description = "Base URL of the message links in callbacks (MESSAGE_LINK_BASE_URL)."
  type        = string
  default     = "https://api.service.nhs.uk/comms"

  validation {
    condition     = can(regex("^https://", var.message_link_base_url))
    error_message = "message_link_base_url must be an https URL."
  }
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when an alarm fires or recovers."
  type        = list(string)
  default     = []
}

variable "dlq_age_alarm_threshold_seconds" {
  description = "Age of the oldest DLQ message that raises the DLQ age alarm."
  type        = number
  default     = 3600

  validation {
    condition     = var.dlq_age_alarm_threshold_seconds >= 60
    error_message = "dlq_age_alarm_threshold_seconds must be at least 60."
  }
}

variable "callback_queue_age_alarm_threshold_seconds" {
  description = "Age of the oldest message on the callback event queue that raises the backlog alarm."
  type        = number
  default     = 600

  validation {
    condition     = var.callback_queue_age_alarm_threshold_seconds >= 60
    error_message = "callback_queue_age_alarm_threshold_seconds must be at least 60."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the metrics the Lambdas emit (Embedded Metric Format); the dashboard reads it."
  type        = string
  default     = "NHSNotify/ClientCallbacks"
}

variable "api_destination_max_rate" {
  description = "The highest invocationRateLimit an api-destination target may have: the account's EventBridge API destination invocation-rate quota (300 per second by default, adjustable through Service Quotas). Raise it together with the quota; https targets are bounded by the schema (10000 per second) only."
  type        = number
  default     = 300

  validation {
    condition     = var.api_destination_max_rate >= 1 && var.api_destination_max_rate <= 10000 && floor(var.api_destination_max_rate) == var.api_destination_max_rate
    error_message = "api_destination_max_rate must be a whole number from 1 to 10000."
  }
}
