"""The command line, run as a shopper or operator would: real processes on the small index."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fashion_rag.__main__ import main as cli

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_search_prints_json_hits(small_index):
    done = run("-m", "fashion_rag", "search", "--index", str(small_index), "--text", "red", "--k", "4", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["mode"] == "concat" and result["applied"] == ["colour: Red"]
    assert len(result["hits"]) == 4
    assert all(hit["item"]["baseColour"] == "Red" and hit["why"] for hit in result["hits"])
    scores = [hit["score"] for hit in result["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_a_missing_photo_is_a_one_line_error_and_exit_code_2(small_index, tmp_path):
    done = run("-m", "fashion_rag", "search", "--index", str(small_index), "--image", str(tmp_path / "gone.jpg"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: Image file not found") and str(tmp_path / "gone.jpg") in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_damaged_index_is_a_one_line_error_and_exit_code_2(small_index, tmp_path, capsys):
    folder = Path(shutil.copytree(small_index, tmp_path / "index"))
    for damage in (b"\x89\xff\x00 random bytes", b"not json {", b"[]"):
        (folder / "manifest.json").write_bytes(damage)
        assert cli(["search", "--index", str(folder), "--text", "red"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: The index in {folder} is damaged (manifest.json") and "rebuild it" in err


def test_build_index_script_prints_the_manifest(small_catalog, tiny_encoder, tmp_path):
    out = tmp_path / "index"
    done = run("scripts/build_index.py", "--catalog", str(small_catalog.csv), "--model", str(tiny_encoder),
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["items"] == len(small_catalog.items) and manifest["model"] == str(tiny_encoder)
    assert manifest["skipped"]["image unreadable"] == f"1 ({small_catalog.corrupt_image_id})"
    assert (out / "manifest.json").is_file() and (out / "items.faiss").is_file()


def test_table_output_with_filters(small_index, capsys):
    assert cli(["search", "--index", str(small_index), "--text", "something to wear", "--k", "3",
                "--filter", "gender=Women", "--filter", "articleType=Tops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mode: concat | applied: gender: Women; type: Tops")
    ranked = [line for line in lines if line.lstrip()[:2] in ("1.", "2.", "3.")]
    assert len(ranked) == 3 and all("Women" in line or "Unisex" in line for line in ranked)
    assert all("Tops]" in line for line in ranked)
    assert sum(line.strip().startswith("why:") for line in lines) == 3


def test_cli_errors_exit_2_with_the_message(small_index, tmp_path, capsys):
    assert cli(["search", "--index", str(small_index), "--text", "red", "--filter", "gender"]) == 2
    assert "--filter wants COLUMN=VALUE" in capsys.readouterr().err
    assert cli(["search", "--index", str(tmp_path / "no-index"), "--text", "red"]) == 2
    assert capsys.readouterr().err.startswith(f"error: No index in {tmp_path / 'no-index'}")
    assert cli(["search", "--index", str(small_index), "--text", "red", "--k", "0"]) == 2
    assert "k must be between" in capsys.readouterr().err


def test_complete_prints_an_outfit_by_slot(small_index):
    done = run("-m", "fashion_rag", "complete", "--index", str(small_index), "--planner", "rules",
               "--text", "shoes to go with my blue jeans", "--k", "2", "--json")
    assert done.returncode == 0, done.stderr
    outfit = json.loads(done.stdout)
    assert outfit["planner"] == "rules" and [s["role"] for s in outfit["slots"]] == ["shoes"]
    assert outfit["context"] == [{"role": "bottom", "what": "blue jeans", "from": "text"}]
    assert len(outfit["slots"][0]["hits"]) == 2
    assert all("Shoes" in h["item"]["articleType"] or h["item"]["articleType"] in ("Heels", "Sandals")
               for h in outfit["slots"][0]["hits"])
    done = run("-m", "fashion_rag", "complete", "--index", str(small_index), "--k", "0")
    assert done.returncode == 2 and done.stderr.startswith("error: k must be between 1 and 10")
