"""Vectors and readings: the encoder, query fusion and the gated composer, the photo reader, and their training."""
