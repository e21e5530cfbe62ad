"""The counting product deployed: `edgekit serve --track --count-line` shows counts in its records, overlay and page,
and a bundle made with `deploy rpi --track --count-line` counts out of the box, its settings in one config.json."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from edgekit.cli import main
from edgekit.deploy import extract_bundle, rpi
from runtimes.serving import start


def _line(clip) -> str:
    return ",".join(f"{v:g}" for v in clip.count_line)


@pytest.mark.slow
def test_a_served_counting_line_counts_in_the_records_and_draws_on_the_live_frames(detector_exported, tracking_clip):
    options = {"track": True, "count_line": tracking_clip.count_line, "threshold": 0.3}
    path = detector_exported.result("tflite:fp32").path
    with start(path, source=str(tracking_clip.path), port=0, stream_options=options, realtime_files=False) as server:
        deadline = time.monotonic() + 60
        published = server.feed.latest()
        while time.monotonic() < deadline and published.record.get("count", {}).get("total", 0) < 2:
            published = server.feed.wait_newer(published.number, 1.0)
        count = published.record["count"]
        assert (count["in"], count["out"]) == (1, 1), count  # the clip: one object crosses each way
        assert sum(c["in"] for c in count["by_label"].values()) == 1
        assert all(d["score"] >= 0.3 for d in published.record["detections"])
        import cv2

        frame = cv2.imdecode(np.frombuffer(published.jpeg, np.uint8), cv2.IMREAD_COLOR)
        x = int(round(tracking_clip.count_line[0]))
        column = frame[:, x - 1 : x + 2].astype(int)
        yellow = (column[..., 2] > 150) & (column[..., 1] > 150) & (column[..., 0] < 100)
        # the counting line, drawn over the boxes down the frame: on a 128-px frame the banner may cover half of it
        assert yellow.any(axis=1).mean() > 0.25
        page = server.url + "/"
        import urllib.request

        assert "crossed ${r.count.total}" in urllib.request.urlopen(page, timeout=10).read().decode()


def test_serve_refuses_tracking_without_a_live_source(capsys, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    assert main(["serve", str(model), "--track"]) == 2
    assert "--track and --count-line act on the live view: add --source" in capsys.readouterr().err


@pytest.mark.slow
def test_a_bundle_made_to_count_counts_out_of_the_box_and_its_config_changes_it(
    detector_exported, tracking_clip, tmp_path
):
    model = detector_exported.result("tflite:int8").path
    assert (
        main(
            [
                "deploy",
                "rpi",
                model,
                "--out",
                str(tmp_path / "dist" / "counter"),
                "--source",
                str(tracking_clip.path),
                "--track",
                "--count-line",
                _line(tracking_clip),
                "--threshold",
                "0.3",
            ]
        )
        == 0
    )
    folder = extract_bundle(tmp_path / "dist" / "counter.tar.gz", tmp_path / "pi")
    config = json.loads((folder / "config.json").read_text())
    assert config == {
        "source": str(tracking_clip.path),
        "threshold": 0.3,
        "track": True,
        "count_line": _line(tracking_clip),
    }
    service = (folder / "edgekit-detector.service").read_text()
    assert "run.py --output" in service and "--source" not in service.split("ExecStart=")[1].splitlines()[0]
    readme = (folder / "README.md").read_text()
    assert '"in" is the line\'s right-hand side' in readme and '"count_line": "64,0,64,128"' in readme

    def run(*args):
        return subprocess.run(
            [sys.executable, "run.py", *args], cwd=folder, capture_output=True, text=True, timeout=120
        )

    done = run()  # nothing on the command line: config.json says everything
    assert done.returncode == 0, done.stderr[-2000:]
    last = json.loads(done.stdout.splitlines()[-1])
    assert (last["count"]["in"], last["count"]["out"]) == (1, 1)
    assert "crossed: 2 (in 1, out 1)" in done.stderr
    (folder / "config.json").write_text(json.dumps({**config, "count_line": None, "track": False}))
    untracked = json.loads(run().stdout.splitlines()[-1])
    assert "count" not in untracked and all("id" not in d for d in untracked["detections"])
    (folder / "config.json").write_text(json.dumps({**config, "threshhold": 0.5}))
    refused = run()
    assert refused.returncode == 2
    assert (
        "config.json: unknown option 'threshhold'; valid: threshold, iou, max_detections, agnostic, top_k"
        in refused.stderr
    )
    (folder / "config.json").write_text(json.dumps({**config, "count_line": "1,2,3"}))
    assert "config.json: count_line: invalid counting line '1,2,3'" in run().stderr


def test_a_classifier_bundle_cannot_be_told_to_count(exported, tmp_path):
    from edgekit.errors import DeployError

    with pytest.raises(DeployError, match="track and count_line need a detector; this model is a classifier"):
        rpi(exported.result("tflite:int8").path, tmp_path / "b", track=True)
    assert not (tmp_path / "b").exists()
