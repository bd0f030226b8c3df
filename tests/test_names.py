"""The one name grammar (zoo.names): a table of names -> parsed parts, the errors for malformed names, and
that resolve() turns a name into model arguments and weights without a network for local sources."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import HubError, UnknownComponentError, ZooError
from zoo.names import (
    ModelName,
    ModelNameError,
    parse,
    parse_auxiliary,
    parse_model_name,
    split_model_name_tag,
    split_repo_revision,
    split_spec,
)
from zoo.weights.sources import Resolved, prefetch, resolve

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("name, expected", [
    ("glamor_net", ModelName("glamor_net", "preset", "glamor_net", arch="glamor_net")),
    ("glamor_net.caer_s", ModelName("glamor_net.caer_s", "preset", "glamor_net.caer_s", arch="glamor_net",
                                    tag="caer_s")),
    ("a.b.c", ModelName("a.b.c", "preset", "a.b.c", arch="a", tag="b.c")),  # timm: split on the first dot
    ("glamor_net.", ModelName("glamor_net.", "preset", "glamor_net.", arch="glamor_net")),
    ("hf-hub:org/name", ModelName("hf-hub:org/name", "hf-hub", "org/name", repo_id="org/name")),
    ("hf_hub:org/name@v1.0", ModelName("hf_hub:org/name@v1.0", "hf-hub", "org/name@v1.0", repo_id="org/name",
                                       revision="v1.0")),
    (f"hf-hub:org/name@{SHA}", ModelName(f"hf-hub:org/name@{SHA}", "hf-hub", f"org/name@{SHA}",
                                         repo_id="org/name", revision=SHA)),
    ("hf-hub:name", ModelName("hf-hub:name", "hf-hub", "name", repo_id="name")),
    ("local-dir:/runs/fer/best", ModelName("local-dir:/runs/fer/best", "local-dir", "/runs/fer/best",
                                           path="/runs/fer/best")),
    ("local_dir:rel/dir:with:colons", ModelName("local_dir:rel/dir:with:colons", "local-dir",
                                                "rel/dir:with:colons", path="rel/dir:with:colons")),
])
def test_parse_table(name, expected):
    parsed = parse(name)
    assert parsed == expected
    assert parsed.is_preset == (expected.source == "preset")
    assert parse_model_name(name) == ((None if expected.source == "preset" else expected.source), expected.rest)


@pytest.mark.parametrize("name, error, match", [
    ("org/name", ModelNameError, r"'org/name' is not a model name\. For a Hugging Face Hub repo write "
                                 r"'hf-hub:org/name', for a local directory .* 'local-dir:org/name'"),
    ("runs\\best", ModelNameError, "is not a model name"),
    ("timm:resnet18", ModelNameError, "is not a model name"),
    ("", ModelNameError, "non-empty string"),
    ("hf-hub:a/b/c", HubError, r"'a/b/c' is not a Hub repo id; write 'org/name'"),
    ("hf-hub:", HubError, "is not a Hub repo id"),
    ("hf-hub:org/x@../../etc", HubError, r"hf-hub:org/x@\.\./\.\./etc: '\.\./\.\./etc' is not a commit sha"),
    ("hf-hub:org/x@main.lock", HubError, "safe branch or tag name"),
    # '..' inside a name, with no other rule broken (git refuses it: git-check-ref-format)
    ("hf-hub:org/x@v1..v2", HubError, r"'v1\.\.v2' is not a commit sha .* no '\.\.'"),
    ("hf-hub:org/x@a/b..c", HubError, r"'a/b\.\.c' is not a commit sha"),
])
def test_malformed_names_fail_before_any_lookup(name, error, match):
    with pytest.raises(error, match=match):
        parse(name)


def test_name_errors_are_zoo_and_value_errors():
    with pytest.raises(ModelNameError) as info:
        parse("a/b")
    assert isinstance(info.value, ZooError) and isinstance(info.value, ValueError)
    assert zoo.parse_model_name is parse_model_name  # the public tuple form still answers


@pytest.mark.parametrize("spec, expected", [
    ("caer_s:/data/CAER-S", ("caer_s", "/data/CAER-S")),
    ("synth_caer", ("synth_caer", None)),
    ("timm:convnext_atto", ("timm", "convnext_atto")),
    ("name:", ("name", "")),
    ("c:\\data:x", ("c", "\\data:x")),
])
def test_split_spec(spec, expected):
    assert split_spec(spec) == expected


def test_split_helpers():
    assert split_model_name_tag("glamor_net.caer_s") == ("glamor_net", "caer_s")
    assert split_model_name_tag("glamor_net") == ("glamor_net", None)
    assert split_repo_revision("org/n@dev") == ("org/n", "dev")


@pytest.mark.parametrize("source, expected", [
    ("dataset", ("dataset", None)),
    ("teacher:fer_cnn.fer2013", ("teacher", "fer_cnn.fer2013")),
    ("teacher:local-dir:runs/fer", ("teacher", "local-dir:runs/fer")),
    ("embedding:hf-hub:org/x@v1", ("embedding", "hf-hub:org/x@v1")),
])
def test_parse_auxiliary(source, expected):
    assert parse_auxiliary(source) == expected


@pytest.mark.parametrize("source", ["teacher:", "va", "student:x", "datasets"])
def test_parse_auxiliary_rejects(source):
    with pytest.raises(ModelNameError, match=r"use 'dataset', 'teacher:MODEL'"):
        parse_auxiliary(source)


def test_auxiliary_error_keeps_its_type():
    from zoo.ldl.auxiliary import AuxiliarySpaceError, auxiliary_points

    with pytest.raises(AuxiliarySpaceError, match="is not understood"):
        auxiliary_points("student:x", dataset=None)


def test_resolve_preset_without_weights():
    resolved = resolve("glamor_net")
    assert isinstance(resolved, Resolved) and resolved.weights is None and resolved.record == {}
    assert resolved.model_args["architecture"] == "glamor_net" and resolved.name.arch == "glamor_net"
    assert resolve(None) == Resolved(None)
    with pytest.raises(ZooError, match="pretrained=True needs a model name"):
        resolve(None, pretrained=True)
    with pytest.raises(UnknownComponentError, match="no pretrained tag 'nosuch'"):
        resolve("fer_cnn.nosuch")


def test_resolve_packaged_tag_and_prefetch():
    resolved = resolve("fer_cnn.fer2013", pretrained=True)
    assert resolved.record["source"] == "package" and resolved.weights.is_file()
    assert resolved.config_file == resolved.weights.parent / "config.json" and resolved.published is not None
    resolved.check_published()
    row = prefetch("fer_cnn.fer2013")
    assert row["weights"] == str(resolved.weights) and row["note"].startswith("shipped with the package")


def test_each_bundled_tag_is_published_with_its_presets_config():
    """The preset's table is the one source of truth for a bundled tag: its weights are not checked against the
    shipped config.json at run time, so this keeps that file equal to the preset (classes, labels, components,
    input sizes, normalisation)."""
    from zoo.config import ModelConfig
    from zoo.registry.plugins import preset_registry
    from zoo.weights.files import read_config
    from zoo.weights.sources import check_pretrained_config, packaged_folder

    bundled = [(preset, cfg) for preset in preset_registry().entries() for cfg in preset.pretrained if cfg.file]
    assert {f"{p.name}.{c.tag}" for p, c in bundled} >= {"fer_cnn.fer2013", "fer_cnn.expw", "fer_cnn.fer2013_expw",
                                                        "glamor_fer_cnn.expw"}
    for preset, cfg in bundled:
        assert cfg.file == f"pretrained/{preset.name}.{cfg.tag}"
        shipped, _ = read_config(packaged_folder(cfg) / cfg.config_filename)
        ours = ModelConfig.from_dict({**preset.model_args, **cfg.model_args, "architecture": preset.name})
        check_pretrained_config(ours, shipped, f"{preset.name}.{cfg.tag}")  # raises naming each difference
        resolved = resolve(f"{preset.name}.{cfg.tag}", pretrained=True)
        assert resolved.published is resolved.config and resolved.config.to_dict() == ours.to_dict()


def test_a_name_resolves_once_with_its_tag_and_whether_it_has_weights(monkeypatch):
    """One parse, one tag lookup and one ModelConfig per model loaded; the resolved name carries the tag chosen
    and whether weights exist."""
    from zoo.config import ModelConfig
    from zoo.inference.loading import create_for_inference
    from zoo.registry.entries import Preset
    from zoo.weights import sources

    assert resolve("fer_cnn").has_weights and resolve("fer_cnn").pretrained_cfg is None
    assert resolve("fer_cnn", pretrained=None).pretrained_cfg.tag == "fer2013"
    assert resolve("fer_cnn.expw").pretrained_cfg.tag == "expw" and resolve("fer_cnn.expw").weights is None
    assert not resolve("glamor_net", pretrained=None).has_weights and resolve("glamor_net", pretrained=None).weights is None
    counts = {"parse": 0, "tag": 0, "config": 0}

    def counting(key, function):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(sources, "parse", counting("parse", sources.parse))
    monkeypatch.setattr(Preset, "pretrained_cfg", counting("tag", Preset.pretrained_cfg))
    monkeypatch.setattr(ModelConfig, "__post_init__", counting("config", ModelConfig.__post_init__))
    model = create_for_inference("fer_cnn.expw")
    assert counts == {"parse": 1, "tag": 1, "config": 1} and model.pretrained_cfg["tag"] == "expw"
    counts.update(parse=0, tag=0, config=0)
    zoo.create("fer_cnn", pretrained=True, num_classes=3, label_names=None)
    assert counts == {"parse": 1, "tag": 1, "config": 2}  # the preset's config (the published one) and the merged one


def test_resolve_local_dir(tmp_path):
    model = zoo.create(streams="face", backbone_args={"channels": [4, 4, 4, 4, 4]}, num_classes=3)
    directory = zoo.save_pretrained(model, tmp_path / "m")
    resolved = resolve(f"local-dir:{directory}")
    assert resolved.weights == directory / "model.safetensors"
    assert resolved.record == {"source": "local-dir", "path": str(directory)}
    assert resolved.model_args["num_classes"] == 3
    weights_only = resolve(f"local-dir:{directory}", weights_only=True)
    assert weights_only.model_args == {} and weights_only.weights == directory / "model.safetensors"
    loaded = zoo.create(f"local-dir:{directory}")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(HubError, match="a local directory needs no prefetching"):
        prefetch(f"local-dir:{directory}")
