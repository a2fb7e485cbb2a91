"""The search: the FAISS index, the attribute guard, photo + tweak, and the Engine that ties them together."""
