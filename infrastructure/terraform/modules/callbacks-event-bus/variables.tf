variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"nhs-notify-dev-callbacks\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lower-case letters, digits or hyphens."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the events on the bus and in the archive."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "archive_retention_days" {
  description = "Days the archive keeps events for replay (0 = for ever)."
  type        = number
  default     = 14

  validation {
    condition     = var.archive_retention_days >= 0 && floor(var.archive_retention_days) == var.archive_retention_days
    error_message = "archive_retention_days must be a whole number >= 0."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
