output "topic_names" {
  description = "Physical topic name of every logical topic, e.g. { requests = \"switchyard.requests\" }."
  value       = { for logical, topic in kafka_topic.switchyard : logical => topic.name }
}
