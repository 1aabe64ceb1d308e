variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"nhs-notify-dev-callbacks\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lower-case letters, digits or hyphens."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the queue and its DLQ. Its key policy must let events.amazonaws.com use it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "shared_event_bus_name" {
  description = "Name (or ARN) of the NHS Notify Shared Event Bus on which the status events are published."
  type        = string

  validation {
    condition     = length(var.shared_event_bus_name) > 0
    error_message = "shared_event_bus_name must not be empty."
  }
}

variable "event_types" {
  description = "CloudEvent types to take from the Shared Event Bus. Matched on detail.type, because the EventBridge envelope's detail is the CloudEvent."
  type        = list(string)
  default = [
    "uk.nhs.notify.message.status.PUBLISHED.v1",
    "uk.nhs.notify.channel.status.PUBLISHED.v1",
    "uk.nhs.notify.client-callbacks.message.status.PUBLISHED.v1",
    "uk.nhs.notify.client-callbacks.channel.status.PUBLISHED.v1",
  ]

  validation {
    condition     = length(var.event_types) > 0 && alltrue([for t in var.event_types : can(regex("^uk\\.nhs\\.notify\\.", t))])
    error_message = "event_types must be a non-empty list of uk.nhs.notify.* CloudEvent types."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue. Must exceed the Pipe's batching window plus the enrichment Lambda's timeout."
  type        = number
  default     = 180

  validation {
    condition     = var.visibility_timeout_seconds >= 30 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 30 and 43200."
  }
}

variable "message_retention_seconds" {
  description = "How long an event waits on the queue before SQS discards it."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long a message is kept on the DLQ (for investigation and redrive)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "max_receive_count" {
  description = "Receives after which a message is moved to the DLQ by the redrive policy."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
