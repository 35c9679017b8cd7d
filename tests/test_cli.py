"""The command-line contract: last stdout line is JSON; a user's mistake is one sentence on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from explainers.explanation import Explanation

ROOT = Path(__file__).resolve().parents[1]
SEVEN = str(ROOT / "assets" / "samples" / "digits" / "digit_7.png")
CHELSEA = str(ROOT / "assets" / "samples" / "photos" / "chelsea.png")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "explainers", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_explain_as_a_process_writes_json_and_the_npz(tmp_path) -> None:
    out = tmp_path / "seven.npz"
    result = run_cli(
        "explain",
        "--model",
        "digits_cnn",
        "--image",
        SEVEN,
        "--method",
        "partition",
        "--top-k",
        "2",
        "--max-evals",
        "60",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert {"model", "method", "classes", "labels", "probs", "n_evals", "seconds", "additivity_error"} <= set(report)
    assert report["labels"][0] == "7" and report["classes"][0] == 7 and len(report["probs"]) == 2
    assert report["additivity_error"] < 1e-5 and 0 < report["n_evals"] <= 61 and report["seconds"] > 0
    saved = Explanation.load(out)
    assert saved.seed == 3 and saved.values.shape == (2, 28, 28)
    np.testing.assert_allclose(saved.probs[saved.classes], report["probs"], rtol=1e-6)
    assert "evaluations" in result.stderr  # the progress bar


def test_a_sampled_explanation_carries_its_error_bars_to_the_json_and_the_npz(tmp_path, capsys) -> None:
    out = tmp_path / "seven.npz"
    assert (
        main(
            [
                "explain",
                "--model",
                "digits_cnn",
                "--image",
                SEVEN,
                "--method",
                "kernel",
                "--top-k",
                "2",
                "--max-evals",
                "400",
                "--seed",
                "1",
                "--segments",
                "20",
                "--no-cache",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = Explanation.load(out)
    assert saved.segment_errors is not None and saved.segment_values is not None and saved.segments is not None
    assert saved.segment_errors.shape == saved.segment_values.shape == (2, saved.segments.max() + 1)
    assert np.all(saved.segment_errors >= 0) and np.all(np.isfinite(saved.segment_errors))
    expected = max(
        np.linalg.norm(e) / np.linalg.norm(v) for e, v in zip(saved.segment_errors, saved.segment_values, strict=True)
    )
    assert report["relative_error"] == pytest.approx(expected, rel=1e-5) and 0 < report["relative_error"] < 1
    assert (
        main(
            [
                "explain",
                "--model",
                "digits_cnn",
                "--image",
                SEVEN,
                "--method",
                "partition",
                "--max-evals",
                "60",
                "--no-cache",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["relative_error"] is None  # not sampled


def test_unknown_model_as_a_process_exits_2_with_one_sentence() -> None:
    result = run_cli("explain", "--model", "resnet9000", "--image", SEVEN)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: Unknown model 'resnet9000'; choose one of: " + result.stderr.split("choose one of: ")[1].strip()
    ]


def test_models_lists_availability(capsys) -> None:
    assert main(["models"]) == 0
    lines = dict(line.split("\t", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert lines["efficientnet_lite0"] == "available" and lines["brain_tumor_vgg16"] == "available"
    assert lines["digits_cnn"] == "available"


def test_predict_says_the_cat_is_a_cat(capsys) -> None:
    assert main(["predict", "--model", "efficientnet_lite0", "--image", CHELSEA, "--top-k", "3"]) == 0
    report = last_json(capsys.readouterr().out)
    assert report["model"] == "efficientnet_lite0" and report["labels"][0] == "Egyptian cat"
    assert report["probs"][0] == pytest.approx(0.77, abs=0.02) and len(report["classes"]) == 3


@pytest.mark.parametrize(
    "args, sentence",
    [
        (["predict", "--model", "digits_cnn", "--image", "no/such/file.png"], "does not exist"),
        (["predict", "--model", "digits_cnn", "--image", str(ROOT / "requirements.txt")], "not an image we can read"),
        (["explain", "--model", "digits_cnn", "--image", SEVEN, "--max-evals", "3"], "budget for partition"),
        (["explain", "--model", "digits_cnn", "--image", SEVEN, "--method", "lime"], "Unknown method"),
        (["explain", "--model", "digits_cnn", "--image", SEVEN, "--param", "oops"], "NAME=VALUE"),
        (["explain", "--model", "resnet18", "--image", SEVEN], "resnet18-f37072fd.pth"),
        (["explain", "--model", "digits_cnn", "--image", SEVEN, "--estimator", "shap"], "applies to kernel"),
    ],
)
def test_user_mistakes_exit_2_with_one_sentence(args, sentence, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert sentence in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_flag_exits_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["explain", "--model", "digits_cnn", "--image", SEVEN, "--top-k", "many"])
    assert caught.value.code == 2


def test_methods_lists_every_method_and_its_parameters(capsys) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("partition", "owen", "permutation", "kernel", "exact", "deep", "gradient"):
        assert f"\n{name}\t" in "\n" + out
    assert "--param fill=VALUE" in out and "--param layer=VALUE" in out


@pytest.mark.parametrize(
    "method, budget, extra",
    [
        ("permutation", "60", ["--segments", "12"]),
        ("kernel", "60", ["--segments", "12", "--param", "fill=blur"]),
        ("kernel", "60", ["--segments", "12", "--estimator", "shap"]),
        ("owen", "40", ["--segments", "12"]),
        ("exact", "4096", ["--segments", "8"]),
        ("deep", "3", ["--param", "background=black"]),
        ("gradient", "16", ["--param", "layer=late", "--param", "local_smoothing=2"]),
    ],
)
def test_explain_accepts_every_method_and_its_parameters(method, budget, extra, tmp_path, capsys) -> None:
    out = tmp_path / "e.npz"
    assert (
        main(
            [
                "explain",
                "--model",
                "digits_cnn",
                "--image",
                SEVEN,
                "--method",
                method,
                "--max-evals",
                budget,
                "--top-k",
                "2",
                "--quiet",
                "--out",
                str(out),
                *extra,
            ]
        )
        == 0
    )
    report = last_json(capsys.readouterr().out)
    assert report["method"] == method and report["labels"][0] == "7"
    saved = Explanation.load(out)
    assert saved.method == method and saved.values.shape == (2, 28, 28)
    if "--estimator" in extra:
        assert report["params"]["estimator"] == extra[extra.index("--estimator") + 1]
    if method in ("permutation", "kernel", "exact", "owen"):
        assert saved.segments is not None and saved.segment_values is not None
        assert saved.segments.shape == (28, 28) and saved.segment_values.shape[0] == 2


def test_random_weights_serve_torchvision_architectures(capsys) -> None:
    assert (
        main(
            [
                "explain",
                "--model",
                "resnet18",
                "--weights",
                "random",
                "--image",
                CHELSEA,
                "--method",
                "deep",
                "--max-evals",
                "1",
                "--top-k",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    report = last_json(capsys.readouterr().out)
    assert report["weights"] == "random" and report["model"] == "resnet18"


def test_the_estimator_flag_offers_every_kernel_estimator() -> None:
    from cli.main import build_parser
    from explainers.methods.kernel import ESTIMATORS

    groups = build_parser()._subparsers
    assert groups is not None
    commands = groups._group_actions[0]
    assert isinstance(commands, argparse._SubParsersAction)
    explain = commands.choices["explain"]
    KERNEL_ESTIMATORS = next(a.choices for a in explain._actions if "--estimator" in a.option_strings)
    assert KERNEL_ESTIMATORS == ESTIMATORS
