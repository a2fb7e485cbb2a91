"""Vectors and readings: the encoder (and its training), query fusion and the gated composer, the photo
reader. The composer and the reader are trained on the built index, in fashion_rag.training."""
