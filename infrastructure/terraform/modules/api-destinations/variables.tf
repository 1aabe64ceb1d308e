variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"nhs-notify-dev-callbacks\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lower-case letters, digits or hyphens."
  }
}

variable "client_id" {
  description = "The client this instance serves (the component calls the module once per client, keyed by clientId)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.client_id))
    error_message = "client_id must be 1-64 letters, digits, '_' or '-'."
  }
}

variable "targets" {
  description = "The client's targets in api-destination delivery mode, as in the client configuration document (docs/CONTRACTS.md)."
  type = list(object({
    targetId            = string
    invocationEndpoint  = string
    invocationMethod    = string
    invocationRateLimit = number
    apiKey = object({
      headerName = string
    })
    delivery = optional(object({
      maxRetryDurationSeconds = optional(number)
    }))
  }))

  validation {
    condition     = length(var.targets) > 0
    error_message = "targets must not be empty; do not call the module for a client without api-destination targets."
  }

  validation {
    condition     = length(distinct([for t in var.targets : t.targetId])) == length(var.targets)
    error_message = "targetId values must be unique within a client."
  }

  validation {
    condition     = alltrue([for t in var.targets : can(regex("^https://", t.invocationEndpoint))])
    error_message = "invocationEndpoint must be an https URL."
  }

  validation {
    condition     = alltrue([for t in var.targets : t.invocationRateLimit >= 1 && t.invocationRateLimit <= var.max_rate])
    error_message = "invocationRateLimit must be between 1 and max_rate per second (the account's API destination quota)."
  }
}

variable "max_rate" {
  description = "The account's EventBridge API destination invocation-rate quota per second (300 by default, adjustable)."
  type        = number
  default     = 300
}

variable "client_api_keys" {
  description = "API key values keyed \"<clientId>/<targetId>\" (the component's var.client_api_keys). Each target's connection sends its key in the apiKey.headerName header; EventBridge keeps it in a Secrets Manager secret it manages."
  type        = map(string)
  sensitive   = true
}

variable "callbacks_event_bus_name" {
  description = "Name of the Callbacks Event Bus on which the per-target rules are created."
  type        = string
}

variable "callbacks_event_source" {
  description = "source of the events on the Callbacks bus (matched by every rule)."
  type        = string
  default     = "uk.nhs.notify.client-callbacks"
}

variable "callbacks_event_detail_type" {
  description = "detail-type of the events on the Callbacks bus (matched by every rule)."
  type        = string
  default     = "ClientCallback"
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the client's DLQ and the connections' secrets."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "maximum_event_age_in_seconds" {
  description = "How long EventBridge retries a callback before it goes to the DLQ; a target's delivery.maxRetryDurationSeconds overrides it. Default: the documented 2 hours."
  type        = number
  default     = 7200

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 86400
    error_message = "maximum_event_age_in_seconds must be between 60 and 86400."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries EventBridge makes within maximum_event_age_in_seconds (185 = as many as the age allows)."
  type        = number
  default     = 185

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 185
    error_message = "maximum_retry_attempts must be between 0 and 185."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long an undeliverable callback stays on the client's DLQ."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
