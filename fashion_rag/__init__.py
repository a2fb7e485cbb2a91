"""fashion-rag: multimodal fashion search (photo + tweak -> catalog items) with a styling reply."""
from .search import Engine, Hit, Results, load_engine

__all__ = ["Engine", "Hit", "Results", "load_engine"]
