"""OCR of one image: the engines, preflight, preprocessing, the per-image pipeline, the failure
taxonomy."""
