"""What runs on the user's machine: orchestration, aggregation, cutoffs, plots and reports."""
