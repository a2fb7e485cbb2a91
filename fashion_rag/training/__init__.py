"""Training that learns from the built index: the gated composer and the photo reader. Apart from
encoding/ because it reads the index (the retrieval stage); the encoder's own training needs only
the catalog and stays in encoding/."""
