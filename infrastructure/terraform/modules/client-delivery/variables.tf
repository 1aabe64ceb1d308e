variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"nhs-notify-dev-callbacks\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lower-case letters, digits or hyphens."
  }
}

variable "client_id" {
  description = "The client this instance serves (the component calls the module once per client with https-mode targets, keyed by clientId)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.client_id))
    error_message = "client_id must be 1-64 letters, digits, '_' or '-'."
  }
}

variable "queue_name" {
  description = "Name of the client's delivery queue. The component chooses it so that it can grant the delivery Lambda access before the queue exists (no dependency cycle)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", var.queue_name))
    error_message = "queue_name must be 1-80 letters, digits, '_' or '-'."
  }
}

variable "dlq_name" {
  description = "Name of the client's delivery DLQ (chosen by the component, like queue_name)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", var.dlq_name))
    error_message = "dlq_name must be 1-80 letters, digits, '_' or '-'."
  }
}

variable "targets" {
  description = "The client's targets in https delivery mode, as in the client configuration document (docs/CONTRACTS.md)."
  type = list(object({
    targetId            = string
    invocationRateLimit = number
    delivery = optional(object({
      maxRetryDurationSeconds = optional(number)
    }))
  }))

  validation {
    condition     = length(var.targets) > 0
    error_message = "targets must not be empty; do not call the module for a client without https targets."
  }

  validation {
    condition     = length(distinct([for t in var.targets : t.targetId])) == length(var.targets)
    error_message = "targetId values must be unique within a client."
  }

  validation {
    condition     = alltrue([for t in var.targets : t.invocationRateLimit >= 1])
    error_message = "invocationRateLimit must be at least 1."
  }
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

variable "delivery_lambda_function_name" {
  description = "Name of the delivery Lambda (module delivery-lambda), used for names and tags."
  type        = string
}

variable "delivery_lambda_function_arn" {
  description = "ARN of the delivery Lambda that consumes the client's queue."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:lambda:", var.delivery_lambda_function_arn))
    error_message = "delivery_lambda_function_arn must be a Lambda function ARN."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the client's queue and DLQ (events.amazonaws.com must be allowed to use it)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the client's queue; at least 6 times the delivery Lambda's timeout (AWS guidance for event source mappings). The Lambda changes it per message for back-off."
  type        = number
  default     = 180

  validation {
    condition     = var.visibility_timeout_seconds >= 30 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 30 and 43200."
  }
}

variable "message_retention_seconds" {
  description = "How long a callback may wait on the client's queue, at least. Raised for a client to its longest maxRetryDurationSeconds (default 2 hours) plus an hour, at most 14 days: the Lambda stops retrying before the retention would drop a callback, so a shorter retention would cut the retry budget."
  type        = number
  default     = 14400

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600."
  }
}

variable "max_receive_count" {
  description = "Receives after which SQS moves a callback to the client's DLQ."
  type        = number
  default     = 100

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
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

variable "batch_size" {
  description = "Messages per delivery Lambda invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long the event source mapping waits to fill a batch."
  type        = number
  default     = 0

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
