"""What rotator reports about itself: run summaries and least-privilege documents."""
