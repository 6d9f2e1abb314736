"""Test support: a local single-node Kafka broker for integration tests (:mod:`.kafka_broker`)."""
