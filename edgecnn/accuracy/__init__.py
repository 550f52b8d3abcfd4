"""How a variant's answers compare with Keras's (metrics) and what passes (gates): shared by
quantization and validation."""
