"""Golden numbers: the losses the trainer produced before it was split into objectives,
input, loop and checkpoint modules. Any change to what a config trains must show here.

Recorded with 8 fake CPU devices (data-parallel mesh), jax 0.10.2, on 2026-11-30. The reward
objectives' numbers were recorded again that day when <ans> left the action space of runs
that read no trace and no scratchpad (a policy could write it where the decoder drops it).
"""
import json

import numpy as np
import pytest

from rf_jax import config as config_lib
from rf_jax import train

pytestmark = pytest.mark.slow

PHASE1_LOSS = [
    5.275632858276367, 5.173745155334473, 4.821798801422119, 4.010167598724365,
    3.1610090732574463, 2.7893259525299072, 2.5259628295898438, 2.276470899581909,
    2.1764843463897705, 2.0789294242858887, 1.936434268951416, 1.933628797531128,
    1.7416740655899048, 1.8633172512054443, 1.7646363973617554, 1.7326406240463257,
    1.6392314434051514, 1.5485073328018188, 1.4725291728973389, 1.4477673768997192]
PHASE1_GRAD_NORM = [
    6.802913665771484, 6.826759338378906, 6.55098295211792, 5.491363525390625,
    3.5219361782073975, 2.658264398574829, 2.1177492141723633, 1.5103462934494019,
    1.3609941005706787, 1.205426573753357, 1.5436630249023438, 1.1895684003829956,
    1.4827717542648315, 1.020446538925171, 1.3884646892547607, 1.233327031135559,
    1.006210446357727, 0.8253898024559021, 0.9982441067695618, 0.929469108581543]

TINY = {
    "rl": {
        "pg_loss": [
            -0.04068104550242424, -0.040735989809036255, -0.04075779765844345,
            -0.04072057083249092, -0.04094773530960083, -0.04091877117753029,
        ],
        "grad_norm": [
            0.003238656325265765, 0.22183813154697418, 0.003081830684095621,
            0.003139700973406434, 0.0029501328244805336, 0.24016109108924866,
        ],
    },
    "mixed": {
        "loss": [
            5.03592586517334, 5.0969109535217285, 4.989834785461426,
            4.638047218322754, 4.595536708831787, 4.4255690574646,
        ],
        "pg_loss": [
            -0.04068104550242424, -0.040735989809036255, -0.04081154242157936,
            -0.04090933874249458, -0.041157953441143036, -0.041217900812625885,
        ],
    },
    "schedule": {
        "loss": [
            5.044585227966309, 5.106047630310059, 4.999379634857178,
        ],
        "pg_loss": [
            -0.040909383445978165, -0.04113703593611717, -0.04118415713310242,
        ],
        "grad_norm": [
            1.4860259294509888, 1.388837218284607, 1.340066909790039,
            0.22328738868236542, 0.0027909502387046814, 0.25264671444892883,
        ],
    },
}


def _logged(workdir, key):
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  return [r[key] for r in rows if key in r]


def test_default_phase1_first_20_losses(tmp_path):
  c = config_lib.load("phase1.py")
  c.train.update(steps=20, log_every=1, eval_every=0, checkpoint_every=0)
  train.run(c, str(tmp_path))
  np.testing.assert_allclose(_logged(tmp_path, "train/loss"), PHASE1_LOSS, rtol=1e-6)
  np.testing.assert_allclose(_logged(tmp_path, "train/grad_norm"), PHASE1_GRAD_NORM, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_reward_objectives_first_steps(tmp_path, kind):
  c = config_lib.load("phase1.py:tiny")
  c.objective.update(kind=kind, switch_step=3)
  c.rl.update(prompts=8, group_size=4, prompt_len=32, max_new=8, entropy_coef=0.01)
  c.train.update(steps=6, log_every=1, eval_every=0, checkpoint_every=0, eval_levels=())
  train.run(c, str(tmp_path))
  for key, want in TINY[kind].items():
    np.testing.assert_allclose(_logged(tmp_path, f"train/{key}"), want, rtol=1e-5, atol=1e-7,
                               err_msg=key)
