"""What runs on a compute endpoint: model adapters, inference and scoring of one shard."""
