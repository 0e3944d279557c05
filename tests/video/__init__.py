"""Video: upload, streamed filtered video, jobs, frame batches."""
