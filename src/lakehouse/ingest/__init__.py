"""Getting data into bronze: files, Kafka, HTTP and databases."""
