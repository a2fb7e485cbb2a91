"""Catalog loading on the real styles.csv and on hand-made broken tables built from real rows."""
from __future__ import annotations

from pathlib import Path

import pytest

from fashion_rag.data.catalog import (
    ATTRIBUTES,
    COLUMNS,
    attribute_values,
    caption,
    caption_variants,
    fingerprint,
    load_catalog,
)

HEADER = ",".join(COLUMNS)


@pytest.fixture(scope="module")
def real(catalog_dir):
    return load_catalog(catalog_dir / "styles.csv")


def real_lines(catalog_dir: Path, n: int) -> list[str]:
    """The first n data lines of the real styles.csv, verbatim."""
    with open(catalog_dir / "styles.csv") as f:
        next(f)
        return [next(f).rstrip("\n") for _ in range(n)]


def test_real_catalog_loads_and_reports_the_three_rows_without_colour(real, catalog_dir):
    assert len(real.items) == 9580
    assert real.skipped == {"required field empty": ["11288", "11293", "11309"]}
    assert real.skipped_count == 3
    assert real.items["id"].is_unique
    assert real.items["id"].dtype.kind == "i"
    assert set(COLUMNS + ["path"]) <= set(real.items.columns)
    first = real.items.iloc[0]
    # Paths are absolute and resolved, so ../shared may be a symlink.
    assert Path(first["path"]) == (catalog_dir / "images" / f"{first['id']}.jpg").resolve()


def test_malformed_rows_are_skipped_and_reported_not_fatal(tmp_path, catalog_dir):
    good = real_lines(catalog_dir, 5)
    fields = good[1].split(",")
    rows = [
        *good,
        good[0],  # duplicate id (the first copy is kept)
        ",".join(["12ab"] + fields[1:]),  # id is not a number
        ",".join([fields[0][:-1] + "9", ""] + fields[2:]),  # empty gender
        "99999,Men",  # short row: most fields missing
        ",".join(["99998"] + fields[1:] + ["extra", "fields"]),  # too many fields
        ",".join(["99997"] + fields[1:-1] + ["images/99997.jpg"]),  # image that does not exist
    ]
    csv = tmp_path / "styles.csv"
    csv.write_text("\n".join([HEADER, *rows]) + "\n")
    catalog = load_catalog(csv, images_dir=catalog_dir / "images")
    assert catalog.items["id"].tolist() == [int(line.split(",")[0]) for line in good]
    assert catalog.skipped["duplicate id"] == [good[0].split(",")[0]]
    assert catalog.skipped["id is not a number"] == ["12ab"]
    assert sorted(catalog.skipped["required field empty"]) == sorted([fields[0][:-1] + "9", "99999"])
    assert catalog.skipped["image file missing"] == ["99997"]
    assert [line.startswith("99998,") for line in catalog.skipped["unparseable line"]] == [True]
    assert catalog.skipped_count == 6


def test_image_column_is_relative_to_the_csv_unless_an_images_folder_is_given(tmp_path, catalog_dir):
    csv = tmp_path / "styles.csv"
    csv.write_text("\n".join([HEADER, *real_lines(catalog_dir, 3)]) + "\n")
    beside = load_catalog(csv)  # tmp_path/images/... does not exist
    assert beside.items.empty and len(beside.skipped["image file missing"]) == 3
    unchecked = load_catalog(csv, check_images=False)
    assert len(unchecked.items) == 3 and unchecked.items["path"].iloc[0].startswith(str(tmp_path.resolve()))
    assert len(load_catalog(csv, images_dir=catalog_dir / "images").items) == 3


def test_missing_required_columns_is_a_clear_value_error(tmp_path):
    csv = tmp_path / "styles.csv"
    csv.write_text("id,gender,productDisplayName\n10000,Women,Some Skirt\n")
    with pytest.raises(ValueError, match=r"lacks the columns \['articleType', 'baseColour'\]"):
        load_catalog(csv)


def test_missing_table_names_the_setting_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="FASHION_RAG_CATALOG"):
        load_catalog(tmp_path / "nope.csv")


def test_fingerprint_changes_when_a_row_changes(real):
    items = real.items.head(50).copy()
    before = fingerprint(items)
    assert fingerprint(items.copy()) == before
    items.loc[7, "baseColour"] = "Purple" if items.loc[7, "baseColour"] != "Purple" else "Red"
    assert fingerprint(items) != before
    assert fingerprint(real.items.head(49)) != before  # a removed row counts too


def test_captions_name_colour_type_gender_season_and_usage(real):
    row = real.items[real.items["id"] == 10003].iloc[0].to_dict()  # Women, White, Tshirts, Fall, Sports
    assert caption(row) == "women's white tshirts, for fall, sports wear"
    men_shirt = real.items[(real.items["gender"] == "Men") & (real.items["articleType"] == "Shirts")].iloc[0]
    text = caption(men_shirt.to_dict())
    assert "men's" in text and men_shirt["baseColour"].lower() in text and "shirts" in text
    for variant in caption_variants(row):
        assert "white" in variant and "  " not in variant
    assert "nike women as nike eleme white t-shirt" in caption_variants(row)


def test_caption_leaves_out_unknown_values():
    item = {"gender": "Men", "articleType": "Jeans", "baseColour": "Blue", "season": "NA", "usage": "",
            "productDisplayName": ""}
    assert caption(item) == "men's blue jeans"
    assert all("na" not in v.split() for v in caption_variants(item))


def test_attribute_values_are_the_catalogs_own_most_common_first(real):
    values = attribute_values(real.items)
    assert set(values) == set(ATTRIBUTES)
    assert values["gender"] == ["Men", "Women", "Unisex", "Girls", "Boys"]
    assert values["baseColour"][:3] == ["Black", "Blue", "White"]
    assert values["articleType"][:2] == ["Tshirts", "Shirts"]
    assert "Fall" in values["season"] and "NA" not in values["season"] and "" not in values["usage"]
    assert len(values["articleType"]) == 75
