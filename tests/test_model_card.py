"""Model cards: every family template renders, its YAML front matter parses and carries the metadata."""

from __future__ import annotations

import pytest

import zoo
from zoo.publish.cards import (
    FAMILIES,
    ModelCardError,
    card_family,
    render_card,
    split_front_matter,
    template_text,
)

EVAL = {"accuracy": 0.75, "balanced_accuracy": 0.7, "macro_f1": 0.65, "num_samples": 20, "dataset": "caer_s"}
CASES = {
    "caer_net_s": ("caer_net_s_port", "lee2019context"),
    "glamor_net": ("glamor_net", "le2022global"),
    "ldlva": ("ldlva_resnet18", "le2023uncertainty"),
    "generic": ("fer_resnet18", "No paper describes"),
}


def config_of(preset: str):
    from zoo.config import ModelConfig
    from zoo.factory import merge_model_args

    return ModelConfig.from_dict({**merge_model_args(zoo.get_preset(preset).model_args, {}), "architecture": preset})


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_template_renders_with_valid_front_matter(family):
    preset, citation = CASES[family]
    config = config_of(preset)
    assert card_family(config) == family
    card = render_card(config, "zoo-org/m", license="cc-by-nc-4.0", evaluation=EVAL, run_config={"epochs": 3},
                       parameters=1234)
    meta, body = split_front_matter(card)
    assert meta["library_name"] == "emotion-zoo"
    assert meta["license"] == "cc-by-nc-4.0"
    assert meta["pipeline_tag"] == "image-classification"
    assert meta["datasets"] == ["caer_s"]
    assert {"emotion-zoo", "emotion-recognition", preset} <= set(meta["tags"])
    assert meta["metrics"] == ["accuracy", "balanced_accuracy", "macro_f1"]
    index = meta["model-index"][0]
    assert index["name"] == "zoo-org/m"
    values = {m["type"]: m["value"] for r in index["results"] for m in r["metrics"]}
    assert values == {"accuracy": 0.75, "balanced_accuracy": 0.7, "macro_f1": 0.65}
    for heading in ("## Architecture and components", "## Training recipe", "## Evaluation",
                    "## Intended use and limits", "## Citation"):
        assert heading in body
    assert citation in body
    assert "| parameters | 1,234 |" in body
    assert ", ".join(config.resolved_label_names) in body
    assert "$" not in body.replace("$$", "")  # every placeholder was filled


def test_front_matter_without_evaluation_has_no_model_index():
    meta, _ = split_front_matter(render_card(config_of("glamor_net"), "zoo-org/m"))
    assert "model-index" not in meta and "metrics" not in meta and "datasets" not in meta


def test_templates_ship_inside_the_package():
    from importlib import resources

    names = {p.name for p in resources.files("zoo.publish").joinpath("hub_cards").iterdir()}
    assert {f"{f}.md" for f in FAMILIES} <= names
    assert "$front_matter" in template_text("generic")


def test_custom_template_with_unknown_placeholder_is_a_clear_error(tmp_path):
    bad = tmp_path / "card.md"
    bad.write_text("---\n$front_matter---\n$nonsense\n")
    with pytest.raises(ModelCardError, match="bad placeholder 'nonsense'"):
        render_card(config_of("glamor_net"), "zoo-org/m", template=bad)
    with pytest.raises(ModelCardError, match="No card template for family 'x'"):
        template_text("x")


@pytest.mark.parametrize("dataset, split, said", [
    ("fer2013", "val", "(val split: FER2013 PublicTest)"),
    ("ferplus", "test", "(test split: FER+ PrivateTest)"),
    ("caer_s", "test", "(test split)"),
])
def test_card_names_the_split_in_the_datasets_own_words(dataset, split, said):
    """FER2013 has no "val": the zoo's val split is its PublicTest, and a card must say which images it scored."""
    card = render_card(config_of("fer_resnet18"), "org/m",
                       evaluation={**EVAL, "dataset": f"{dataset}:/data/x", "split": split})
    _, body = split_front_matter(card)
    assert f"Evaluated on `{dataset}` {said}, 20 samples." in body
