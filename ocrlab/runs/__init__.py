"""Running many images: batches, their sources and their worker processes."""
