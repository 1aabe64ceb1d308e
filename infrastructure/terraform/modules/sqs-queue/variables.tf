variable "name" {
  description = "Name of the queue."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", var.name))
    error_message = "name must be 1-80 letters, digits, '_' or '-'."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the queue and its DLQ. Where EventBridge sends to them, its key policy must let events.amazonaws.com use it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "message_retention_seconds" {
  description = "How long a message waits on the queue before SQS discards it."
  type        = number

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue; null keeps the SQS default (30 s)."
  type        = number
  default     = null

  validation {
    condition     = var.visibility_timeout_seconds == null ? true : var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be null or between 0 and 43200."
  }
}

variable "dead_letter_queue" {
  description = "The queue's own DLQ: its name, how long it keeps a message, and the receives after which the redrive policy moves a message there (the DLQ accepts redrives only from this queue). Null: no DLQ."
  type = object({
    name                      = string
    message_retention_seconds = number
    max_receive_count         = number
  })
  default = null

  validation {
    condition = var.dead_letter_queue == null ? true : (
      can(regex("^[A-Za-z0-9_-]{1,80}$", var.dead_letter_queue.name))
      && var.dead_letter_queue.message_retention_seconds >= 60 && var.dead_letter_queue.message_retention_seconds <= 1209600
      && var.dead_letter_queue.max_receive_count >= 1 && var.dead_letter_queue.max_receive_count <= 1000
    )
    error_message = "dead_letter_queue needs a name of 1-80 letters, digits, '_' or '-', a message_retention_seconds between 60 and 1209600 and a max_receive_count between 1 and 1000."
  }
}

variable "eventbridge_senders" {
  description = "EventBridge rules that send to the queue. When set, a queue policy lets only these rules (aws:SourceArn in source_arns) send, as statement sid, and denies non-TLS requests; with a DLQ, the DLQ gets the same policy as statement dlq_sid (default \"<sid>DeadLetters\"), for the rules' dead-letter config. Null: no queue policy (senders are granted by IAM)."
  type = object({
    source_arns = list(string)
    sid         = string
    dlq_sid     = optional(string)
  })
  default = null

  validation {
    condition     = var.eventbridge_senders == null ? true : can(regex("^[A-Za-z0-9]+$", var.eventbridge_senders.sid))
    error_message = "eventbridge_senders.sid must be alphanumeric (an IAM statement id)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
