"""A Space folder made by scripts/make_space.py starts on its own, with no ../shared anywhere and
without training, and answers searches from its own catalog (a small subset here)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file

from tests.test_ui import free_port, load_real_engine

START_BOUND = 90  # s; the target is under a minute on these cores, measured outside the tests


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    load_real_engine()  # the models a Space ships must exist (prepared) first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import make_space
    out = tmp_path_factory.mktemp("spaces") / "fashion-rag"
    make_space.main([str(out), "--items", "120"])
    return out


def test_space_folder_has_what_a_space_needs(space):
    for name in ("README.md", "app.py", "requirements.txt", ".gitattributes", "catalog/styles.csv",
                 "models/fashion-encoder-lite1/model.safetensors", "models/fashion-encoder-lite1/backbone.onnx",
                 "models/gated-composer", "models/photo-reader", "models/pose/pose_detection.tflite",
                 "models/pose/pose_landmark_full.tflite", "docs/how-it-works.md",
                 "index/manifest.json", "fashion_rag/ui/__init__.py"):
        assert (space / name).exists(), name
    assert (space / "README.md").read_text().startswith("---\ntitle:")  # the Spaces front matter
    assert "pytest" not in (space / "requirements.txt").read_text()
    assert "*.jpg filter=lfs" in (space / ".gitattributes").read_text()
    assert len(list((space / "catalog" / "images").glob("*.jpg"))) == 120


def test_space_starts_without_shared_and_answers(space):
    """Started from a copy, as after a push: the index (built where make_space ran) follows the
    catalog to its new place."""
    space = Path(shutil.copytree(space, space.parent / "pushed"))
    assert not (space.parent / "shared").exists() and not (space.parent.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASHION_RAG_", "OPENAI_"))}
    env.update(SPACE_ID="someone/fashion-rag", HF_HUB_OFFLINE="1")
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=space,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        while time.monotonic() - started < START_BOUND:
            assert proc.poll() is None, proc.stdout.read()
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the Space did not answer within {START_BOUND} s")
        client = Client(url, verbose=False, download_files=False)
        shirt = next((space / "catalog" / "images").glob("*.jpg"))
        gallery, status = client.predict(handle_file(str(shirt)), "", "auto", 0.5, 5, [], [], [], [], [], "", "",
                                         "", "", api_name="/search")
        paths = [g["image"]["path"] for g in gallery]
        assert len(paths) == 5 and all(p.startswith(str(space / "catalog" / "images")) for p in paths)
        assert Path(paths[0]).name == shirt.name  # its own photo first
        assert httpx.get(f"{url}gradio_api/file={paths[0]}").status_code == 200
        assert httpx.get(f"{url}gradio_api/file={space / 'catalog' / 'styles.csv'}").status_code in (403, 404)
        assert "anyone with the link" in httpx.get(f"{url}config").text  # public, no password: said on the page
        client.close()
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Training" not in output and "Building the search index" not in output  # started as shipped
    assert "WARNING: This app is public" in output
