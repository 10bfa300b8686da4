"""An inspect_ai task with the option-ID bias removed by calguard, on the 40 questions bundled in
guard/testing/demo_data (pip install -e '.[inspect]'):

    inspect eval examples/inspect_task.py --model openai/gpt-4o-mini
    inspect eval examples/inspect_task.py -T calibration=pride --model openai/gpt-4o-mini

Without a key, `python examples/inspect_task.py` runs it, with and without calibration, against
calguard's simulated biased model (a simulation, not an LLM).
"""

from pathlib import Path
from typing import Any

from inspect_ai import Task, eval, task
from inspect_ai.dataset import Sample, csv_dataset

import guard.testing
from guard.integrations.inspect import choice_with_bias, debiased_choice

CSV = Path(guard.testing.__file__).parent / "demo_data" / "sample_questions.csv"
COLUMNS = ["subject", "question", "A", "B", "C", "D", "answer"]


def record_to_sample(r: dict[str, Any]) -> Sample:
    return Sample(input=r["question"], choices=[r[c] for c in "ABCD"], target=r["answer"])


@task
def calguard_mcq(calibration: str = "adaptive", budget: float = 2.0) -> Task:
    return Task(
        dataset=csv_dataset(str(CSV), record_to_sample, fieldnames=COLUMNS),
        solver=debiased_choice(calibration, budget=budget),
        scorer=choice_with_bias(),  # accuracy, RStd, calls per sample
    )


if __name__ == "__main__":
    import guard.testing.inspect_provider  # registers the calguard-fake/ models

    data = csv_dataset(str(CSV), record_to_sample, fieldnames=COLUMNS)
    key = {str(s.input): (s.choices or [])["ABCD".index(str(s.target))] for s in data}
    for calibration in ("none", "adaptive"):
        [log] = eval(
            calguard_mcq(calibration),
            model="calguard-fake/simulated",
            model_args={"answers": key},
            display="none",
        )
        assert log.results is not None, log.error
        m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
        print(
            f"{calibration:9s} accuracy {m['accuracy']:.3f}  RStd {m['rstd']:5.1f}  "
            f"calls/sample {m['calls_per_sample']:.2f}"
        )
