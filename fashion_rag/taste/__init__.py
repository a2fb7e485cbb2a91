"""Personal taste: shoppers' likes and passes, personal re-ranking, the style quiz."""
