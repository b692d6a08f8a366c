"""Business metrics: per-partition event-time windows and their aggregation into final windows."""
