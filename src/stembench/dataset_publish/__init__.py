"""Build the benchmark dataset: structures, image formation, degradations, labels, storage."""
