"""User studies: the study file's errors name line and field, randomisation is reproducible and balanced,
participants resume, answers survive concurrency and a killed server, the results are password-locked, the CSV
is tidy, and precompute fills the cache."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import studies
from studies import AnswerError, PlannedTrial, StudyError, StudyFacts, StudyStore, TrialFacts, assignment, parse_study

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "studies" / "example_study.yaml"
DIGITS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]


def digits_study(
    *,
    trials: int = 3,
    conditions: str = "[kernel, partition, none]",
    design: str = "within",
    order: str = "shuffle",
    seed: int = 7,
    extra: str = "",
) -> studies.Study:
    """A study on the digits model, read without the registries (no model is imported)."""
    trial_lines = "\n".join(
        f"  - {{id: d{n}, model: digits_cnn, image: assets/samples/digits/digit_{n}.png}}" for n in range(trials)
    )
    text = (
        textwrap.dedent(f"""\
        id: digits
        title: Digits
        consent: You agree.
        conditions: {conditions}
        randomisation: {{design: {design}, order: {order}, seed: {seed}}}
        explanation:
          budget: {{kernel: 20, partition: 20}}
          params: {{kernel: {{segments: 8}}}}
        trials:
        """)
        + trial_lines
        + "\n"
        + extra
    )
    return parse_study(text, name="digits.yaml", folder=ROOT, verify=False)


def fake_facts(study: studies.Study) -> StudyFacts:
    """What precompute would record, for a model that reads every digit right (no model needed)."""
    trials = {}
    for trial in study.trials:
        digit = trial.image[-5]
        trials[trial.id] = TrialFacts(
            trial_id=trial.id,
            model=trial.model,
            weights_digest="w",
            image_digest=f"i{digit}",
            prediction_id=int(digit),
            prediction=digit,
            probability=0.9,
            class_shown_id=int(digit),
            class_shown=digit,
            reveal_class=False,
            options=tuple(DIGITS),
            shuffle_options=False,
            keys={c: f"key-{trial.id}-{c}" for c in study.conditions_for(trial) if c != studies.NO_EXPLANATION},
        )
    return StudyFacts(study.id, study.digest, trials)


def answers_for(planned: PlannedTrial, right: bool = True, confidence: int = 5) -> dict:
    return {
        "forward": planned.prediction if right else ("0" if planned.prediction != "0" else "1"),
        "confidence": confidence,
        "trust": 4,
        "comment": "",
    }


def expected_answer_count(planned: PlannedTrial) -> int:
    return 3 if planned.explained else 2  # forward, confidence (and trust); the blank comment is not stored


# -- the study file ---------------------------------------------------------------------------------------------


def test_example_study_loads_with_the_four_standard_questions() -> None:
    study = studies.load_study(EXAMPLE)
    assert study.id == "example-study" and len(study.trials) == 3
    assert study.conditions == ("partition", "kernel", "none")
    assert [q.kind for q in study.questions] == ["forward_simulation", "likert", "likert", "text"]
    assert all(trial.image_path.exists() for trial in study.trials)
    # Leaving the questions out asks the same four.
    assert [q.id for q in digits_study().questions] == [q.id for q in study.questions]
    assert studies.find_studies() == [EXAMPLE]


@pytest.mark.parametrize(
    "text, expected",
    [
        # A typo in a trial's method names the line, the field, and the fix.
        (
            """title: T
consent: C
conditions: [kernel, none]
trials:
  - {model: digits_cnn, image: assets/samples/digits/digit_1.png}
  - {model: digits_cnn, image: assets/samples/digits/digit_2.png}
  - model: digits_cnn
    image: assets/samples/digits/digit_3.png
    method: kernal
