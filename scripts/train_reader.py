"""Train the photo reader on the built index: `python scripts/train_reader.py [--index DIR] [--out DIR]`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag.training.train_reader import main  # noqa: E402

if __name__ == "__main__":
    main()
