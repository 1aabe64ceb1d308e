variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"nhs-notify-dev-callbacks\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 lower-case letters, digits or hyphens."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key of the pipeline: encrypts the log groups, the Lambda environment and the rejected-events queue, and is the key of the source queue, the config bucket and the Callbacks bus."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "lambda_zip_path" {
  description = "Path of the Lambda deployment zip built by scripts/build-lambda.sh (target/lambda/transform-filter/bootstrap.zip)."
  type        = string

  validation {
    condition     = can(regex("\\.zip$", var.lambda_zip_path))
    error_message = "lambda_zip_path must name a .zip file."
  }
}

variable "architecture" {
  description = "Instruction set of the Lambda binary; must match the target scripts/build-lambda.sh built for."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the Lambda in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240."
  }
}

variable "timeout" {
  description = "Timeout of the Lambda in seconds. Keep it below the source queue's visibility timeout."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of the Lambda; -1 leaves it unreserved (the Pipe's SQS poller bounds the concurrency)."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrent_executions >= -1
    error_message = "reserved_concurrent_executions must be -1 or more."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the Lambda's and the Pipe's log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a value CloudWatch Logs accepts."
  }
}

variable "config_bucket_name" {
  description = "Name of the client configuration bucket (CLIENT_CONFIG_BUCKET)."
  type        = string
}

variable "config_bucket_arn" {
  description = "ARN of the client configuration bucket; the Lambda may read only below config_prefix and the application id map."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::", var.config_bucket_arn))
    error_message = "config_bucket_arn must be an S3 bucket ARN."
  }
}

variable "config_prefix" {
  description = "Key prefix of the client configuration objects (CLIENT_CONFIG_PREFIX); objects are <prefix><clientId>.json."
  type        = string
  default     = "clients/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)*$", var.config_prefix))
    error_message = "config_prefix must be empty or end with '/'."
  }
}

variable "application_id_map_key" {
  description = "Object key of the clientId -> applicationId map (APPLICATION_ID_MAP_KEY); null when every client config names its applicationId."
  type        = string
  default     = null
}

variable "config_cache_ttl_seconds" {
  description = "How long the Lambda caches a client configuration (CONFIG_CACHE_TTL_SECONDS)."
  type        = number
  default     = 60

  validation {
    condition     = var.config_cache_ttl_seconds >= 0 && var.config_cache_ttl_seconds <= 3600
    error_message = "config_cache_ttl_seconds must be between 0 and 3600."
  }
}

variable "message_link_base_url" {
  description = "Base URL of the message links in the callbacks (MESSAGE_LINK_BASE_URL)."
  type        = string
  default     = "https://api.service.nhs.uk/comms"

  validation {
    condition     = can(regex("^https://", var.message_link_base_url))
    error_message = "message_link_base_url must be an https URL."
  }
}

variable "rust_log" {
  description = "RUST_LOG filter of the Lambda."
  type        = string
  default     = "info"
}

variable "source_queue_arn" {
  description = "ARN of the callback event queue, the Pipe's source."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:", var.source_queue_arn))
    error_message = "source_queue_arn must be an SQS queue ARN."
  }
}

variable "batch_size" {
  description = "Maximum number of queue messages the Pipe hands to the Lambda at once."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 2000
    error_message = "batch_size must be between 1 and 2000: the enrichment Lambda's response (about 1.2 KB per callback) must stay under the 6 MB synchronous response limit."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long the Pipe waits to fill a batch (0 = no wait). Needed when batch_size > 10."
  type        = number
  default     = 0

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "callbacks_event_bus_arn" {
  description = "ARN of the Callbacks Event Bus, the Pipe's target."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:events:", var.callbacks_event_bus_arn))
    error_message = "callbacks_event_bus_arn must be an EventBridge event bus ARN."
  }
}

variable "callbacks_event_source" {
  description = "source of the events the Pipe puts on the Callbacks bus."
  type        = string
  default     = "uk.nhs.notify.client-callbacks"
}

variable "callbacks_event_detail_type" {
  description = "detail-type of the events the Pipe puts on the Callbacks bus."
  type        = string
  default     = "ClientCallback"
}

variable "pipe_log_level" {
  description = "Log level of the EventBridge Pipe (OFF, ERROR, INFO, TRACE)."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["OFF", "ERROR", "INFO", "TRACE"], var.pipe_log_level)
    error_message = "pipe_log_level must be OFF, ERROR, INFO or TRACE."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the Lambda's Embedded Metric Format metrics (METRICS_NAMESPACE)."
  type        = string
  default     = "NHSNotify/ClientCallbacks"

  validation {
    condition     = can(regex("^[A-Za-z0-9/_.#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be a custom CloudWatch namespace (not AWS/...)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