""",
            'study.yaml line 9: trials[2].method is "kernal", not a method; choose one of',
        ),
        ("title: T\nconsent: C\nconditions: [kernel\ntrials: []\n", "study.yaml line 4: the file is not valid YAML"),
        (
            "consent: C\nconditions: [none]\ntrials:\n"
            "  - {model: digits_cnn, image: assets/samples/digits/digit_1.png}\n",
            "study.yaml: the study needs a title.",
        ),
        (
            "title: T\nconsent: C\nconditions: [none]\nrandomisation:\n  design: within\n  ordr: fixed\n"
            "trials:\n  - {model: digits_cnn, image: assets/samples/digits/digit_1.png}\n",
            "study.yaml line 6: randomisation.ordr is not a field of the randomisation (the fields are design, order, "
            'seed); did you mean "order"?',
        ),
        (
            "title: T\nconsent: C\nconditions: [none]\nrandomisation: {design: mixed}\n"
            "trials:\n  - {model: digits_cnn, image: assets/samples/digits/digit_1.png}\n",
            'study.yaml line 4: randomisation.design is "mixed"; choose one of within, between.',
        ),
        (
            "title: T\nconsent: C\nconditions: [none]\ntrials:\n  - model: digits_cnn\n"
            "    image: assets/samples/digits/digit_1.png\n    class: eleven\n",
            'study.yaml line 7: trials[0].class is "eleven", not a class of digits_cnn',
        ),
        (
            "title: T\nconsent: C\nconditions: [none]\ntrials:\n  - model: digits_cnn\n    image: missing.png\n",
            'study.yaml line 6: trials[0].image is "missing.png", which does not exist',
        ),
        (
            "title: T\ntitle: U\nconsent: C\nconditions: [none]\n"
            "trials:\n  - {model: digits_cnn, image: assets/samples/digits/digit_1.png}\n",
            "study.yaml line 2: title is given twice (first on line 1); keep one.",
        ),
        (
            "title: T\nconsent: C\nconditions: [kernel]\nexplanation: {budget: {kernel: 1}}\n"
            "trials:\n  - {model: digits_cnn, image: assets/samples/digits/digit_1.png}\n",
            "study.yaml line 4: explanation.budget.kernel is 1, outside kernel's range 5–20000 model evaluations.",
        ),
    ],
)
def test_a_mistake_is_one_sentence_naming_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(StudyError) as caught:
        parse_study(text, name="study.yaml", folder=ROOT)
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "\n" not in str(caught.value)


def test_json_syntax_errors_name_the_line_and_schema_errors_the_field(tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"title": "T",\n "consent": "C"\n "trials": []}')
    with pytest.raises(
        StudyError,
        match=r"^broken\.json line 3: the file is not valid JSON \(Expecting ',' "
        r"delimiter at column 2\)\.$",
    ):
        studies.load_study(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps(
            {
                "title": "T",
                "consent": "C",
                "conditions": ["none"],
                "trials": [{"model": "digits_cnn", "image": "assets/samples/digits/digit_1.png", "choices": 1}],
            },
            indent=1,
        )
    )
    with pytest.raises(StudyError) as caught:
        studies.load_study(wrong)
    assert str(caught.value).startswith("wrong.json line 11: trials[0].choices must be a number of top classes")


def test_every_problem_is_collected_for_study_check(tmp_path, capsys) -> None:
    from cli.main import main

    path = tmp_path / "many.yaml"
    path.write_text(
        "title: T\nconsent: C\nconditions: [kernal, none]\ntrials:\n"
        "  - {modle: digits_cnn, image: assets/samples/digits/digit_1.png}\n"
    )
    with pytest.raises(StudyError) as caught:
        studies.load_study(path)
    assert [(p.line, p.field) for p in caught.value.problems] == [(5, "trials[0].modle"), (5, "trials[0]")]
    assert main(["study", "check", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {problem}" for problem in caught.value.problems]


# -- randomisation ----------------------------------------------------------------------------------------------


def plan_of(study: studies.Study, number: int) -> list[tuple[str, str]]:
    return [(item.trial.id, item.condition) for item in assignment(study, number)]


def test_assignment_is_reproducible_from_the_seed() -> None:
    study = digits_study(trials=6)
    assert [plan_of(study, n) for n in range(12)] == [plan_of(digits_study(trials=6), n) for n in range(12)]
    other_seed = digits_study(trials=6, seed=8)
    assert [plan_of(study, n) for n in range(12)] != [plan_of(other_seed, n) for n in range(12)]
    # The order is shuffled per participant; "fixed" keeps the file's order.
    assert len({tuple(t for t, _ in plan_of(study, n)) for n in range(12)}) > 1
    fixed = digits_study(trials=6, order="fixed")
    assert all([t for t, _ in plan_of(fixed, n)] == [f"d{i}" for i in range(6)] for n in range(12))


def test_within_subjects_is_balanced_per_trial_and_per_participant() -> None:
    study = digits_study(trials=6)  # 3 conditions
    per_trial: Counter = Counter()
    for number in range(9):
        plan = plan_of(study, number)
        assert sorted(t for t, _ in plan) == [f"d{i}" for i in range(6)]
        assert Counter(c for _, c in plan) == {"kernel": 2, "partition": 2, "none": 2}
        per_trial.update(plan)
    # Over a multiple of 3 participants, every trial is seen equally often in every condition.
    assert set(per_trial.values()) == {3} and len(per_trial) == 18


def test_between_subjects_gives_each_participant_one_condition_balanced_by_blocks() -> None:
    study = digits_study(trials=4, design="between")
    conditions = []
    for number in range(12):
        plan = plan_of(study, number)
        assert len({c for _, c in plan}) == 1
        conditions.append(plan[0][1])
    for block in range(4):
        assert sorted(conditions[3 * block : 3 * block + 3]) == ["kernel", "none", "partition"]
    assert len({tuple(conditions[i : i + 3]) for i in range(0, 12, 3)}) > 1  # blocks are randomised


def test_a_trial_pinned_to_a_method_keeps_it() -> None:
    study = parse_study(
        textwrap.dedent("""\
        title: T
        consent: C
        conditions: [kernel, none]
        trials:
          - {id: practice, model: digits_cnn, image: assets/samples/digits/digit_0.png, method: partition}
          - {id: a, model: digits_cnn, image: assets/samples/digits/digit_1.png}
          - {id: b, model: digits_cnn, image: assets/samples/digits/digit_2.png}
        """),
        folder=ROOT,
        verify=False,
    )
    for number in range(4):
        plan = dict(plan_of(study, number))
        assert plan["practice"] == "partition" and {plan["a"], plan["b"]} == {"kernel", "none"}


# -- the store: resume, idempotence, timing ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_participant_resumes_at_the_first_unanswered_trial(tmp_path) -> None:
    study = digits_study()
    facts = fake_facts(study)
    clock = Clock()
    store = StudyStore(tmp_path / "studies.sqlite3", clock=clock)
    participant = store.create_participant(study, facts)
    assert len(participant.id) == 8 and participant.number == 0
    assert store.create_participant(study, facts).number == 1
    assert store.progress(participant.id) == studies.TrialProgress(0, 3, 0)

    first = participant.plan[0]
    assert store.mark_shown(participant.id, 0) == clock.now
    clock.now += 30
    assert store.mark_shown(participant.id, 0) == clock.now - 30  # a reload keeps the first time shown
    clock.now += 12.5
    recorded = store.record_trial_answers(study, participant.id, 0, answers_for(first))
    assert recorded.new and recorded.seconds == 42.5 and not recorded.finished

    # Returning with the id (typed in lower case, with a dash) resumes at trial 2 with the same plan.
    again = store.get_participant(study.id, f"{participant.id[:4].lower()}-{participant.id[4:].lower()}")
    assert again is not None and again.plan == participant.plan
    assert store.progress(again.id) == studies.TrialProgress(1, 3, 1)
    assert store.get_participant(study.id, "ZZZZZZZZ") is None
    assert store.get_participant("another-study", participant.id) is None

    # Submitting trial 1 again (a reload, a double click) keeps the first answers and duplicates nothing.
    repeat = store.record_trial_answers(study, participant.id, 0, answers_for(first, right=False, confidence=1))
    assert not repeat.new and repeat.seconds == 42.5
    rows = store.answer_rows(study.id)
    assert len(rows) == expected_answer_count(first)
    assert {row["value"] for row in rows if row["question"] == "confidence"} == {"5"}

    with pytest.raises(AnswerError, match="Please answer trial 2 first"):
        store.record_trial_answers(study, participant.id, 2, answers_for(participant.plan[2]))
    with pytest.raises(AnswerError, match="Please answer: How confident"):
        store.record_trial_answers(study, participant.id, 1, {**answers_for(participant.plan[1]), "confidence": ""})
    with pytest.raises(AnswerError, match="whole number from 1 to 7"):
        store.record_trial_answers(study, participant.id, 1, {**answers_for(participant.plan[1]), "confidence": 9})
    with pytest.raises(AnswerError, match="Choose one of the answers"):
        store.record_trial_answers(study, participant.id, 1, {**answers_for(participant.plan[1]), "forward": "cat"})
    assert len(store.answer_rows(study.id)) == expected_answer_count(first)  # refused answers wrote nothing

    for position in (1, 2):
        result = store.record_trial_answers(study, participant.id, position, answers_for(participant.plan[position]))
        assert result.seconds is None  # never marked shown: no time rather than a wrong one
    assert result.finished and store.progress(participant.id).finished
    stored = store.get_participant(study.id, participant.id)
    assert stored is not None and stored.finished


def test_trust_is_not_asked_without_an_explanation(tmp_path) -> None:
    study = digits_study(conditions="[none]")
    store = StudyStore(tmp_path / "s.sqlite3")
    participant = store.create_participant(study, fake_facts(study))
    planned = participant.plan[0]
    assert [q.id for q in studies.questions_for(study, planned)] == ["forward", "confidence", "comment"]
    assert planned.explanation_key is None and studies.study_explanation(None, planned) is None
    store.record_trial_answers(study, participant.id, 0, {"forward": "3", "confidence": 2, "comment": "hard"})
    assert {row["question"] for row in store.answer_rows(study.id)} == {"forward", "confidence", "comment"}


# -- durability: concurrent participants and a killed server ----------------------------------------------------

WORKER = """
import json, sys, time
from pathlib import Path
from studies import StudyFacts, StudyStore, parse_study

