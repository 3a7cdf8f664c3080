"""Start-up of `sailrl rl` (issue 12): the driver reaches Ray and the actors without importing
transformers (~2 s on these machines); its tokenizer loads in a thread while the actors start.
Run in a fresh interpreter, since the test process has transformers loaded already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
import rl.cluster.session, rl.loop.driver  # what `sailrl rl` imports
from rl.run.experiment import load_experiment
from rl.run.preflight import preflight_rl

cfg = load_experiment(sys.argv[1], ["run.dir=" + sys.argv[2]])
plan = preflight_rl(cfg, None)
plan.cfg.model.prepare(plan.cfg.run.path)  # the actors' checkpoint
print(json.dumps({"transformers": "transformers" in sys.modules, "rows": len(plan.data.train)}))
"""


def _probe(tmp_path: Path) -> dict:
    # the run dir's init-model is built by a first run (that build needs transformers)
    run = [sys.executable, "-c", PROBE, str(ROOT / "configs" / "tiny-rl.yaml"), str(tmp_path)]
    for _ in range(2):
        out = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_driver_reaches_the_actors_without_importing_transformers(tmp_path):
    seen = _probe(tmp_path)
    assert seen["rows"] > 0  # the checks read the data
    assert seen["transformers"] is False
