"""CER/WER and field accuracy against ground truth, and the evaluation loop."""
