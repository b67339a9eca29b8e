"""Signal receivers: plumbing only (cache invalidation and the like)."""
