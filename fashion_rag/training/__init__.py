"""Training, one script per learned part: the encoder's projections, the gated composer and the
photo reader. Above retrieval, since the composer and the reader learn from the built index."""
