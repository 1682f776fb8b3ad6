"""Getting data into bronze: files, Kafka, HTTP, databases, and the demo's generators."""
