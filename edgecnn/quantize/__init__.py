"""Quantization: the int8, dynamic-int8 and fp16 variants of an exported model, each chosen and
gated per CPU class."""
