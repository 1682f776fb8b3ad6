"""The serving store: ClickHouse mirrors of the gold and real-time tables."""
