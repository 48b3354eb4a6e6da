# Kafka topics of a distributed Switchyard deployment. The topic set is the closed `Topic` enum in
# crates/events/src/topic.rs; the local equivalent is the topic-init job in
# docker-compose.kafka.yml. Keep the three in step.

provider "kafka" {
  bootstrap_servers = var.bootstrap_servers
  tls_enabled       = var.tls_enabled
}

locals {
  day_ms = 24 * 60 * 60 * 1000

  # Facts that are replayed by processors and exported: kept for a retention window, then deleted.
  event_topic_config = {
    "cleanup.policy" = "delete"
    "retention.ms"   = tostring(var.retention_days * local.day_ms)
  }

  # Latest state per key (routing table snapshots per org, pins per org/route, control-plane
  # entities): compacted, so a reader starting from the beginning gets the current value of
  # every key without the whole history. Records younger than the audit horizon are never
  # compacted, so `switchyard audit` can rebuild the inputs of recent decisions (Switchyard's
  # `log.audit_horizon_days`).
  compacted_topic_config = {
    "cleanup.policy"        = "compact"
    "min.compaction.lag.ms" = tostring(var.audit_horizon_days * local.day_ms)
  }

  # The constraints audit chain (a SHA-256 hash chain per org/route): every record kept forever.
  # Compaction would drop the links a verifier needs; time retention would cut the chain's start.
  audit_topic_config = {
    "cleanup.policy"  = "delete"
    "retention.ms"    = "-1"
    "retention.bytes" = "-1"
  }

  topics = {
    "requests"      = local.event_topic_config
    "responses"     = local.event_topic_config
    "decisions"     = local.event_topic_config
    "feedback"      = local.event_topic_config
    "judge-scores"  = local.event_topic_config
    "pins"          = local.compacted_topic_config
    "constraints"   = local.audit_topic_config
    "control"       = local.compacted_topic_config
    "routing-table" = local.compacted_topic_config
    "usage"         = local.compacted_topic_config
    "dead-letter" = {
      "cleanup.policy" = "delete"
      "retention.ms"   = tostring(var.dead_letter_retention_days * local.day_ms)
    }
  }
}

resource "kafka_topic" "switchyard" {
  for_each = local.topics

  name               = "${var.topic_prefix}${each.key}"
  partitions         = var.partitions
  replication_factor = var.replication_factor

  config = merge(
    { "min.insync.replicas" = tostring(var.min_insync_replicas) },
    each.value,
  )

  lifecycle {
    precondition {
      condition     = var.min_insync_replicas <= var.replication_factor
      error_message = "min_insync_replicas must not exceed replication_factor, or no write could ever be acknowledged."
    }
  }
}
