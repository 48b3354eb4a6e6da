variable "bootstrap_servers" {
  description = "Kafka bootstrap brokers (host:port), e.g. [\"kafka-1:9092\", \"kafka-2:9092\"]."
  type        = list(string)

  validation {
    condition     = length(var.bootstrap_servers) > 0
    error_message = "At least one bootstrap server is required."
  }
}

variable "tls_enabled" {
  description = "Connect to the brokers over TLS. SASL credentials, if any, come from the provider's KAFKA_SASL_* environment variables."
  type        = bool
  default     = true
}

variable "topic_prefix" {
  description = "Prefix of every topic name. Must equal Switchyard's `log.topic_prefix`."
  type        = string
  default     = "switchyard."

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]*$", var.topic_prefix))
    error_message = "The prefix may contain only letters, digits, '.', '_' and '-'."
  }
}

variable "partitions" {
  description = "Partitions per topic. Bounds the parallelism of each stream processor; can only grow (and growing it moves keys between partitions, so plan it)."
  type        = number
  default     = 12

  validation {
    condition     = var.partitions >= 1
    error_message = "At least one partition is required."
  }
}

variable "replication_factor" {
  description = "Replicas of every partition."
  type        = number
  default     = 3
}

variable "min_insync_replicas" {
  description = "Replicas that must acknowledge a write (producers use acks=all). With replication 3, 2 tolerates one broker down without losing acknowledged writes."
  type        = number
  default     = 2

  validation {
    condition     = var.min_insync_replicas >= 1
    error_message = "min_insync_replicas must be at least 1."
  }
}

variable "retention_days" {
  description = "Retention of the event topics (requests, responses, decisions, feedback, judge-scores)."
  type        = number
  default     = 7
}

variable "dead_letter_retention_days" {
  description = "Retention of the dead-letter topic: long enough for someone to look at what failed."
  type        = number
  default     = 30
}

variable "audit_horizon_days" {
  description = "Compacted topics keep records younger than this (min.compaction.lag.ms), so audits can rebuild decisions this recent. Must equal Switchyard's `log.audit_horizon_days`."
  type        = number
  default     = 30
}
