"""The search: the index and its vector stores, the attribute guard, photo + tweak, and the query side
that turns a photo and words into hits (fashion_rag.engine composes it with outfits and taste)."""
