"""Timing primitives: targets, engines, measured rounds, statistics, profiles and machine info.
Used by quantization's speed search, the runners and the bench command."""
