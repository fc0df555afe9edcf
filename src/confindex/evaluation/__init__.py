"""Measuring: diarization error rate (der), WER and search recall (evaluate)."""