study_file, facts_file, db, start_at, mode = sys.argv[1:6]
study = parse_study(Path(study_file).read_text(), folder=Path({root!r}), verify=False)
facts = StudyFacts.from_json(json.loads(Path(facts_file).read_text()))
store = StudyStore(db)
while time.time() < float(start_at):  # every worker starts writing at the same moment
    time.sleep(0.001)
for _ in range(1 if mode == "once" else 10**6):
    participant = store.create_participant(study, facts)
    for item in participant.plan:
        store.mark_shown(participant.id, item.position)
        answers = {{"forward": item.prediction, "confidence": 1 + item.position, "trust": 7, "comment": "x" * 200}}
        store.record_trial_answers(study, participant.id, item.position, answers)
        print(participant.id, item.position, flush=True)
"""


@pytest.fixture
def worker_files(tmp_path):
    study = digits_study()
    study_file = tmp_path / "digits.yaml"
    study_file.write_text(
        textwrap.dedent("""\
        id: digits
        title: Digits
        consent: You agree.
        conditions: [kernel, partition, none]
        randomisation: {design: within, order: shuffle, seed: 7}
        explanation:
          budget: {kernel: 20, partition: 20}
          params: {kernel: {segments: 8}}
        trials:
        """)
        + "\n".join(
            f"  - {{id: d{n}, model: digits_cnn, image: assets/samples/digits/digit_{n}.png}}" for n in range(3)
        )
        + "\n"
    )
    facts_file = tmp_path / "facts.json"
    facts_file.write_text(json.dumps(fake_facts(study).to_json()))
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT)))
    return study, [str(script), str(study_file), str(facts_file)]


def start_worker(files: list[str], db: Path, start_at: float, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *files, str(db), str(start_at), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_twenty_participants_answering_at_once_lose_nothing(tmp_path, worker_files) -> None:
    study, files = worker_files
    db = tmp_path / "studies.sqlite3"
    StudyStore(db)  # the schema exists before the rush, as it would on a running server
    start_at = time.time() + 1.5
    workers = [start_worker(files, db, start_at, "once") for _ in range(20)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 20, [err for _, err in outputs if err][:1]
    reported = {tuple(line.split()) for out, _ in outputs for line in out.splitlines()}
    assert len(reported) == 20 * 3

    store = StudyStore(db)
    participants = store.participants(study.id)
    assert sorted(p.number for p in participants) == list(range(20))  # numbers drawn atomically, none twice
    rows = store.answer_rows(study.id)
    assert {(row["participant"], str(row["trial_position"])) for row in rows} == reported
    assert len(rows) == sum(expected_answer_count(item) + 1 for p in participants for item in p.plan)
    assert all(p.finished for p in participants)
    # Balanced: 20 arrivals = 6 full Latin-square rounds of 3 plus 2; each trial's conditions differ by ≤ 1.
    per_trial = Counter((item.trial_id, item.condition) for p in participants for item in p.plan)
    for trial in study.trials:
        counts = [per_trial[(trial.id, condition)] for condition in study.conditions]
        assert sum(counts) == 20 and max(counts) - min(counts) <= 1


def test_a_killed_server_keeps_every_committed_answer(tmp_path, worker_files) -> None:
    study, files = worker_files
    db = tmp_path / "studies.sqlite3"
    worker = start_worker(files, db, time.time(), "forever")
    committed: list[tuple[str, ...]] = []
    assert worker.stdout is not None and worker.stderr is not None  # pipes: stdout=PIPE, stderr=PIPE
    while len(committed) < 40:
        line = worker.stdout.readline()
        assert line, worker.stderr.read()
        committed.append(tuple(line.split()))
    os.kill(worker.pid, signal.SIGKILL)  # mid-way: the next transaction may be in flight
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = StudyStore(db)
    rows = store.answer_rows(study.id)
    stored_trials = Counter((row["participant"], str(row["trial_position"])) for row in rows)
    assert set(committed) <= set(stored_trials)  # everything reported as committed is there
    plans = {p.id: p.plan for p in store.participants(study.id)}
    for (participant_id, position), count in stored_trials.items():  # and no trial is there in part
        assert count == expected_answer_count(plans[participant_id][int(position)]) + 1
    # The store goes on after the restart: the next participant continues the numbering.
    again = store.create_participant(study, fake_facts(study))
    assert again.number == len(plans)
    assert store.record_trial_answers(study, again.id, 0, answers_for(again.plan[0])).new


# -- export, results, password ----------------------------------------------------------------------------------


def filled_store(tmp_path, participants: int = 6) -> tuple[studies.Study, StudyStore]:
    study = digits_study()
    clock = Clock()
    store = StudyStore(tmp_path / "studies.sqlite3", clock=clock)
    facts = fake_facts(study)
    for number in range(participants):
        participant = store.create_participant(study, facts)
        for item in participant.plan:
            store.mark_shown(participant.id, item.position)
            clock.now += {"kernel": 10, "partition": 20, "none": 30}[item.condition] + number
            # Right only with kernel; confidence 6 with kernel, else 2.
            right = item.condition == "kernel"
            store.record_trial_answers(
                study,
                participant.id,
                item.position,
                {
                    **answers_for(item, right=right, confidence=6 if right else 2),
                    "comment": "ok" if number == 0 else "",
                },
            )
    return study, store


def test_csv_export_is_one_row_per_answer(tmp_path) -> None:
    study, store = filled_store(tmp_path, participants=3)
    text = studies.answers_csv(store, study.id)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == studies.EXPORT_COLUMNS
    # 3 participants × 3 trials: forward + confidence each, trust on the 2 explained, one participant's comments.
    assert len(rows) == 3 * (3 * 2 + 2) + 3
    assert Counter(row["question"] for row in rows) == {"forward": 9, "confidence": 9, "trust": 6, "comment": 3}
    for row in rows:
        assert row["study"] == "digits" and row["model"] == "digits_cnn" and row["image"].endswith(".png")
        if row["question"] == "forward":
            assert row["correct"] == ("1" if row["condition"] == "kernel" else "0")
            assert (row["value"] == row["prediction"]) == (row["correct"] == "1")
        else:
            assert row["correct"] == ""
        assert float(row["seconds"]) > 0 and row["answered_at"].endswith("+00:00")
    assert sum(1 for row in rows if row["question"] == "trust" and row["condition"] == "none") == 0
    out = tmp_path / "answers.csv"
    assert store.export_csv(study.id, out) == len(rows) and out.read_text() == text


def test_results_per_condition(tmp_path) -> None:
    study, store = filled_store(tmp_path)
    results = studies.summarise(study, store)
    assert results["participants"]["started"] == 6 and results["participants"]["finished"] == 6
    assert all(row["done"] == row["total"] == 3 for row in results["participants"]["rows"])
    accuracy = {row["condition"]: row for row in results["accuracy"]}
    assert accuracy["kernel"]["accuracy"] == 1.0 and accuracy["none"]["accuracy"] == 0.0
    assert accuracy["kernel"]["answers"] == 6 and 0.5 < accuracy["kernel"]["ci_low"] < 1.0
    assert accuracy["kernel"]["ci_high"] == 1.0
    confidence = {row["condition"]: row for row in results["questions"] if row["question"] == "confidence"}
    assert confidence["kernel"]["mean"] == 6 and confidence["partition"]["mean"] == 2
    assert confidence["kernel"]["participants"] == 6 and confidence["kernel"]["ci_low"] == 6  # no spread
    trust_conditions = {row["condition"] for row in results["questions"] if row["question"] == "trust"}
    assert trust_conditions == {"kernel", "partition"}
    time_rows = {row["condition"]: row for row in results["time"]}
    assert time_rows["kernel"]["mean"] == pytest.approx(12.5) and time_rows["none"]["median"] == pytest.approx(32.5)
    assert time_rows["kernel"]["ci_low"] < 12.5 < time_rows["kernel"]["ci_high"]


def test_intervals() -> None:
    low, high = studies.t_interval([1.0, 2.0, 3.0, 4.0])
    assert (low, high) == pytest.approx((0.4457, 4.5543), abs=1e-4)  # 2.5 ± 3.182 · 1.291 / 2
    assert studies.t_interval([3.0]) == (None, None)
    assert studies.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert studies.wilson_interval(0, 0) == (None, None)


def test_the_results_password() -> None:
    configured = {studies.PASSWORD_ENV: "s3cret"}
    assert studies.results_access("s3cret", environ=configured).granted
    wrong = studies.results_access("secret", environ=configured)
    assert not wrong.granted and wrong.message == "That password is wrong."
    assert not studies.results_access("", environ=configured).granted
    # Streamlit secrets win over the environment.
    assert studies.results_access(
        "from-secrets", secrets={studies.PASSWORD_SECRET: "from-secrets"}, environ=configured
    ).granted
    # Nothing configured: locked for every password, the empty one included.
    for given in ("", "s3cret", None):
        locked = studies.results_access(given, secrets={}, environ={})
        assert not locked.granted and locked.message == studies.LOCKED_MESSAGE
    assert not studies.check_password("", "") and not studies.check_password(None, "x")
    assert studies.check_password("ünïcode", "ünïcode")

    class MissingSecrets(Mapping[str, Any]):  # st.secrets without a secrets file raises on access
        def __getitem__(self, key: str) -> Any:
            raise FileNotFoundError("no secrets.toml")

        def __iter__(self) -> Iterator[str]:
            raise FileNotFoundError("no secrets.toml")

        def __len__(self) -> int:
            raise FileNotFoundError("no secrets.toml")

    assert studies.configured_password(MissingSecrets(), environ={}) is None


# -- precompute -------------------------------------------------------------------------------------------------


def test_precompute_fills_the_cache_and_a_second_run_is_all_hits(tmp_path, digits_model) -> None:
    from explainers.cache import ExplanationCache

    study = parse_study(
        textwrap.dedent("""\
        id: tiny
        title: Tiny
        consent: Yes.
        conditions: [kernel, partition, none]
        explanation:
          budget: {kernel: 20, partition: 20}
          params: {kernel: {segments: 8}}
        trials:
          - {id: seven, model: digits_cnn, image: assets/samples/digits/digit_7.png}
          - {id: three, model: digits_cnn, image: assets/samples/digits/digit_3.png, class: "8", choices: [3, 8]}
        """),
        name="tiny.yaml",
        folder=ROOT,
    )
    cache = ExplanationCache(tmp_path / "cache")
    assert not studies.is_ready(study, cache).ready and studies.load_facts(study, cache) is None
    calls = []

    def progress(done, total, label):
        calls.append((done, total, label))
        return None

    first = studies.precompute(study, cache, progress=progress, load=lambda name: digits_model)
    assert (first.computed, first.cached) == (4, 0)
    assert [c[:2] for c in calls] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert calls[0][2].startswith("kernel on seven (digits_cnn, digit_7.png, class 7)")
    readiness = studies.is_ready(study, cache)
    assert readiness.ready and readiness.total == 4 and readiness.missing == ()

    second = studies.precompute(study, cache, load=lambda name: digits_model)
    assert (second.computed, second.cached) == (0, 4)

    facts = studies.load_facts(study, cache)
    assert facts is not None
    assert facts.trials["seven"].prediction == "7" and not facts.trials["seven"].reveal_class
    three = facts.trials["three"]
    assert (three.class_shown, three.reveal_class, three.options) == ("8", True, ("3", "8", studies.OTHER_OPTION))
    store = StudyStore(tmp_path / "studies.sqlite3")
    participant = store.create_participant(study, facts)
    for planned in participant.plan:
        explanation = studies.study_explanation(cache, planned)
        if planned.explained:
            assert explanation is not None
            assert explanation.method == planned.condition and explanation.class_names == (planned.class_shown,)
            assert explanation.values.shape == (1, 28, 28)
        else:
            assert explanation is None
        assert studies.trial_image(study, planned).shape == (28, 28, 3)


def test_study_cli_precompute_check_and_export(tmp_path, monkeypatch, capsys) -> None:
    from cli.main import main

    monkeypatch.setenv("EXPLAINERS_CACHE_DIR", str(tmp_path / "cache"))
    study_file = tmp_path / "tiny.yaml"
    study_file.write_text(
        textwrap.dedent(f"""\
        id: tiny-cli
        title: Tiny
        consent: Yes.
        conditions: [partition, none]
        explanation: {{budget: 20}}
        trials:
          - {{model: digits_cnn, image: {ROOT}/assets/samples/digits/digit_1.png}}
        """)
    )
    assert main(["study", "precompute", str(study_file), "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report == {**report, "study": "tiny-cli", "explanations": 1, "computed": 1, "cached": 0}
    assert main(["study", "check", str(study_file)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ready"] is True

    db = tmp_path / "studies.sqlite3"
    study = studies.load_study(study_file)
    store = StudyStore(db)
    from explainers.cache import ExplanationCache

    facts = studies.load_facts(study, ExplanationCache())
    assert facts is not None
    participant = store.create_participant(study, facts)
    store.record_trial_answers(
        study, participant.id, 0, {"forward": participant.plan[0].prediction, "confidence": 3, "trust": 3}
    )
    capsys.readouterr()
    assert main(["study", "export", str(study_file), "--db", str(db)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == expected_answer_count(participant.plan[0]) and rows[0]["participant"] == participant.id
    out = tmp_path / "answers.csv"
    assert main(["study", "export", str(study_file), "--db", str(db), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["answers"] == len(rows)
    assert main(["study", "export", str(tmp_path / "nope.yaml")]) == 2
    assert (
        capsys.readouterr().err.strip() == f"error: nope.yaml: the study file does not exist (looked for "
        f"{tmp_path / 'nope.yaml'})."
    )


def test_results_figures_show_every_condition(tmp_path) -> None:
    from viz import study_plots

    study, store = filled_store(tmp_path, participants=3)
    results = studies.summarise(study, store)
    questions = study_plots.questions_figure(results)
    assert [trace.name for trace in questions.data] == ["kernel", "partition", "no explanation"]
    assert list(questions.data[2].x) == ["confidence"]  # trust is not asked without an explanation
    accuracy = study_plots.accuracy_figure(results)
    assert list(accuracy.data[0].y) == [1.0, 0.0, 0.0] and list(accuracy.data[0].text)[0] == "3/3"
    timing = study_plots.time_figure(results)
    assert list(timing.data[0].y) == pytest.approx([11.0, 21.0, 31.0])
    completion = study_plots.completion_figure(results)
    assert list(completion.data[0].y) == [0, 0, 0, 3] and "3 finished" in completion.layout.title.text
