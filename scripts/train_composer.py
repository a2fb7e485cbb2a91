"""Train the gated composer on the built index: `python scripts/train_composer.py [--index DIR] [--out DIR]`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag.training.train_composer import main  # noqa: E402

if __name__ == "__main__":
    main()
