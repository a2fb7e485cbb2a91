"""fashion-rag: multimodal fashion search (photo + tweak -> catalog items) with a styling reply."""
import os

# Idle OpenMP threads sleep instead of spinning: with spinning, torch's threads collapse (30 ms ->
# 800 ms per search) whenever another process holds a core, as on a shared Space (benchmark.py).
# Must be set before torch loads; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fashion_rag.engine import Engine, Results, load_engine  # noqa: E402
from fashion_rag.outfits.outfit import Outfit, Slot  # noqa: E402
from fashion_rag.retrieval.hits import Hit  # noqa: E402

__all__ = ["Engine", "Hit", "Outfit", "Results", "Slot", "load_engine"]
