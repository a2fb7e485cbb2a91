"""Train the default encoder: `python scripts/train_encoder.py [--epochs N] [--init CLIP] [--out DIR]`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag.training.train_encoder import main  # noqa: E402

if __name__ == "__main__":
    main()
