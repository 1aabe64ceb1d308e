variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"nhs-notify-dev-callbacks\". The bucket is <name_prefix>-client-config-<account id>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lower-case letters, digits or hyphens."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the bucket (the rendered objects hold the clients' API keys)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "clients" {
  description = "The component's var.clients: client configuration documents (docs/CONTRACTS.md) keyed by clientId. One object <config_prefix><clientId>.json is rendered per client."
  type        = any

  validation {
    condition     = alltrue([for k, c in var.clients : c.clientId == k])
    error_message = "Every key of clients must equal its clientId."
  }
}

variable "client_api_keys" {
  description = "API key values keyed \"<clientId>/<targetId>\". Merged into the rendered objects as apiKey.headerValue (the Lambdas need them for the HMAC key); a value given here wins over one in clients."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "config_prefix" {
  description = "Key prefix of the client configuration objects."
  type        = string
  default     = "clients/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)*$", var.config_prefix))
    error_message = "config_prefix must be empty or end with '/'."
  }
}

variable "application_id_map" {
  description = "Optional clientId -> applicationId map, written to application_id_map_key for clients whose document has no applicationId."
  type        = map(string)
  default     = {}
}

variable "application_id_map_key" {
  description = "Object key of the application id map; null writes none."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which superseded versions of a configuration object are deleted."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
