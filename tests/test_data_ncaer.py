"""The NCAER-S builder on tiny generated MJPG videos: frame choice, video-disjointness, reproducibility."""

from __future__ import annotations

import csv
import shutil

import cv2
import numpy as np
import pytest

from zoo.data import DataError, open_dataset
from zoo.data.ncaer import build_ncaer, choose_frames

pytestmark = pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")


def _video(path, n_frames: int, offset: int = 0) -> None:
    """Frame k is uniformly grey at 8·k + offset, so a written image tells which frame it came from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    assert writer.isOpened()
    for k in range(n_frames):
        writer.write(np.full((24, 32, 3), (8 * k + offset) % 256, dtype=np.uint8))
    writer.release()


@pytest.fixture
def caer_videos(tmp_path):
    root = tmp_path / "CAER"
    _video(root / "train" / "Angry" / "0001.avi", 20)
    _video(root / "train" / "Happy" / "0001.avi", 12, offset=3)
    _video(root / "validation" / "Sad" / "0001.avi", 9, offset=5)
    _video(root / "test" / "Anger" / "0001.avi", 16, offset=1)
    shutil.copy(root / "train" / "Angry" / "0001.avi", root / "test" / "Anger" / "0002.avi")  # leaked video
    return root


def _manifest(out):
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_choose_frames_one_per_part():
    frames = choose_frames(20, 4, seed=0, key="train/Happy/1.avi")
    assert [f // 5 for f in frames] == [0, 1, 2, 3]  # parts [0,5) [5,10) [10,15) [15,20)
    assert frames == choose_frames(20, 4, seed=0, key="train/Happy/1.avi")
    draws = {tuple(choose_frames(20, 4, seed=s, key="v")) for s in range(10)}
    assert len(draws) > 1
    assert choose_frames(3, 5, seed=0, key="v") == [0, 1, 2]  # shorter than --parts: every frame


def test_build_ncaer_layout_disjointness_and_reproducibility(tmp_path, caer_videos):
    out = tmp_path / "NCAER-S"
    summary = build_ncaer(caer_videos, out, parts=4, seed=7, detector=None)
    rows = _manifest(out)
    assert summary.images == {"train": 8, "val": 4, "test": 4}
    assert summary.counts["test_dropped_duplicate_video"] == 1
    # train and test are video-disjoint, by content, not by name
    train_videos = {r["video_sha1"] for r in rows if r["split"] == "train"}
    test_videos = {r["video_sha1"] for r in rows if r["split"] == "test"}
    assert not train_videos & test_videos
    assert {r["source_video"] for r in rows if r["split"] == "test"} == {"test/Anger/0001.avi"}
    # the GLAMOR-Net layout, readable by the ncaer_s reader; Angry folders become Anger
    for row in rows:
        assert (out / "images" / row["image"]).is_file()
        assert (out / "crop" / row["image"]).with_suffix(".txt").read_text().strip() == "0,0,0,0"
        num, part, index = int(row["num_frames"]), int(row["part"]), int(row["frame_index"])
        assert (part * num) // 4 <= index < ((part + 1) * num) // 4
    anger = [r for r in rows if r["source_video"] == "train/Angry/0001.avi"]
    assert [r["class"] for r in anger] == ["Anger"] * 4 and [int(r["num_frames"]) for r in anger] == [20] * 4
    for row in anger:  # the image holds the frame the manifest names (frame k is grey 8·k)
        image = cv2.imread(str(out / "images" / row["image"]))
        assert abs(float(image.mean()) - 8 * int(row["frame_index"])) < 3
    ds = open_dataset(f"ncaer_s:{out}", "train", streams="face", missing_face="whole")
    assert len(ds) == 8 and sorted(set(ds.labels.tolist())) == [0, 3]
    assert len(open_dataset(f"ncaer_s:{out}", "val", streams="face", missing_face="whole")) == 4

    again = tmp_path / "again"
    build_ncaer(caer_videos, again, parts=4, seed=7, detector=None)
    assert (again / "manifest.csv").read_bytes() == (out / "manifest.csv").read_bytes()
    for row in rows:
        assert (again / "images" / row["image"]).read_bytes() == (out / "images" / row["image"]).read_bytes()
    other = tmp_path / "other"
    build_ncaer(caer_videos, other, parts=4, seed=8, detector=None)
    assert [r["frame_index"] for r in _manifest(other)] != [r["frame_index"] for r in rows]


def test_build_ncaer_cli_and_errors(tmp_path, caer_videos):
    import typer.testing

    import zoo.cli

    runner = typer.testing.CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(zoo.cli.app, ["build-ncaer", str(caer_videos), str(out), "--parts", "2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "train: 4 images" in result.output and "test_dropped_duplicate_video: 1" in result.output
    rows = _manifest(out)
    assert len(rows) == 8 and all(r["x1"] == "0" or r["score"] for r in rows)  # haar ran on every frame
    with pytest.raises(DataError, match="not empty"):
        build_ncaer(caer_videos, out, parts=2)
    build_ncaer(caer_videos, out, parts=1, detector=None, overwrite=True)
    assert len(_manifest(out)) == 4
    (caer_videos / "train" / "Joy").mkdir()
    with pytest.raises(DataError, match="unknown class folder.*'Joy'"):
        build_ncaer(caer_videos, tmp_path / "x", parts=2, detector=None)
