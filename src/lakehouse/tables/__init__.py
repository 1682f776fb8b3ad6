"""The table format: Delta Lake tables, their one write path and their maintenance."""
