"""Audio in, words and speakers out: decoding (audio), recognition (asr, language), speakers
(diarize, voices), turns and quality flags. Heavy imports stay inside functions."""
