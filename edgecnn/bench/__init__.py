"""Latency benchmarks per hardware target, side by side with Keras (and LiteRT/OpenVINO)."""
