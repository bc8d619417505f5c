"""The training pipeline's stage bookkeeping (satds.train.pipeline): which stages run, which are skipped, what
a killed or changed run does; and the ``satds train`` command line around it. The stages here write files;
the real stages (nnU-Net) run in tests/test_recipe_paper.py."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from satds.cli import app
from satds.errors import SpecError
from satds.train.nnunet import TrainError
from satds.train.pipeline import PipelineRun, Stage, find_pipeline, read_pipeline

runner = CliRunner()


class FileRun(PipelineRun):
    """The universal33-paper pipeline's bookkeeping over stages that each write one file."""

    def __init__(self, root, keys: dict[str, str], fail: str | None = None):
        super().__init__(find_pipeline("universal33-paper"), catalog=None, root=root)
        self.keys, self.fail, self.calls = keys, fail, []

    def stages(self) -> list[Stage]:
        out = []
        for name, key in self.keys.items():
            f = self.dir / "out" / name

            def run(stage, f=f, name=name):
                self.calls.append((name, stage.info.get("continue", False)))
                if name == self.fail:
                    raise TrainError(f"{name} failed")
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(stage.key)

            out.append(Stage(name, f"make {name}", key, run, f.is_file, resumable=name.startswith("train")))
        return out


def test_finished_stages_are_skipped_and_changed_ones_rerun(tmp_path):
    keys = {"export-a": "k1", "train-a": "k2", "predict-a": "k3"}
    first = FileRun(tmp_path, keys)
    assert [r.status for r in first.run()] == ["ran"] * 3
    state = json.loads((first.dir / "state.json").read_text())["stages"]
    assert {k: (v["status"], v["key"]) for k, v in state.items()} == {"export-a": ("done", "k1"), "train-a": ("done", "k2"), "predict-a": ("done", "k3")}

    again = FileRun(tmp_path, keys)
    assert [r.status for r in again.run()] == ["done"] * 3 and again.calls == []

    changed = FileRun(tmp_path, {**keys, "train-a": "k2b", "predict-a": "k3b"})  # e.g. other --epochs
    assert [s.status for s in changed.status(changed.stages())] == ["done", "stale", "stale"]
    assert [r.status for r in changed.run()] == ["done", "ran", "ran"]

    (changed.dir / "out" / "export-a").unlink()  # an output removed by hand: its stage runs again
    assert [r.status for r in FileRun(tmp_path, {**keys, "train-a": "k2b", "predict-a": "k3b"}).run()] == ["ran", "done", "done"]


def test_a_killed_run_goes_on_from_the_last_finished_stage(tmp_path):
    keys = {"export-a": "k1", "train-a": "k2", "predict-a": "k3"}
    with pytest.raises(TrainError, match="train-a failed"):
        FileRun(tmp_path, keys, fail="train-a").run()
    state = json.loads((tmp_path / "runs" / "universal33-paper" / "state.json").read_text())["stages"]
    assert state["export-a"]["status"] == "done" and state["train-a"]["status"] == "started" and "predict-a" not in state
    resumed = FileRun(tmp_path, keys)
    assert [s.status for s in resumed.status(resumed.stages())] == ["done", "interrupted", "pending"]
    resumed.run()
    assert resumed.calls == [("train-a", True), ("predict-a", False)]  # the interrupted training continues


def test_until_and_dry_run(tmp_path):
    keys = {"export-a": "k1", "train-a": "k2", "predict-a": "k3"}
    lines: list[str] = []
    r = FileRun(tmp_path, keys)
    r.echo = lines.append
    assert [s.status for s in r.run(dry_run=True)] == ["pending"] * 3 and r.calls == []
    assert any("[    pending] train-a" in line for line in lines)
    r.run(until="train-a")
    assert [c[0] for c in r.calls] == ["export-a", "train-a"]
    with pytest.raises(TrainError, match="not a stage"):
        r.run(until="nope")


def test_pipeline_file_is_validated(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("kind: training\nname: x\nspecialists: []\nuniversal: {task: universal33, trainr: X}\n")
    with pytest.raises(SpecError) as e:
        read_pipeline(bad)
    assert "specialists" in str(e.value) and "trainr" in str(e.value)


def test_train_command_line(tmp_path):
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "--recipe" in r.output and "--epochs" in r.output and "nnUNetTrainer_SatdsCPTM" in r.output
    r = runner.invoke(app, ["train", "--root", str(tmp_path)])
    assert r.exit_code != 0 and "--task" in r.output and "--recipe" in r.output
    r = runner.invoke(app, ["train", "--task", "universal33", "--smoke", "--root", str(tmp_path)])
    assert r.exit_code != 0 and "go with --recipe" in r.output
    r = runner.invoke(app, ["train", "--recipe", "nope", "--root", str(tmp_path), "-C", str(tmp_path / "cat")])
    assert r.exit_code != 0 and "universal33-paper" in r.output  # the message lists the pipelines there are


def test_summary_and_label_lists_keep_nnunet_regions(tmp_path):
    """A dataset.json with regions (``overlap: regions``): a class whose value is a list (the liver region holds
    the tumour) is scored under its ``regions_class_order`` label, and the summary and the ``--lcc-labels`` list
    keep it (they used to drop every label that was not a plain int)."""
    import pandas as pd

    run = PipelineRun(find_pipeline("universal33-paper"), catalog=None, root=tmp_path)
    m = run.p.universal
    raw = run._raw(m)
    raw.mkdir(parents=True)
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "file_ending": ".nii.gz", "numTraining": 2,
        "labels": {"background": 0, "liver": [1, 3], "spleen": 2, "liver_tumor": 3}, "regions_class_order": [1, 2, 3],
    }))
    assert run._labels_of(m, ["liver", "spleen", "sacrum"]) == [1, 2]
    rows = [  # case, label, dsc, hd95, ref_ml, flag
        ("a", 1, 0.9, 2.0, 10.0, None), ("b", 1, 0.7, 4.0, 12.0, None),  # liver: 0.8, 3.0
        ("a", 2, 0.6, 6.0, 3.0, None), ("b", 2, 0.0, float("nan"), 2.0, "pred_empty"),  # spleen: 0.3, 6.0
        ("b", 3, 0.0, float("nan"), 0.0, "ref_empty"),  # no reference: not counted
    ]
    df = pd.DataFrame([{"case": c, "label": lab, "class": str(lab), "dataset": None, "dsc": d, "nsd": d, "hd95": h, "hd": h, "ref_ml": ml, "flag": f} for c, lab, d, h, ml, f in rows])
    run._scores(m).parent.mkdir(parents=True)
    df.to_csv(run._scores(m), index=False)
    organs = run.summarise()["models"]["universal33"]["groups"]["organs"]
    assert organs == {"dsc": pytest.approx(0.55), "hd95": pytest.approx(4.5), "classes": 2}
