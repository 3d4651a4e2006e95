"""Export-time tools: detector training and export (may import ultralytics/torch lazily)."""
